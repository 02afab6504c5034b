/* The vulkan backend's devices: one VkInstance created on first use, the physical devices
 * enumerated once and described (vendor, driver, memory, subgroup, fp16, cooperative matrix)
 * for --list-devices and device selection. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/vulkan/vk_device.h"

#define MAX_DEVICES 16

static const vkt_vk_fns *vk;
static VkInstance instance = VK_NULL_HANDLE;
static uint32_t instance_api;
static int props2_khr; /* a 1.0 instance with VK_KHR_get_physical_device_properties2 */
static int enumerated;
static int ndev;
static vkt_vk_physdev devs[MAX_DEVICES];
static char note[512];

/* Teardown at exit, after everything that used the instance. The loader stays open: Mesa's
 * and LLVM's own exit-time destructors run after ours, and unloading them buys nothing. */
static void teardown(void) {
#ifdef VKT_SANITIZE_BUILD
    /* Destroying the instance unloads the driver; LeakSanitizer then reports what Mesa never
     * freed as a leak in an unknown module. Left to the OS, it stays reachable. */
    return;
#endif
    if (instance != VK_NULL_HANDLE && vk) {
        vkt_vk_validation_stop(instance, vk);
        vk->vkDestroyInstance(instance, NULL);
    }
    instance = VK_NULL_HANDLE;
}

const char *vkt_vk_result_name(VkResult r) {
    switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_NOT_READY: return "VK_NOT_READY";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    case VK_INCOMPLETE: return "VK_INCOMPLETE";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_FORMAT_NOT_SUPPORTED: return "VK_ERROR_FORMAT_NOT_SUPPORTED";
    case VK_ERROR_FRAGMENTED_POOL: return "VK_ERROR_FRAGMENTED_POOL";
    case VK_ERROR_UNKNOWN: return "VK_ERROR_UNKNOWN";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
    case VK_ERROR_FRAGMENTATION: return "VK_ERROR_FRAGMENTATION";
    default: {
        static _Thread_local char buf[32];
        snprintf(buf, sizeof buf, "VkResult %d", (int)r);
        return buf;
    }
    }
}

/* major.minor only: what an instance or device may use does not depend on the patch level */
static uint32_t major_minor(uint32_t v) {
    return VK_MAKE_API_VERSION(0, VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v), 0);
}

static int has_ext(const VkExtensionProperties *e, uint32_t n, const char *name) {
    for (uint32_t i = 0; i < n; i++)
        if (!strcmp(e[i].extensionName, name)) return 1;
    return 0;
}

static const char *vendor_name(uint32_t id, char *buf, size_t len) {
    switch (id) {
    case 0x10DE: return "NVIDIA";
    case 0x1002: return "AMD";
    case 0x8086: return "Intel";
    case 0x10005: return "Mesa";
    case 0x13B5: return "ARM";
    case 0x5143: return "Qualcomm";
    default: snprintf(buf, len, "0x%04X", id); return buf;
    }
}

static const char *type_name(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "CPU";
    default: return "other";
    }
}

/* driverVersion is vendor-specific. NVIDIA packs 10.8.8.6 bits; Mesa and AMD use the Vulkan
 * version packing. (Intel's Windows driver packs 18.14 bits; this program is Linux-only.) */
static void driver_version(uint32_t vendor, uint32_t v, char *buf, size_t len) {
    if (vendor == 0x10DE)
        snprintf(buf, len, "%u.%u.%u.%u", (v >> 22) & 0x3ff, (v >> 14) & 0xff, (v >> 6) & 0xff,
                 v & 0x3f);
    else
        snprintf(buf, len, "%u.%u.%u", VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v),
                 VK_API_VERSION_PATCH(v));
}

static void fmt_bytes(char *buf, size_t len, double b) {
    if (b >= 1073741824.0) snprintf(buf, len, "%.1f GiB", b / 1073741824.0);
    else if (b >= 1048576.0) snprintf(buf, len, "%.0f MiB", b / 1048576.0);
    else snprintf(buf, len, "%.0f KiB", b / 1024.0);
}

