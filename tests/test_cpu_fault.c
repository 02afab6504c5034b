/* The device-failure policy on the cpu backend (tests/device_fault.h): its VKT_FAULT_INJECT
 * fails round trips and allocations, so the train, eval and sample paths are checked on
 * every machine. */
#include "device_fault.h"

int main(void) {
    /* the cpu backend's "submission" is a host round trip: steps 1 2, checkpoint 3-5,
     * steps 6 7: round trip 7 is step 4's */
    const fault_case fc = {"cpu", "submit:7", "download failed", "a simulated device error",
                           "download failed", "a simulated device error", "out of memory",
                           NULL};
    return device_fault_main(&fc);
}
