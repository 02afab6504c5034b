/* VKT_VULKAN_VALIDATION=1: the instance gets VK_LAYER_KHRONOS_validation (core checks plus
 * synchronization validation) and a VK_EXT_debug_utils messenger that prints and counts what
 * the layer reports, so a test can require a clean run. A request that cannot be met is said on stderr and reads as -1 from
 * the accessors: a missing layer must not look like a clean run. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "backend/vulkan/vk_context.h"
#include "backend/vulkan/vk_validation.h"

#define LAYER "VK_LAYER_KHRONOS_validation"

enum { OFF, UNAVAILABLE, PENDING, ACTIVE };
static int state = OFF;
/* the layer may call back from any thread that calls Vulkan */
static atomic_int errors, warnings;
static VkDebugUtilsMessengerEXT messenger = VK_NULL_HANDLE;

static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(
    VkDebugUtilsMessageSeverityFlagBitsEXT severity, VkDebugUtilsMessageTypeFlagsEXT type,
    const VkDebugUtilsMessengerCallbackDataEXT *data, void *user) {
    (void)type;
    (void)user;
    int error = (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) != 0;
    atomic_fetch_add(error ? &errors : &warnings, 1);
    fprintf(stderr, "vulkan validation: %s: %s\n", error ? "error" : "warning",
            data && data->pMessage ? data->pMessage : "(no message)");
    return VK_FALSE; /* the call goes on as the layer decided */
}

static const VkDebugUtilsMessengerCreateInfoEXT messenger_info = {
    .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
    .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT,
    .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                   VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                   VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
    .pfnUserCallback = on_message,
};

/* Synchronization validation on top of the core checks: a compute backend's likeliest
 * mistake is a missing barrier between two dispatches, which the core checks cannot see. */
static const VkValidationFeatureEnableEXT sync_enable[] = {
    VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT};
static const VkValidationFeaturesEXT sync_features = {
    .sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT,
    .enabledValidationFeatureCount = 1,
    .pEnabledValidationFeatures = sync_enable,
};
/* what vkCreateInstance gets: the messenger (for its own messages), then the features */
static VkDebugUtilsMessengerCreateInfoEXT instance_chain;

static void unavailable(const char *why) {
    fprintf(stderr, "vulkan validation: VKT_VULKAN_VALIDATION=1, but %s: validation is NOT "
            "active. HINT: apt-get install vulkan-validationlayers (or set VK_LAYER_PATH to "
            "the Vulkan SDK's layers)\n", why);
    state = UNAVAILABLE;
}

static int has_layer(const vkt_vk_fns *vk) {
    uint32_t n = 0;
    if (!vk->vkEnumerateInstanceLayerProperties ||
        vk->vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0)
        return 0;
    VkLayerProperties *p = calloc(n, sizeof *p);
    int found = 0;
    if (p && vk->vkEnumerateInstanceLayerProperties(&n, p) >= 0)
        for (uint32_t i = 0; i < n && !found; i++) found = !strcmp(p[i].layerName, LAYER);
    free(p);
    return found;
}

/* An instance extension of the loader (layer NULL) or of the layer. */
static int has_instance_ext(const vkt_vk_fns *vk, const char *layer, const char *name) {
    uint32_t n = 0;
    if (vk->vkEnumerateInstanceExtensionProperties(layer, &n, NULL) != VK_SUCCESS || n == 0)
        return 0;
    VkExtensionProperties *e = calloc(n, sizeof *e);
    int found = 0;
    if (e && vk->vkEnumerateInstanceExtensionProperties(layer, &n, e) >= 0)
        for (uint32_t i = 0; i < n && !found; i++)
            found = !strcmp(e[i].extensionName, name);
    free(e);
    return found;
}

