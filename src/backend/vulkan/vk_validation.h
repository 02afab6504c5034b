/* Internal to the vulkan backend, and for tests: the Khronos validation layer (core checks
 * and synchronization validation), opt-in with VKT_VULKAN_VALIDATION=1, read once when the
 * instance is created (at the first device query). Free of Vulkan types, so a test can
 * include it. Every message of severity ERROR or WARNING is printed on stderr
 * ("vulkan validation: error: ...") and counted. */
#ifndef VKT_VK_VALIDATION_H
#define VKT_VK_VALIDATION_H

#include "vktrain/backend.h"

/* Errors reported so far; -1 when validation is not active: not requested, or requested but
 * unavailable (no layer, no VK_EXT_debug_utils, no messenger), which is said on stderr. */
int vkt_vk_validation_errors(void);
int vkt_vk_validation_warnings(void); /* likewise */
/* Proves the counting works: makes one call on be's device that the layer is known to reject
 * (vkCreateBuffer of size 0; the layer stops it before the driver sees it) and returns how
 * many errors it added (>= 1 when validation works); -1, without any call, when not active. */
int vkt_vk_validation_selftest(vkt_backend *be);
/* Likewise for synchronization validation: records two writes of one buffer with no barrier
 * between them and returns the errors that added (>= 1 when it works); -1 when validation
 * or its synchronization part is not active. */
int vkt_vk_validation_sync_selftest(vkt_backend *be);

#endif
