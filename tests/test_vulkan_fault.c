/* The device-failure policy on the vulkan backend (tests/device_fault.h): a lost device at a
 * vkQueueSubmit or a fence wait, and a refused vkAllocateMemory, end the run with exit 1
 * naming the device, the call and VK_ERROR_*, and leave the last good checkpoint. This
 * process runs under VK_LAYER_KHRONOS_validation where it is installed: what the backend does
 * after a failure (no more work, the teardown) must be valid Vulkan too, counted until after
 * the instance is destroyed. */
#include "backend/vulkan/vk_validation.h"
#include "device_fault.h"

static void check_at_exit(void) { /* registered before the backend's teardown: runs after it */
    int e = vkt_vk_validation_errors();
    if (e > 0) {
        fprintf(stderr, "FAIL test_vulkan_fault: %d validation error(s)\n", e);
        _exit(1);
    }
}

int main(void) {
    setenv("VKT_VULKAN_VALIDATION", "1", 1); /* before the first Vulkan call */
    atexit(check_at_exit);
    /* one submission per round trip (matmul = fp32: no tier timing before the first step):
     * steps 1 2, checkpoint 3-5, steps 6 7: submission 7 is step 4's */
    const fault_case fc = {"vulkan", "submit:7", "vkQueueSubmit failed", "VK_ERROR_DEVICE_LOST",
                           "vkWaitForFences failed", "VK_ERROR_DEVICE_LOST",
                           "VK_ERROR_OUT_OF_DEVICE_MEMORY", "backend.matmul=fp32"};
    int rc = device_fault_main(&fc);
    if (vkt_vk_validation_errors() < 0)
        printf("test_vulkan_fault: not validated (no validation layer)\n");
    return rc;
}
