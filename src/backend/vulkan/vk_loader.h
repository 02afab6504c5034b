/* Internal to the vulkan backend: libvulkan opened at run time (dlopen) and the entry points
 * the backend uses, so the binary never links against the loader and runs without it. */
#ifndef VKT_VK_LOADER_H
#define VKT_VK_LOADER_H

#define VK_NO_PROTOTYPES
#include <stddef.h>
#include <vulkan/vulkan.h>

/* VK_KHR_cooperative_matrix arrived in headers 1.3.255; Debian 12 ships 1.3.239. The entry
 * point comes from vkGetInstanceProcAddr anyway, so the few types are declared here (values
 * from the registry; the component and scope enums share the NV extension's values). */
#ifndef VK_KHR_cooperative_matrix
#define VK_KHR_cooperative_matrix 1
#define VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME "VK_KHR_cooperative_matrix"
#define VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR ((VkStructureType)1000506001)
typedef VkComponentTypeNV VkComponentTypeKHR;
typedef VkScopeNV VkScopeKHR;
typedef struct VkCooperativeMatrixPropertiesKHR {
    VkStructureType sType;
    void *pNext;
    uint32_t MSize;
    uint32_t NSize;
    uint32_t KSize;
    VkComponentTypeKHR AType;
    VkComponentTypeKHR BType;
    VkComponentTypeKHR CType;
    VkComponentTypeKHR ResultType;
    VkBool32 saturatingAccumulation;
    VkScopeKHR scope;
} VkCooperativeMatrixPropertiesKHR;
typedef VkResult(VKAPI_PTR *PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR)(
    VkPhysicalDevice physicalDevice, uint32_t *pPropertyCount,
    VkCooperativeMatrixPropertiesKHR *pProperties);
#endif

/* VK_NV_cooperative_matrix2 (workgroup-scope matrices, tensor addressing) arrived in headers
 * 1.3.300-ish; likewise declared here when the headers lack it (values from the registry). */
#ifndef VK_NV_cooperative_matrix2
#define VK_NV_cooperative_matrix2 1
#define VK_NV_COOPERATIVE_MATRIX_2_EXTENSION_NAME "VK_NV_cooperative_matrix2"
#define VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_2_FEATURES_NV ((VkStructureType)1000593000)
#define VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_FLEXIBLE_DIMENSIONS_PROPERTIES_NV ((VkStructureType)1000593001)
#define VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_2_PROPERTIES_NV ((VkStructureType)1000593002)
typedef struct VkPhysicalDeviceCooperativeMatrix2FeaturesNV {
    VkStructureType sType;
    void *pNext;
    VkBool32 cooperativeMatrixWorkgroupScope;
    VkBool32 cooperativeMatrixFlexibleDimensions;
    VkBool32 cooperativeMatrixReductions;
    VkBool32 cooperativeMatrixConversions;
    VkBool32 cooperativeMatrixPerElementOperations;
    VkBool32 cooperativeMatrixTensorAddressing;
    VkBool32 cooperativeMatrixBlockLoads;
} VkPhysicalDeviceCooperativeMatrix2FeaturesNV;
typedef struct VkPhysicalDeviceCooperativeMatrix2PropertiesNV {
    VkStructureType sType;
    void *pNext;
    uint32_t cooperativeMatrixWorkgroupScopeMaxWorkgroupSize;
    uint32_t cooperativeMatrixFlexibleDimensionsMaxDimension;
    uint32_t cooperativeMatrixWorkgroupScopeReservedSharedMemory;
} VkPhysicalDeviceCooperativeMatrix2PropertiesNV;
typedef struct VkCooperativeMatrixFlexibleDimensionsPropertiesNV {
    VkStructureType sType;
    void *pNext;
    uint32_t MGranularity;
    uint32_t NGranularity;
    uint32_t KGranularity;
    VkComponentTypeKHR AType;
    VkComponentTypeKHR BType;
    VkComponentTypeKHR CType;
    VkComponentTypeKHR ResultType;
    VkBool32 saturatingAccumulation;
    VkScopeKHR scope;
    uint32_t workgroupInvocations;
} VkCooperativeMatrixFlexibleDimensionsPropertiesNV;
typedef VkResult(VKAPI_PTR *PFN_vkGetPhysicalDeviceCooperativeMatrixFlexibleDimensionsPropertiesNV)(
    VkPhysicalDevice physicalDevice, uint32_t *pPropertyCount,
    VkCooperativeMatrixFlexibleDimensionsPropertiesNV *pProperties);
#endif

/* Global and instance-level entry points (X-macro: one list, used for the struct and for
 * loading). The _OPT entries may be NULL: a 1.0 loader, an extension nobody offers. */
#define VKT_VK_GLOBAL_FNS(X, X_OPT)                                                           \
    X(vkCreateInstance)                                                                       \
    X(vkEnumerateInstanceExtensionProperties)                                                 \
    X_OPT(vkEnumerateInstanceLayerProperties)                                                 \
    X_OPT(vkEnumerateInstanceVersion)

