/* Internal to the vulkan backend: the one VkInstance and the physical devices it found,
 * enumerated once, with everything --list-devices and device selection need. */
#ifndef VKT_VK_DEVICE_H
#define VKT_VK_DEVICE_H

#include "backend/backend_impl.h"
#include "backend/vulkan/vk_loader.h"

typedef struct vkt_vk_physdev {
    VkPhysicalDevice pd;
    uint32_t api_version; /* min(device, instance): what may be used on it */
    uint64_t max_alloc;   /* the largest allocation: min(maxMemoryAllocationSize,
                           * maxBufferSize), 1 GiB when unknown, or VKT_VULKAN_MAX_ALLOC */
    uint32_t subgroup_size; /* of compute shaders; 0 when unknown (Vulkan 1.0) */
    int subgroup_ballot;    /* compute shaders have subgroupBroadcast (basic + ballot) */
    vkt_device_info info;
} vkt_vk_physdev;

/* Creates the instance and enumerates on first use; later calls return the cache.
 * Number of devices, 0 when there is no loader, driver or device (vkt_vk_devices_note). */
int vkt_vk_devices_count(void);
const vkt_vk_physdev *vkt_vk_devices_get(int index); /* NULL when out of range */
const char *vkt_vk_devices_note(void);               /* "" when devices were found */
/* "VK_ERROR_DEVICE_LOST", or "VkResult -N" for a code without a name here */
const char *vkt_vk_result_name(VkResult r);
/* The instance and its loaded entry points, for the device-creating code to come. */
VkInstance vkt_vk_instance(void);
const vkt_vk_fns *vkt_vk_instance_fns(void);

/* vk_validation.c, around the instance's life (see vk_validation.h). Before vkCreateInstance:
 * when VKT_VULKAN_VALIDATION=1 and the layer and VK_EXT_debug_utils exist, appends them to
 * the lists (room needed: one layer, two extensions) and returns the messenger's create info, for
 * VkInstanceCreateInfo.pNext (messages of vkCreateInstance itself); else NULL. */
const void *vkt_vk_validation_prepare(const vkt_vk_fns *vk, const char **layers,
                                      uint32_t *nlayers, const char **exts, uint32_t *nexts);
void vkt_vk_validation_start(VkInstance inst, const vkt_vk_fns *vk); /* instance fns loaded */
void vkt_vk_validation_stop(VkInstance inst, const vkt_vk_fns *vk);  /* before destroying it */

#endif
