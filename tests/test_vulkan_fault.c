/* The device-failure policy on the vulkan backend (tests/device_fault.h): a lost device at a
 * vkQueueSubmit or a fence wait, and a refused vkAllocateMemory, end the run with exit 1
 * naming the device, the call and VK_ERROR_*, and leave the last good checkpoint. */
#include "device_fault.h"

int main(void) {
    /* one submission per round trip (matmul = fp32: no tier timing before the first step):
     * steps 1 2, checkpoint 3-5, steps 6 7: submission 7 is step 4's */
    const fault_case fc = {"vulkan", "submit:7", "vkQueueSubmit failed", "VK_ERROR_DEVICE_LOST",
                           "vkWaitForFences failed", "VK_ERROR_DEVICE_LOST",
                           "VK_ERROR_OUT_OF_DEVICE_MEMORY", "backend.matmul=fp32"};
    return device_fault_main(&fc);
}
