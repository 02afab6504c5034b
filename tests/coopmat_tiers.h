/* The vulkan backend's cooperative-matrix matmul tiers, listed once for every test that
 * exercises them (test_shaders, test_backend_ops, test_vulkan_tiers, test_vulkan_validation,
 * test_vulkan_sync, test_vulkan_train), and what VKT_REQUIRE_COOPMAT asks of them:
 *   unset, 0  a tier this binary or device cannot run is noted in the output and not run;
 *   built     every tier's shader variant is compiled into this binary (test_shaders): what a
 *             glslang >= 13 gives on any machine (CI's glslang 15 leg, on Debian 12's lavapipe,
 *             which has no cooperative matrix);
 *   1         built and executed: a tier the device + binary cannot run fails the test, with
 *             the tier's name and the backend's refusal (CI's Debian 13 leg, whose Mesa 26
 *             lavapipe has VK_KHR_cooperative_matrix: tools/debian13-leg.sh).
 * A new tier is one more line in vkt_test_coopmat_tiers. */
#ifndef VKT_TEST_COOPMAT_TIERS_H
#define VKT_TEST_COOPMAT_TIERS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkt_test.h"
#include "vktrain/backend.h"

typedef struct vkt_test_coopmat_tier {
    const char *tier;   /* the value of the matmul option */
    const char *shader; /* its SPIR-V variant (vkt_spirv_find) */
} vkt_test_coopmat_tier;

static const vkt_test_coopmat_tier vkt_test_coopmat_tiers[] = {
    {"coopmat", "matmul_coopmat"},
    /* coopmat2 ("matmul_coopmat2") is not listed: no device here runs it (Mesa 26 lavapipe
     * exposes VK_NV_cooperative_matrix2 without workgroup scope), so it cannot be required */
};
#define VKT_TEST_NCOOPMAT ((int)(sizeof vkt_test_coopmat_tiers / sizeof vkt_test_coopmat_tiers[0]))

/* VKT_REQUIRE_COOPMAT=1: every tier must be executed. */
static inline int vkt_test_coopmat_run_required(void) {
    const char *r = getenv("VKT_REQUIRE_COOPMAT");
    return r && !strcmp(r, "1");
}

/* VKT_REQUIRE_COOPMAT=1 or =built: every tier's shader must be in this binary. */
static inline int vkt_test_coopmat_built_required(void) {
    const char *r = getenv("VKT_REQUIRE_COOPMAT");
    return r && (!strcmp(r, "1") || !strcmp(r, "built"));
}

/* Tier `tier` cannot run in `test` (why: the backend's refusal): a failure under
 * VKT_REQUIRE_COOPMAT=1, else a note. */
static inline void vkt_test_coopmat_missing(const char *test, const char *tier,
                                            const char *why) {
    if (vkt_test_coopmat_run_required()) {
        fprintf(stderr, "FAIL %s: matmul = %s cannot run here, but VKT_REQUIRE_COOPMAT=1 "
                "requires it: %s\n", test, tier, why);
        vkt_test_failures++;
    } else {
        printf("  matmul = %s not run: %s\n", tier, why);
    }
}

/* Selects matmul = tier on be (whose precision the caller has set to fp16: these tiers round
 * to fp16). 1 when selected; 0 after vkt_test_coopmat_missing with the backend's refusal. */
static inline int vkt_test_use_coopmat(vkt_backend *be, const char *test, const char *tier) {
    char err[512];
    if (vkt_backend_set_option(be, "matmul", tier, err, sizeof err) == 0) return 1;
    vkt_test_coopmat_missing(test, tier, err);
    return 0;
}

/* Every tier cannot run for one reason (precision = fp16 refused, no device): each is noted,
 * or fails under VKT_REQUIRE_COOPMAT=1. */
static inline void vkt_test_coopmat_all_missing(const char *test, const char *why) {
    for (int i = 0; i < VKT_TEST_NCOOPMAT; i++)
        vkt_test_coopmat_missing(test, vkt_test_coopmat_tiers[i].tier, why);
}

#endif