static const char *component_name(uint32_t t) {
    switch (t) {
    case 0: return "f16";
    case 1: return "f32";
    case 2: return "f64";
    case 3: return "s8";
    case 4: return "s16";
    case 5: return "s32";
    case 6: return "s64";
    case 7: return "u8";
    case 8: return "u16";
    case 9: return "u32";
    case 10: return "u64";
    case 1000141000: return "bf16";
    case 1000491000: return "s8packed";
    case 1000491001: return "u8packed";
    case 1000491002: return "e4m3";
    case 1000491003: return "e5m2";
    default: return "?";
    }
}

static const char *scope_name(uint32_t s) {
    switch (s) {
    case 1: return "device";
    case 2: return "workgroup";
    case 3: return "subgroup";
    case 5: return "queue family";
    default: return "?";
    }
}

/* One cooperative-matrix configuration, from either extension. */
typedef struct coopmat_cfg {
    uint32_t m, n, k, a, b, c, result, scope, saturating;
    const char *ext; /* "KHR" or "NV" */
} coopmat_cfg;

/* "16x16x16 f16*f16+f32" (A*B+C), "->R" when the result type differs from C */
static void coopmat_str(const coopmat_cfg *c, char *buf, size_t len) {
    int n = snprintf(buf, len, "%ux%ux%u %s*%s+%s", c->m, c->n, c->k, component_name(c->a),
                     component_name(c->b), component_name(c->c));
    if (n < 0 || (size_t)n >= len) return;
    if (c->result != c->c)
        n += snprintf(buf + n, len - (size_t)n, "->%s", component_name(c->result));
    if (c->saturating && n >= 0 && (size_t)n < len) snprintf(buf + n, len - (size_t)n, " sat");
}

/* What the trainer's fp16 matmuls need: f16 operands, an f16 or f32 accumulator. */
static int coopmat_usable(const coopmat_cfg *c) {
    return c->a == 0 && c->b == 0 && (c->c == 0 || c->c == 1) && c->result == c->c;
}

/* details: newline-separated lines; what does not fit is cut at a line boundary and marked */
typedef struct text {
    char *buf;
    size_t len, used;
    int full;
} text;

static void line(text *t, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (t->full) return;
    static const char more[] = "(more omitted)";
    size_t need = strlen(tmp) + (t->used ? 1 : 0);
    if (t->used + need + sizeof more + 1 > t->len) {
        t->full = 1;
        snprintf(t->buf + t->used, t->len - t->used, "%s%s", t->used ? "\n" : "", more);
        return;
    }
    t->used += (size_t)snprintf(t->buf + t->used, t->len - t->used, "%s%s", t->used ? "\n" : "",
                                tmp);
}

/* Rough fp32 peaks by device type; Vulkan reports neither clocks nor core counts portably.
 * A CPU device (lavapipe) gets what its compute shaders reach here (about 3 GFLOP/s for a
 * GEMM, docs: FACTS), far below the cpu backend's estimate, so `auto` never prefers it. */
static double peak_estimate(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 10e12;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 1e12;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 1e12;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 3e9;
    default: return 0.1e12;
    }
}

static const char *yn(int b) { return b ? "yes" : "no"; }

/* The largest single allocation vktrain makes on the device: one vkt_buf lives inside one
 * VkDeviceMemory block covered by one VkBuffer, so both maxMemoryAllocationSize
 * (maintenance3) and maxBufferSize (maintenance4) bound it; 1 GiB, the smallest limit any
 * driver reports, when neither is known. VKT_VULKAN_MAX_ALLOC=<bytes> lowers it (tests: a
 * small limit makes the model's buffers many blocks). */