#define VKT_VK_INSTANCE_FNS(X, X_OPT)                                                         \
    X(vkDestroyInstance)                                                                      \
    X(vkEnumeratePhysicalDevices)                                                             \
    X(vkGetPhysicalDeviceProperties)                                                          \
    X(vkGetPhysicalDeviceFeatures)                                                            \
    X(vkGetPhysicalDeviceMemoryProperties)                                                    \
    X(vkGetPhysicalDeviceQueueFamilyProperties)                                               \
    X(vkEnumerateDeviceExtensionProperties)                                                   \
    X(vkCreateDevice)                                                                         \
    X(vkGetDeviceProcAddr)                                                                    \
    X_OPT(vkGetPhysicalDeviceProperties2)                                                     \
    X_OPT(vkGetPhysicalDeviceFeatures2)                                                       \
    X_OPT(vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR)                                  \
    X_OPT(vkGetPhysicalDeviceCooperativeMatrixPropertiesNV)                                   \
    X_OPT(vkGetPhysicalDeviceCooperativeMatrixFlexibleDimensionsPropertiesNV)                 \
    X_OPT(vkCreateDebugUtilsMessengerEXT)                                                     \
    X_OPT(vkDestroyDebugUtilsMessengerEXT)

/* Device-level entry points for the compute ops (loaded per VkDevice with
 * vkGetDeviceProcAddr, which skips the loader's dispatch trampoline). */
#define VKT_VK_DEVICE_FNS(X)                                                                  \
    X(vkDestroyDevice)                                                                        \
    X(vkGetDeviceQueue)                                                                       \
    X(vkDeviceWaitIdle)                                                                       \
    X(vkQueueSubmit)                                                                          \
    X(vkQueueWaitIdle)                                                                        \
    X(vkCreateBuffer)                                                                         \
    X(vkDestroyBuffer)                                                                        \
    X(vkGetBufferMemoryRequirements)                                                          \
    X(vkAllocateMemory)                                                                       \
    X(vkFreeMemory)                                                                           \
    X(vkBindBufferMemory)                                                                     \
    X(vkMapMemory)                                                                            \
    X(vkUnmapMemory)                                                                          \
    X(vkFlushMappedMemoryRanges)                                                              \
    X(vkInvalidateMappedMemoryRanges)                                                         \
    X(vkCreateCommandPool)                                                                    \
    X(vkDestroyCommandPool)                                                                   \
    X(vkResetCommandPool)                                                                     \
    X(vkAllocateCommandBuffers)                                                               \
    X(vkFreeCommandBuffers)                                                                   \
    X(vkBeginCommandBuffer)                                                                   \
    X(vkEndCommandBuffer)                                                                     \
    X(vkCreateFence)                                                                          \
    X(vkDestroyFence)                                                                         \
    X(vkWaitForFences)                                                                        \
    X(vkResetFences)                                                                          \
    X(vkCreateShaderModule)                                                                   \
    X(vkDestroyShaderModule)                                                                  \
    X(vkCreatePipelineCache)                                                                  \
    X(vkDestroyPipelineCache)                                                                 \
    X(vkGetPipelineCacheData)                                                                 \
    X(vkCreateDescriptorSetLayout)                                                            \
    X(vkDestroyDescriptorSetLayout)                                                           \
    X(vkCreatePipelineLayout)                                                                 \
    X(vkDestroyPipelineLayout)                                                                \
    X(vkCreateComputePipelines)                                                               \
    X(vkDestroyPipeline)                                                                      \
    X(vkCreateDescriptorPool)                                                                 \
    X(vkDestroyDescriptorPool)                                                                \
    X(vkResetDescriptorPool)                                                                  \
    X(vkAllocateDescriptorSets)                                                               \
    X(vkUpdateDescriptorSets)                                                                 \
    X(vkCreateQueryPool)                                                                      \
    X(vkDestroyQueryPool)                                                                     \
    X(vkGetQueryPoolResults)                                                                  \
    X(vkCmdBindPipeline)                                                                      \
    X(vkCmdBindDescriptorSets)                                                                \
    X(vkCmdPushConstants)                                                                     \
    X(vkCmdDispatch)                                                                          \
    X(vkCmdPipelineBarrier)                                                                   \
    X(vkCmdCopyBuffer)                                                                        \
    X(vkCmdFillBuffer)                                                                        \
    X(vkCmdResetQueryPool)                                                                    \
    X(vkCmdWriteTimestamp)

#define VKT_VK_FIELD(name) PFN_##name name;

typedef struct vkt_vk_fns {
    PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr;
    VKT_VK_GLOBAL_FNS(VKT_VK_FIELD, VKT_VK_FIELD)
    VKT_VK_INSTANCE_FNS(VKT_VK_FIELD, VKT_VK_FIELD)
} vkt_vk_fns;

typedef struct vkt_vk_device_fns {
    VKT_VK_DEVICE_FNS(VKT_VK_FIELD)
} vkt_vk_device_fns;

/* Opens the loader once (later calls return the first result) and loads the global entry
 * points. NULL when there is no usable loader; vkt_vk_loader_note() then says why. */
const vkt_vk_fns *vkt_vk_loader_open(void);
const char *vkt_vk_loader_note(void);
/* Loads the instance-level entry points into the table vkt_vk_loader_open returned.
 * props2_khr: the instance enabled VK_KHR_get_physical_device_properties2 instead of being
 * 1.1, so the *2 queries come from their KHR names. 0 = ok; else names what is missing. */
int vkt_vk_loader_instance(VkInstance inst, int props2_khr, char *err, size_t errlen);
/* An optional device entry point (an extension's), NULL when the driver lacks it. */
PFN_vkVoidFunction vkt_vk_loader_device_proc(VkDevice dev, const char *name);
/* Fills a device table; 0 = ok, else err names the entry point the driver lacks. */
int vkt_vk_loader_device(VkDevice dev, vkt_vk_device_fns *out, char *err, size_t errlen);

#endif
