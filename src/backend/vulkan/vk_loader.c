/* Opens libvulkan at run time and fills the backend's entry-point tables. A machine without
 * the loader keeps every other backend: the vulkan backend then reports no devices. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/vulkan/vk_loader.h"

static vkt_vk_fns fns;
static void *lib;
static int opened; /* 0: not tried, 1: ok, -1: failed */
static char note[256];

/* dlsym returns an object pointer; POSIX guarantees it converts to a function pointer. */
typedef void (*vkt_vk_voidfn)(void);
static vkt_vk_voidfn sym(void *handle, const char *name) {
    vkt_vk_voidfn f;
    void *p = dlsym(handle, name);
    memcpy(&f, &p, sizeof f);
    return f;
}

const vkt_vk_fns *vkt_vk_loader_open(void) {
    if (opened) return opened > 0 ? &fns : NULL;
    opened = -1;
    /* VKT_VULKAN_LOADER names another loader (a private install, or a missing file to test
     * the no-loader path); otherwise the soname, then the development symlink. */
    const char *override = getenv("VKT_VULKAN_LOADER");
    const char *names[] = {"libvulkan.so.1", "libvulkan.so"};
    const char *tried = names[0];
    if (override && *override) {
        tried = override;
        lib = dlopen(override, RTLD_NOW | RTLD_LOCAL);
    } else {
        for (size_t i = 0; !lib && i < sizeof names / sizeof names[0]; i++)
            lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    }
    if (!lib) {
        snprintf(note, sizeof note,
                 "vulkan: no Vulkan loader (%s): install libvulkan1 and a driver", tried);
        return NULL;
    }
    vkt_vk_voidfn gipa = sym(lib, "vkGetInstanceProcAddr");
    memcpy(&fns.vkGetInstanceProcAddr, &gipa, sizeof gipa);
    if (!fns.vkGetInstanceProcAddr) {
        snprintf(note, sizeof note,
                 "vulkan: %s has no vkGetInstanceProcAddr: not a Vulkan loader", tried);
        dlclose(lib);
        lib = NULL;
        return NULL;
    }
    int missing = 0;
#define LOAD_GLOBAL(name)                                                                     \
    fns.name = (PFN_##name)fns.vkGetInstanceProcAddr(NULL, #name);                           \
    if (!fns.name && !missing) {                                                              \
        snprintf(note, sizeof note, "vulkan: the loader %s lacks %s", tried, #name);          \
        missing = 1;                                                                          \
    }
#define LOAD_GLOBAL_OPT(name) fns.name = (PFN_##name)fns.vkGetInstanceProcAddr(NULL, #name);
    VKT_VK_GLOBAL_FNS(LOAD_GLOBAL, LOAD_GLOBAL_OPT)
#undef LOAD_GLOBAL
#undef LOAD_GLOBAL_OPT
    if (missing) return NULL;
    opened = 1;
    return &fns;
}

const char *vkt_vk_loader_note(void) { return note; }

int vkt_vk_loader_instance(VkInstance inst, int props2_khr, char *err, size_t errlen) {
#define LOAD_INST(name)                                                                       \
    fns.name = (PFN_##name)fns.vkGetInstanceProcAddr(inst, #name);                           \
    if (!fns.name) {                                                                          \
        snprintf(err, errlen, "the Vulkan instance lacks %s", #name);                         \
        return -1;                                                                            \
    }
#define LOAD_INST_OPT(name) fns.name = (PFN_##name)fns.vkGetInstanceProcAddr(inst, #name);
    VKT_VK_INSTANCE_FNS(LOAD_INST, LOAD_INST_OPT)
#undef LOAD_INST
#undef LOAD_INST_OPT
    if (props2_khr) {
        fns.vkGetPhysicalDeviceProperties2 = (PFN_vkGetPhysicalDeviceProperties2)
            fns.vkGetInstanceProcAddr(inst, "vkGetPhysicalDeviceProperties2KHR");
        fns.vkGetPhysicalDeviceFeatures2 = (PFN_vkGetPhysicalDeviceFeatures2)
            fns.vkGetInstanceProcAddr(inst, "vkGetPhysicalDeviceFeatures2KHR");
    }
    return 0;
}

PFN_vkVoidFunction vkt_vk_loader_device_proc(VkDevice dev, const char *name) {
    return fns.vkGetDeviceProcAddr ? fns.vkGetDeviceProcAddr(dev, name) : NULL;
}

int vkt_vk_loader_device(VkDevice dev, vkt_vk_device_fns *out, char *err, size_t errlen) {
    if (!fns.vkGetDeviceProcAddr) {
        snprintf(err, errlen, "the Vulkan instance entry points are not loaded");
        return -1;
    }
#define LOAD_DEV(name)                                                                        \
    out->name = (PFN_##name)fns.vkGetDeviceProcAddr(dev, #name);                             \
    if (!out->name) {                                                                         \
        snprintf(err, errlen, "the Vulkan driver lacks %s", #name);                           \
        return -1;                                                                            \
    }
    VKT_VK_DEVICE_FNS(LOAD_DEV)
#undef LOAD_DEV
    return 0;
}
