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

    /* workgroups per dispatch: layernorm_forward runs a workgroup per row (300 and 40 rows:
     * min 40, median of the two calls 300); fills report none */
    {
        enum { R = 300, C = 48 };
        vkt_buf *x = vkt_alloc(be, (size_t)R * C * 8 + R * 8 + C * 8, err, sizeof err);
        CHECK(x != NULL, "alloc: %s", err);
        if (x) {
            vkt_ptr in = vkt_at(x, 0), out = vkt_at(x, (size_t)R * C * 4),
                    st = vkt_at(x, (size_t)R * C * 8), w = vkt_at(x, (size_t)R * C * 8 + R * 8);
            vkt_fill(be, in, 0.5f, (size_t)R * C);
            vkt_fill(be, w, 1.0f, 2 * C);
            vkt_profile_enable(be, 1);
            vkt_layernorm_forward(be, out, st, vkt_ptr_addf(st, R), in, w, vkt_ptr_addf(w, C), R, C, VKT_NULL_PTR);
            vkt_layernorm_forward(be, out, st, vkt_ptr_addf(st, R), in, w, vkt_ptr_addf(w, C), 40, C, VKT_NULL_PTR);
            vkt_fill(be, in, 0.0f, 16);
            vkt_synchronize(be);
            vkt_profile_entry e[64];
            int n = vkt_profile_report(be, e, 64);
            int seen = 0;
            for (int i = 0; i < n && i < 64; i++) {
                if (!strcmp(e[i].name, "layernorm_forward")) {
                    seen = 1;
                    CHECK(e[i].min_groups == 40 && e[i].median_groups == R,
                          "layernorm_forward workgroups min %llu median %llu, want 40 and %d",
                          (unsigned long long)e[i].min_groups,
                          (unsigned long long)e[i].median_groups, R);
                }
                if (!strcmp(e[i].name, "fill"))
                    CHECK(e[i].median_groups == 0, "fill reports %llu workgroups",
                          (unsigned long long)e[i].median_groups);
            }
            CHECK(seen, "no layernorm_forward entry");
            vkt_profile_enable(be, 0);
            vkt_free(be, x);
        }
    }
    vkt_backend_destroy(be);
    if (vkt_test_failures) return 1;
    printf("test_vulkan_profile: ok (%s)\n", info.name);
    return 0;
}