const void *vkt_vk_validation_prepare(const vkt_vk_fns *vk, const char **layers,
                                      uint32_t *nlayers, const char **exts, uint32_t *nexts) {
    const char *want = getenv("VKT_VULKAN_VALIDATION");
    if (!want || strcmp(want, "1")) return NULL;
    if (!has_layer(vk)) {
        unavailable("the Vulkan loader finds no " LAYER);
        return NULL;
    }
    const char *du = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
    if (!has_instance_ext(vk, NULL, du) && !has_instance_ext(vk, LAYER, du)) {
        unavailable("neither the loader nor " LAYER " offers " VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
        return NULL;
    }
    layers[(*nlayers)++] = LAYER;
    exts[(*nexts)++] = du;
    instance_chain = messenger_info;
    if (has_instance_ext(vk, LAYER, VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME)) {
        exts[(*nexts)++] = VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME;
        instance_chain.pNext = &sync_features;
    } else {
        fprintf(stderr, "vulkan validation: the layer lacks "
                VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME ": core checks only, no "
                "synchronization validation\n");
    }
    state = PENDING;
    return &instance_chain;
}

void vkt_vk_validation_start(VkInstance inst, const vkt_vk_fns *vk) {
    if (state != PENDING) return;
    if (!vk->vkCreateDebugUtilsMessengerEXT ||
        vk->vkCreateDebugUtilsMessengerEXT(inst, &messenger_info, NULL, &messenger) !=
            VK_SUCCESS) {
        messenger = VK_NULL_HANDLE;
        unavailable("vkCreateDebugUtilsMessengerEXT failed");
        return;
    }
    state = ACTIVE;
    fprintf(stderr, "vulkan validation: active (" LAYER "%s)\n",
            instance_chain.pNext ? ", with synchronization validation" : "");
}

void vkt_vk_validation_stop(VkInstance inst, const vkt_vk_fns *vk) {
    if (messenger != VK_NULL_HANDLE && vk->vkDestroyDebugUtilsMessengerEXT)
        vk->vkDestroyDebugUtilsMessengerEXT(inst, messenger, NULL);
    messenger = VK_NULL_HANDLE;
}

int vkt_vk_validation_errors(void) { return state == ACTIVE ? atomic_load(&errors) : -1; }
int vkt_vk_validation_warnings(void) { return state == ACTIVE ? atomic_load(&warnings) : -1; }

int vkt_vk_validation_selftest(vkt_backend *be) {
    vkt_vk_ctx *c = vkt_vk(be);
    if (state != ACTIVE || !c || !c->dev) return -1;
    fprintf(stderr, "vulkan validation: self-test: one deliberately invalid call "
            "(vkCreateBuffer of size 0) must be reported next\n");
    int before = atomic_load(&errors);
    /* VUID-VkBufferCreateInfo-size-00912: a stateless check, so the layer skips the call
     * (VK_ERROR_VALIDATION_FAILED_EXT) and the driver never sees the zero size */
    VkBufferCreateInfo bci = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = 0,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    VkBuffer b = VK_NULL_HANDLE;
    if (c->d.vkCreateBuffer(c->dev, &bci, NULL, &b) == VK_SUCCESS && b != VK_NULL_HANDLE)
        c->d.vkDestroyBuffer(c->dev, b, NULL);
    return atomic_load(&errors) - before;
}

int vkt_vk_validation_sync_selftest(vkt_backend *be) {
    vkt_vk_ctx *c = vkt_vk(be);
    if (state != ACTIVE || !instance_chain.pNext || !c || !c->dev) return -1;
    char err[256];
    vkt_buf *b = vkt_vk_alloc(c, 4096, err, sizeof err);
    if (!b) return -1;
    fprintf(stderr, "vulkan validation: sync self-test: two fills of one buffer without a "
            "barrier between them must be reported next (a write-after-write hazard)\n");
    int before = atomic_load(&errors);
    vkt_vk_flush(c);
    VkCommandBuffer cmd = vkt_vk_cmd(c);
    if (cmd) { /* recorded directly: vkt_vk_order would put the barrier in */
        c->d.vkCmdFillBuffer(cmd, vkt_vk_buffer_of(c, b), b->off, 4096, 0);
        c->d.vkCmdFillBuffer(cmd, vkt_vk_buffer_of(c, b), b->off, 4096, 1);
    }
    vkt_vk_flush(c);
    vkt_vk_free(c, b);
    return atomic_load(&errors) - before;
}