static uint64_t effective_max_alloc(uint64_t m3, uint64_t m4) {
    uint64_t lim = m3 ? m3 : (uint64_t)1 << 30;
    if (m4 && m4 < lim) lim = m4;
    const char *e = getenv("VKT_VULKAN_MAX_ALLOC");
    if (e && atoll(e) >= 65536 && (uint64_t)atoll(e) < lim) lim = (uint64_t)atoll(e);
    return lim;
}

#define CHAIN(tail, s)                                                                        \
    do {                                                                                      \
        *(tail) = &(s);                                                                       \
        (tail) = &(s).pNext;                                                                  \
    } while (0)

/* Reads the cooperative-matrix configurations the device offers into *cfgs (malloc'd). */
static uint32_t query_coopmat(VkPhysicalDevice pd, const VkExtensionProperties *ext,
                              uint32_t next, coopmat_cfg **cfgs) {
    uint32_t nk = 0, nn = 0, total = 0;
    VkCooperativeMatrixPropertiesKHR *pk = NULL;
    VkCooperativeMatrixPropertiesNV *pn = NULL;
    if (has_ext(ext, next, VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME) &&
        vk->vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR &&
        vk->vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR(pd, &nk, NULL) == VK_SUCCESS && nk &&
        (pk = calloc(nk, sizeof *pk))) {
        for (uint32_t i = 0; i < nk; i++)
            pk[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR;
        if (vk->vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR(pd, &nk, pk) < 0) nk = 0;
    } else {
        nk = 0;
    }
    if (has_ext(ext, next, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME) &&
        vk->vkGetPhysicalDeviceCooperativeMatrixPropertiesNV &&
        vk->vkGetPhysicalDeviceCooperativeMatrixPropertiesNV(pd, &nn, NULL) == VK_SUCCESS && nn &&
        (pn = calloc(nn, sizeof *pn))) {
        for (uint32_t i = 0; i < nn; i++)
            pn[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
        if (vk->vkGetPhysicalDeviceCooperativeMatrixPropertiesNV(pd, &nn, pn) < 0) nn = 0;
    } else {
        nn = 0;
    }
    *cfgs = nk + nn ? calloc(nk + nn, sizeof **cfgs) : NULL;
    if (*cfgs) {
        for (uint32_t i = 0; i < nk; i++)
            (*cfgs)[total++] = (coopmat_cfg){pk[i].MSize, pk[i].NSize, pk[i].KSize,
                                             (uint32_t)pk[i].AType, (uint32_t)pk[i].BType,
                                             (uint32_t)pk[i].CType, (uint32_t)pk[i].ResultType,
                                             (uint32_t)pk[i].scope, pk[i].saturatingAccumulation,
                                             "KHR"};
        for (uint32_t i = 0; i < nn; i++)
            (*cfgs)[total++] = (coopmat_cfg){pn[i].MSize, pn[i].NSize, pn[i].KSize,
                                             (uint32_t)pn[i].AType, (uint32_t)pn[i].BType,
                                             (uint32_t)pn[i].CType, (uint32_t)pn[i].DType,
                                             (uint32_t)pn[i].scope, 0, "NV"};
    }
    free(pk);
    free(pn);
    return total;
}

/* VK_NV_cooperative_matrix2: usable by the coopmat2 tier when every feature it uses is there
 * and a workgroup-scope flexible-dimension configuration multiplies f16 by f16 into f32.
 * desc says what was found, or what is missing. */
static void query_cm2(vkt_vk_physdev *d, VkPhysicalDevice pd,
                      const VkPhysicalDeviceCooperativeMatrix2FeaturesNV *f,
                      const VkPhysicalDeviceCooperativeMatrix2PropertiesNV *p, char *desc,
                      size_t len) {
    d->cm2 = 0;
    if (!f) return;
    const char *missing = !f->cooperativeMatrixWorkgroupScope        ? "workgroup scope"
                          : !f->cooperativeMatrixFlexibleDimensions  ? "flexible dimensions"
                          : !f->cooperativeMatrixConversions         ? "conversions"
                          : !f->cooperativeMatrixPerElementOperations ? "per-element operations"
                          : !f->cooperativeMatrixTensorAddressing    ? "tensor addressing"
                          : NULL;
    if (missing) {
        snprintf(desc, len, "lacks the feature %s", missing);
        return;
    }
    uint32_t n = 0;
    VkCooperativeMatrixFlexibleDimensionsPropertiesNV *fp = NULL;
    if (!vk->vkGetPhysicalDeviceCooperativeMatrixFlexibleDimensionsPropertiesNV ||
        vk->vkGetPhysicalDeviceCooperativeMatrixFlexibleDimensionsPropertiesNV(pd, &n, NULL) !=
            VK_SUCCESS ||
        !n || !(fp = calloc(n, sizeof *fp))) {
        snprintf(desc, len, "no flexible-dimension configuration");
        return;
    }
    for (uint32_t i = 0; i < n; i++)
        fp[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_FLEXIBLE_DIMENSIONS_PROPERTIES_NV;
    if (vk->vkGetPhysicalDeviceCooperativeMatrixFlexibleDimensionsPropertiesNV(pd, &n, fp) < 0)
        n = 0;
    for (uint32_t i = 0; i < n && !d->cm2; i++) {
        const VkCooperativeMatrixFlexibleDimensionsPropertiesNV *c = &fp[i];
        if (c->AType != 0 || c->BType != 0 || c->CType != 1 || c->ResultType != 1 ||
            c->saturatingAccumulation || (uint32_t)c->scope != 2 /* workgroup */ ||
            !c->workgroupInvocations || !c->MGranularity || !c->NGranularity ||
            !c->KGranularity)
            continue;
        d->cm2 = 1;
        d->cm2_wg = c->workgroupInvocations;
        d->cm2_gm = c->MGranularity;
        d->cm2_gn = c->NGranularity;
        d->cm2_gk = c->KGranularity;
    }
    free(fp);
    d->cm2_max_dim = p->cooperativeMatrixFlexibleDimensionsMaxDimension;
    d->cm2_reserved_shmem = p->cooperativeMatrixWorkgroupScopeReservedSharedMemory;
    if (d->cm2)
        snprintf(desc, len, "workgroup scope f16*f16+f32, %u invocations, granularity "
                 "%ux%ux%u, dimensions up to %u", d->cm2_wg, d->cm2_gm, d->cm2_gn, d->cm2_gk,
                 d->cm2_max_dim);
    else
        snprintf(desc, len, "no workgroup-scope f16*f16+f32 configuration among %u", n);
}

static void describe(vkt_vk_physdev *d, VkPhysicalDevice pd) {
    vkt_device_info *info = &d->info;
    d->pd = pd;
    VkPhysicalDeviceProperties p;
    vk->vkGetPhysicalDeviceProperties(pd, &p);
    uint32_t api = major_minor(p.apiVersion) < instance_api ? major_minor(p.apiVersion)
                                                           : instance_api;
    d->api_version = api;
    int v11 = api >= VK_API_VERSION_1_1, v12 = api >= VK_API_VERSION_1_2;

    uint32_t next = 0;
    VkExtensionProperties *ext = NULL;
    if (vk->vkEnumerateDeviceExtensionProperties(pd, NULL, &next, NULL) == VK_SUCCESS && next) {
        ext = calloc(next, sizeof *ext);
        if (!ext || vk->vkEnumerateDeviceExtensionProperties(pd, NULL, &next, ext) < 0) next = 0;
    }

    /* properties and features beyond 1.0: only structures the device knows join a chain */
    int q2 = (v11 || props2_khr) && vk->vkGetPhysicalDeviceProperties2 &&
             vk->vkGetPhysicalDeviceFeatures2;
    VkPhysicalDeviceSubgroupProperties sub = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceDriverProperties drv = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
    VkPhysicalDeviceMaintenance3Properties m3 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
    VkPhysicalDeviceSubgroupSizeControlProperties ssc = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES};
    VkPhysicalDeviceCooperativeMatrix2PropertiesNV cm2p = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_2_PROPERTIES_NV};
    VkPhysicalDeviceMaintenance4Properties m4 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
    int has_ssc = q2 && (api >= VK_API_VERSION_1_3 ||
                         has_ext(ext, next, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME));
    int has_cm2 = q2 && v12 && has_ext(ext, next, VK_NV_COOPERATIVE_MATRIX_2_EXTENSION_NAME);
    int has_sub = q2 && v11;
    int has_drv = q2 && (v12 || has_ext(ext, next, VK_KHR_DRIVER_PROPERTIES_EXTENSION_NAME));
    int has_m3 = q2 && (v11 || has_ext(ext, next, VK_KHR_MAINTENANCE_3_EXTENSION_NAME));
    int has_m4 = q2 && (api >= VK_API_VERSION_1_3 ||
                        has_ext(ext, next, VK_KHR_MAINTENANCE_4_EXTENSION_NAME));
    void **tail = &p2.pNext;
    if (has_sub) CHAIN(tail, sub);
    if (has_drv) CHAIN(tail, drv);
    if (has_m3) CHAIN(tail, m3);
    if (has_ssc) CHAIN(tail, ssc);
    if (has_cm2) CHAIN(tail, cm2p);
    if (has_m4) CHAIN(tail, m4);
    if (q2) vk->vkGetPhysicalDeviceProperties2(pd, &p2);

    VkPhysicalDeviceShaderFloat16Int8Features f16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
    VkPhysicalDevice16BitStorageFeatures s16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    int has_f16 = q2 && (v12 || has_ext(ext, next, VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME));
    int has_s16 = q2 && (v11 || has_ext(ext, next, VK_KHR_16BIT_STORAGE_EXTENSION_NAME));
    VkPhysicalDeviceSubgroupSizeControlFeatures sscf = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES};
    VkPhysicalDeviceCooperativeMatrix2FeaturesNV cm2f = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_2_FEATURES_NV};
    tail = &f2.pNext;
    if (has_f16) CHAIN(tail, f16);
    if (has_s16) CHAIN(tail, s16);
    if (has_ssc) CHAIN(tail, sscf);
    if (has_cm2) CHAIN(tail, cm2f);
    if (q2) vk->vkGetPhysicalDeviceFeatures2(pd, &f2);

    VkPhysicalDeviceMemoryProperties mp;
    vk->vkGetPhysicalDeviceMemoryProperties(pd, &mp);

    coopmat_cfg *cm = NULL;
    uint32_t ncm = query_coopmat(pd, ext, next, &cm);
    d->n_mma = 0;
    for (uint32_t i = 0; i < ncm && d->n_mma < VKT_VK_MAX_MMA; i++)
        if (!strcmp(cm[i].ext, "KHR") && cm[i].scope == 3 /* subgroup */ && cm[i].a == 0 &&
            cm[i].b == 0 && cm[i].c == 1 && cm[i].result == 1 && !cm[i].saturating)
            d->mma[d->n_mma++] = (vkt_vk_mma_shape){cm[i].m, cm[i].n, cm[i].k};
    d->size_control = has_ssc && sscf.subgroupSizeControl && sscf.computeFullSubgroups &&
                      (ssc.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT);
    d->push_desc = has_ext(ext, next, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME);
    d->min_subgroup = has_ssc ? ssc.minSubgroupSize : 0;
    d->max_subgroup = has_ssc ? ssc.maxSubgroupSize : 0;
    char cm2_desc[200] = "";
    query_cm2(d, pd, has_cm2 ? &cm2f : NULL, &cm2p, cm2_desc, sizeof cm2_desc);

    /* the row of --list-devices */
    char vbuf[16], dver[32];
    snprintf(info->vendor, sizeof info->vendor, "%s", vendor_name(p.vendorID, vbuf, sizeof vbuf));
    /* the names are 256-byte arrays; the info fields are shorter, and cut is fine */
    snprintf(info->name, sizeof info->name, "%.127s", p.deviceName);
    driver_version(p.vendorID, p.driverVersion, dver, sizeof dver);
    if (has_drv && drv.driverName[0])
        snprintf(info->driver, sizeof info->driver, "%.40s, %.80s", drv.driverName,
                 drv.driverInfo);
    else
        snprintf(info->driver, sizeof info->driver, "driver version %s", dver);
    uint64_t best_heap = 0;
    for (uint32_t h = 0; h < mp.memoryHeapCount; h++)
        if ((mp.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
            mp.memoryHeaps[h].size > best_heap)
            best_heap = mp.memoryHeaps[h].size;
    info->memory_bytes = best_heap;
    info->fp16 = has_f16 && f16.shaderFloat16; /* what the fp16 matmul tiers need */
    size_t used = 0;
    for (uint32_t i = 0; i < ncm; i++) {
        if (!coopmat_usable(&cm[i])) continue;
        info->coopmat = 1;
        char s[96], item[128];
        coopmat_str(&cm[i], s, sizeof s);
        snprintf(item, sizeof item, "%s%s (%s, %s)", used ? ", " : "", s, cm[i].ext,
                 scope_name(cm[i].scope));
        if (used + strlen(item) < sizeof info->coopmat_shapes) {
            memcpy(info->coopmat_shapes + used, item, strlen(item) + 1);
            used += strlen(item);
        }
    }
    info->peak_flops = peak_estimate(p.deviceType);
    info->is_gpu = p.deviceType != VK_PHYSICAL_DEVICE_TYPE_CPU;

    /* the details under it */
    text t = {info->details, sizeof info->details, 0, 0};
    line(&t, "type: %s, Vulkan %u.%u.%u (using %u.%u), vendor id 0x%04X, device id 0x%04X",
         type_name(p.deviceType), VK_API_VERSION_MAJOR(p.apiVersion),
         VK_API_VERSION_MINOR(p.apiVersion), VK_API_VERSION_PATCH(p.apiVersion),
         VK_API_VERSION_MAJOR(api), VK_API_VERSION_MINOR(api), p.vendorID, p.deviceID);
    line(&t, "driver: %s%s%s, version %s", has_drv ? drv.driverName : "(no driver properties)",
         has_drv ? " / " : "", has_drv ? drv.driverInfo : "", dver);
    char heaps[400] = "";
    size_t hl = 0;
    for (uint32_t h = 0; h < mp.memoryHeapCount && hl < sizeof heaps; h++) {
        char sz[32];
        fmt_bytes(sz, sizeof sz, (double)mp.memoryHeaps[h].size);
        int n = snprintf(heaps + hl, sizeof heaps - hl, "%s#%u %s%s", h ? ", " : "", h, sz,
                         mp.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT
                             ? " device-local" : " host");
        if (n < 0) break;
        hl += (size_t)n;
    }
    line(&t, "memory heaps: %s", mp.memoryHeapCount ? heaps : "none");
    if (has_sub)
        line(&t, "subgroup size %u (compute: %s; arithmetic: %s, shuffle: %s, ballot: %s)",
             sub.subgroupSize, yn(sub.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT),
             yn(sub.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT),
             yn(sub.supportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT),
             yn(sub.supportedOperations & VK_SUBGROUP_FEATURE_BALLOT_BIT));
    else
        line(&t, "subgroup size unknown (needs Vulkan 1.1)");
    line(&t, "fp16: shaderFloat16 %s, storageBuffer16BitAccess %s",
         has_f16 ? yn(f16.shaderFloat16) : "unknown",
         has_s16 ? yn(s16.storageBuffer16BitAccess) : "unknown");
    char maxalloc[32] = "unknown", maxbuf[32] = "unknown", sbr[32], shm[32];
    d->max_alloc = effective_max_alloc(has_m3 ? m3.maxMemoryAllocationSize : 0,
                                       has_m4 ? m4.maxBufferSize : 0);
    info->max_alloc_bytes = d->max_alloc;
    if (has_m4) fmt_bytes(maxbuf, sizeof maxbuf, (double)m4.maxBufferSize);
    d->subgroup_size = has_sub ? sub.subgroupSize : 0;
    d->subgroup_ballot = has_sub && (sub.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                         (sub.supportedOperations & VK_SUBGROUP_FEATURE_BASIC_BIT) &&
                         (sub.supportedOperations & VK_SUBGROUP_FEATURE_BALLOT_BIT);
    if (has_m3) fmt_bytes(maxalloc, sizeof maxalloc, (double)m3.maxMemoryAllocationSize);
    fmt_bytes(sbr, sizeof sbr, (double)p.limits.maxStorageBufferRange);
    fmt_bytes(shm, sizeof shm, (double)p.limits.maxComputeSharedMemorySize);
    line(&t, "limits: storage buffer range %s, allocation %s, buffer %s, shared memory %s, "
             "workgroup %u invocations, push constants %u B, timestamps %s",
         sbr, maxalloc, maxbuf, shm, p.limits.maxComputeWorkGroupInvocations,
         p.limits.maxPushConstantsSize, yn(p.limits.timestampComputeAndGraphics));
    if (!ncm) {
        line(&t, "cooperative matrix: none (%s)",
             has_ext(ext, next, VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME) ||
                     has_ext(ext, next, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME)
                 ? "the extension lists no configuration"
                 : "neither VK_KHR_cooperative_matrix nor VK_NV_cooperative_matrix");
    } else {
        /* every configuration, a few per line: A*B+C, scope, extension */
        char buf[100] = "";
        size_t bl = 0;
        line(&t, "cooperative matrix: %u configuration%s (MxNxK A*B+C):", ncm, ncm == 1 ? "" : "s");
        for (uint32_t i = 0; i < ncm; i++) {
            char s[64], item[100];
            coopmat_str(&cm[i], s, sizeof s);
            snprintf(item, sizeof item, "%s%s %s %s", bl ? "; " : "  ", s, cm[i].ext,
                     scope_name(cm[i].scope));
            if (bl && bl + strlen(item) > 90) {
                line(&t, "%s", buf);
                bl = 0;
                snprintf(item, sizeof item, "  %s %s %s", s, cm[i].ext, scope_name(cm[i].scope));
            }
            bl += (size_t)snprintf(buf + bl, sizeof buf - bl, "%s", item);
        }
        if (bl) line(&t, "%s", buf);
    }
    if (has_cm2)
        line(&t, "cooperative matrix 2 (NV): %s", cm2_desc);
    if (has_ssc)
        line(&t, "subgroup size control: sizes %u..%u%s", d->min_subgroup, d->max_subgroup,
             d->size_control ? ", required sizes with full subgroups in compute shaders"
                             : " (not usable for compute: the tiers that need a size refuse)");
    line(&t, "push descriptors: %s",
         d->push_desc ? "yes (VK_KHR_push_descriptor)" : "no (descriptor sets from pools)");
    line(&t, "peak fp32 estimate: rough, from the device type (%s)",
         p.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU
             ? "CPU: lavapipe-class shaders reach a few GFLOP/s"
             : "Vulkan reports no clocks or core counts");
    free(cm);
    free(ext);
}

static void enumerate(void) {
    if (enumerated) return;
    enumerated = 1;
    vk = vkt_vk_loader_open();
    if (!vk) {
        snprintf(note, sizeof note, "%s", vkt_vk_loader_note());
        return;
    }
    /* the newest version both the loader and these headers know; 1.1 puts the *2 queries and
     * subgroup properties in core, and a 1.0 loader gets them from the KHR extension */
    uint32_t loader_api = VK_API_VERSION_1_0;
    if (vk->vkEnumerateInstanceVersion && vk->vkEnumerateInstanceVersion(&loader_api) != VK_SUCCESS)
        loader_api = VK_API_VERSION_1_0;
    loader_api = major_minor(loader_api);
    instance_api = loader_api < VK_API_VERSION_1_3 ? loader_api : VK_API_VERSION_1_3;
    uint32_t next = 0;
    VkExtensionProperties *ext = NULL;
    if (vk->vkEnumerateInstanceExtensionProperties(NULL, &next, NULL) == VK_SUCCESS && next) {
        ext = calloc(next, sizeof *ext);
        if (!ext || vk->vkEnumerateInstanceExtensionProperties(NULL, &next, ext) < 0) next = 0;
    }
    const char *exts[3], *layers[1]; /* see vkt_vk_validation_prepare */
    uint32_t nexts = 0, nlayers = 0;
    if (instance_api < VK_API_VERSION_1_1 &&
        has_ext(ext, next, VK_KHR_GET_PHYSICAL_DEVICE_PROPERTIES_2_EXTENSION_NAME)) {
        exts[nexts++] = VK_KHR_GET_PHYSICAL_DEVICE_PROPERTIES_2_EXTENSION_NAME;
        props2_khr = 1;
    }
    free(ext);
    const void *validation = vkt_vk_validation_prepare(vk, layers, &nlayers, exts, &nexts);
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .pApplicationName = "vktrain",
                             .applicationVersion = VK_MAKE_API_VERSION(0, 0, 1, 0),
                             .pEngineName = "vktrain",
                             .engineVersion = VK_MAKE_API_VERSION(0, 0, 1, 0),
                             .apiVersion = instance_api};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                               .pNext = validation,
                               .pApplicationInfo = &app,
                               .enabledLayerCount = nlayers,
                               .ppEnabledLayerNames = nlayers ? layers : NULL,
                               .enabledExtensionCount = nexts,
                               .ppEnabledExtensionNames = nexts ? exts : NULL};
    VkResult r = vk->vkCreateInstance(&ci, NULL, &instance);
    if (r != VK_SUCCESS) {
        instance = VK_NULL_HANDLE;
        snprintf(note, sizeof note,
                 "vulkan: no usable Vulkan driver (vkCreateInstance: %s): install one "
                 "(mesa-vulkan-drivers, or the GPU vendor's)",
                 vkt_vk_result_name(r));
        return;
    }
    atexit(teardown);
    char err[256];
    if (vkt_vk_loader_instance(instance, props2_khr, err, sizeof err)) {
        snprintf(note, sizeof note, "vulkan: %s", err);
        teardown();
        return;
    }
    vkt_vk_validation_start(instance, vk);
    uint32_t n = 0;
    r = vk->vkEnumeratePhysicalDevices(instance, &n, NULL);
    VkPhysicalDevice pds[MAX_DEVICES];
    if (r == VK_SUCCESS && n) {
        if (n > MAX_DEVICES) n = MAX_DEVICES;
        r = vk->vkEnumeratePhysicalDevices(instance, &n, pds);
    }
    if (r < 0 || n == 0) {
        snprintf(note, sizeof note,
                 "vulkan: the loader found no Vulkan device%s%s: install a driver "
                 "(mesa-vulkan-drivers, or the GPU vendor's)",
                 r < 0 ? " " : "", r < 0 ? vkt_vk_result_name(r) : "");
        return;
    }
    for (uint32_t i = 0; i < n; i++) describe(&devs[ndev++], pds[i]);
}

int vkt_vk_devices_count(void) {
    enumerate();
    return ndev;
}

const vkt_vk_physdev *vkt_vk_devices_get(int index) {
    enumerate();
    return index >= 0 && index < ndev ? &devs[index] : NULL;
}

const char *vkt_vk_devices_note(void) {
    enumerate();
    return note;
}

VkInstance vkt_vk_instance(void) {
    enumerate();
    return instance;
}

const vkt_vk_fns *vkt_vk_instance_fns(void) {
    enumerate();
    return instance != VK_NULL_HANDLE ? vk : NULL;
}
