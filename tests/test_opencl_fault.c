/* The device-failure policy on the opencl backend (tests/device_fault.h): a kernel launch or
 * a read that fails with CL_OUT_OF_RESOURCES, and a refused clCreateBuffer, end the run with
 * exit 1 naming the device, the call and the CL error, and leave the last good checkpoint. */
#include "device_fault.h"

int main(void) {
    /* about 65 kernel launches per step of this model: launch 230 is in step 4 (the test
     * accepts any step after the first checkpoint) */
    const fault_case fc = {"opencl", "submit:230", "clEnqueueNDRangeKernel(",
                           "CL_OUT_OF_RESOURCES", "clEnqueueReadBuffer failed",
                           "CL_OUT_OF_RESOURCES", "CL_MEM_OBJECT_ALLOCATION_FAILURE", NULL};
    return device_fault_main(&fc);
}
