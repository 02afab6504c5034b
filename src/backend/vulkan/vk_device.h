/* Internal to the vulkan backend: the one VkInstance and the physical devices it found,
 * enumerated once, with everything --list-devices and device selection need. */
#ifndef VKT_VK_DEVICE_H
#define VKT_VK_DEVICE_H

#include "backend/backend_impl.h"
#include "backend/vulkan/vk_loader.h"

/* A cooperative-matrix shape (rows, columns, depth) the fp16 tiers can use. */
typedef struct vkt_vk_mma_shape {
    uint32_t m, n, k;
} vkt_vk_mma_shape;
#define VKT_VK_MAX_MMA 8

typedef struct vkt_vk_physdev {
    VkPhysicalDevice pd;
    uint32_t api_version; /* min(device, instance): what may be used on it */
    uint64_t max_alloc;   /* the largest allocation: min(maxMemoryAllocationSize,
                           * maxBufferSize), 1 GiB when unknown, or VKT_VULKAN_MAX_ALLOC */
    uint32_t subgroup_size; /* of compute shaders; 0 when unknown (Vulkan 1.0) */
    int subgroup_ballot;    /* compute shaders have subgroupBroadcast (basic + ballot) */
    /* subgroup size control (core 1.3, or VK_EXT_subgroup_size_control): a pipeline may
     * require a size in [min_subgroup, max_subgroup] with full subgroups */
    uint32_t min_subgroup, max_subgroup;
    int size_control; /* subgroupSizeControl + computeFullSubgroups, for compute shaders */
    int push_desc;    /* VK_KHR_push_descriptor: bindings pushed into the command buffer */
    /* VK_KHR_cooperative_matrix: the subgroup-scope f16*f16+f32 shapes, as the device lists
     * them (the coopmat tier picks one; vk_matmul.c) */
    int n_mma;
    vkt_vk_mma_shape mma[VKT_VK_MAX_MMA];
    /* VK_NV_cooperative_matrix2 with every feature the coopmat2 tier uses (workgroup scope,
     * flexible dimensions, conversions, per-element operations, tensor addressing), and its
     * f16*f16+f32 workgroup-scope configuration: block sizes are multiples of the
     * granularities, the workgroup has cm2_wg invocations */
    int cm2;
    uint32_t cm2_wg, cm2_gm, cm2_gn, cm2_gk, cm2_max_dim, cm2_reserved_shmem;
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
