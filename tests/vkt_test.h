/* Tiny test helpers shared by the ctest executables: checks that count failures, and a
 * relative comparison of float arrays that reports the worst element. */
#ifndef VKT_TEST_H
#define VKT_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vktrain/backend.h"

static int vkt_test_failures = 0;

#define CHECK(cond, ...)                                                                      \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                   \
            fprintf(stderr, __VA_ARGS__);                                                     \
            fprintf(stderr, "\n");                                                            \
            vkt_test_failures++;                                                              \
        }                                                                                     \
    } while (0)

/* Compares got to want elementwise: |got - want| <= rtol * max(|want|, floor), where floor is
 * atol_frac * max|want| over the array (so tiny entries of a large tensor are not judged by
 * their own magnitude). Prints and counts a failure naming what. Returns the worst ratio. */
static inline double vkt_test_close(const char *what, const float *got, const float *want,
                                    size_t n, double rtol, double atol_frac) {
    double maxabs = 0;
    for (size_t i = 0; i < n; i++) maxabs = fmax(maxabs, fabs((double)want[i]));
    double floor_ = atol_frac * maxabs + 1e-30;
    double worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        double lim = rtol * fmax(fabs((double)want[i]), floor_);
        double r = d / lim;
        if (!(r <= worst)) { worst = r; wi = i; } /* catches NaN too */
    }
    if (!(worst <= 1.0)) {
        fprintf(stderr, "FAIL %s: element %zu of %zu: got %.9g want %.9g (%.3g x tolerance)\n",
                what, wi, n, got[wi], want[wi], worst);
        vkt_test_failures++;
    }
    return worst;
}

/* The device a backend's test runs on: BACKEND:0 if it can train (info filled, its global
 * index returned), else -1 after printing why. The caller then exits with *skip_status: 77
 * (ctest SKIP), or 1 when VKT_REQUIRE_BACKENDS names the backend (CI: a missing backend
 * fails). */
static inline int vkt_test_backend_device(const char *test, const char *backend,
                                          vkt_device_info *info, int *skip_status) {
    char err[512], spec[32];
    snprintf(spec, sizeof spec, "%s:0", backend);
    int dev = vkt_device_resolve(spec, err, sizeof err);
    if (dev >= 0 && vkt_device_info_get(dev, info) == 0 && info->can_train) return dev;
    const char *req = getenv("VKT_REQUIRE_BACKENDS");
    printf("%s: skipped: no trainable %s device (%s)\n", test, backend,
           dev < 0 ? err : "its backend cannot train");
    *skip_status = req && strstr(req, backend) ? 1 : 77;
    return -1;
}
static inline int vkt_test_vulkan_device(const char *test, vkt_device_info *info,
                                         int *skip_status) {
    return vkt_test_backend_device(test, "vulkan", info, skip_status);
}

static inline int vkt_test_finish(const char *name) {
    if (vkt_test_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, vkt_test_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

#endif
