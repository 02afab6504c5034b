/* vkt_profile_* on the cpu backend: host timing of each public call (see profile_check.h). */
#include "profile_check.h"

int main(void) {
    char err[512];
    int dev = vkt_device_resolve("cpu:0", err, sizeof err);
    vkt_backend *be = dev < 0 ? NULL : vkt_backend_create(dev, err, sizeof err);
    CHECK(be != NULL, "%s", err);
    if (!be) return 1;
    profile_check(be, "matmul", 1, 0);
    vkt_backend_destroy(be);
    if (vkt_test_failures) return 1;
    printf("test_profile: ok\n");
    return 0;
}
