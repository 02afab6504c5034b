/* vkt_profile_* on vulkan:0: timestamp queries around every dispatch, copy and fill, read
 * back at flush (see profile_check.h). Skipped (77) without a trainable Vulkan device or
 * without timestamps on its queue, unless VKT_REQUIRE_BACKENDS names vulkan. */
#include "profile_check.h"

static int skip(const char *why) {
    const char *req = getenv("VKT_REQUIRE_BACKENDS");
    printf("test_vulkan_profile: skipped: %s\n", why);
    return req && strstr(req, "vulkan") ? 1 : 77;
}

int main(void) {
    char err[512];
    vkt_device_info info;
    int dev = vkt_device_resolve("vulkan:0", err, sizeof err);
    if (dev < 0 || vkt_device_info_get(dev, &info) || !info.can_train)
        return skip("no trainable vulkan device");
    vkt_backend *be = vkt_backend_create(dev, err, sizeof err);
    CHECK(be != NULL, "%s", err);
    if (!be) return 1;
    if (vkt_profile_enable(be, 1)) {
        vkt_backend_destroy(be);
        return skip("the device's compute queue has no timestamps");
    }
    vkt_profile_enable(be, 0);
    /* matmul counts dispatches of the matmul shaders: at least one per call */
    profile_check(be, "matmul", 0, 1);
    vkt_backend_destroy(be);
    if (vkt_test_failures) return 1;
    printf("test_vulkan_profile: ok (%s)\n", info.name);
    return 0;
}
