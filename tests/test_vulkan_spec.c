/* Specialization constants through the vulkan pipeline registry: matmul_f32 dispatched with
 * other workgroup and tile sizes (local_size_x_id/_y_id, TM, TN, BK; the 64x64 block kept)
 * computes the same product as the host, with one pipeline per set of constants (in any
 * order); the coopmat variants are specialized to 4 subgroups; a dispatch whose grid assumes
 * another workgroup size than the shader's stops with a message. Skips (77) without a Vulkan
 * device unless VKT_REQUIRE_BACKENDS names vulkan. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/vulkan/vk_context.h"
#include "vkt_test.h"

enum { M = 67, N = 45, K = 33 };
static float ha[M * K], hb[K * N], want[M * N];

static void dispatch(vkt_backend *be, const vkt_vk_shader *sh, vkt_buf *c_, vkt_buf *a,
                     vkt_buf *b) {
    vkt_vk_ctx *c = vkt_vk(be);
    vkt_matmul_push pc = {.M = M, .N = N, .K = K, .alpha = 1.0f, .k_split = K};
    /* C, A, B; no bias, no fused GELU outputs */
    vkt_ptr p[6] = {vkt_at(c_, 0), vkt_at(a, 0), vkt_at(b, 0), VKT_NULL_PTR, VKT_NULL_PTR,
                    VKT_NULL_PTR};
    vkt_vk_bindings bd;
    vkt_vk_bind(c, &bd, 6, p, NULL);
    pc.off_c = bd.elem_off[0];
    pc.off_a = bd.elem_off[1];
    pc.off_b = bd.elem_off[2];
    vkt_vk_dispatch(c, sh, &bd, &pc, sizeof pc, (N + 63) / 64, (M + 63) / 64, 1);
}

/* One specialization of matmul_f32 against the host product. */
static void check_spec(vkt_backend *be, const char *what, vkt_vk_shader sh, vkt_buf *c_,
                       vkt_buf *a, vkt_buf *b) {
    vkt_fill(be, vkt_at(c_, 0), NAN, M * N); /* beta 0: C is never read */
    dispatch(be, &sh, c_, a, b);
    static float got[M * N];
    vkt_download(be, got, vkt_at(c_, 0), sizeof got);
    printf("  %-40s worst %.2f of tolerance\n", what,
           vkt_test_close(what, got, want, M * N, 1e-4, 1e-5));
}

/* A grid computed for 64 threads per group on a 256-thread shader must abort, not run. */
static void check_mismatch_aborts(vkt_backend *be, vkt_buf *c_, vkt_buf *a, vkt_buf *b) {
    printf("  a mismatched dispatch in a child process (its message below is expected):\n");
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        vkt_vk_shader sh = {"matmul_f32", {8, 8, 1}, 0, {{0, 0}}, 0}; /* shader: 16x16 */
        dispatch(be, &sh, c_, a, b); /* the registry rejects it before any Vulkan call */
        _exit(0);
    }
    int st = 0;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid, "fork/wait");
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT,
          "a dispatch assuming workgroup 8x8 of a 16x16 shader was not stopped (status %d)", st);
}

int main(void) {
    char err[512];
    vkt_device_info info;
    int skip, dev = vkt_test_vulkan_device("test_vulkan_spec", &info, &skip);
    if (dev < 0) return skip;
    vkt_backend *be = vkt_backend_create(dev, err, sizeof err);
    CHECK(be != NULL, "create: %s", err);
    if (!be) return 1;
    for (int i = 0; i < M * K; i++) ha[i] = (float)((i * 37) % 19) / 19.0f - 0.5f;
    for (int i = 0; i < K * N; i++) hb[i] = (float)((i * 11) % 23) / 23.0f - 0.5f;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += (double)ha[m * K + k] * hb[k * N + n];
            want[m * N + n] = (float)s;
        }
    vkt_buf *a = vkt_alloc(be, sizeof ha, err, sizeof err);
    vkt_buf *b = vkt_alloc(be, sizeof hb, err, sizeof err);
    vkt_buf *c_ = vkt_alloc(be, sizeof want, err, sizeof err);
    CHECK(a && b && c_, "alloc: %s", err);
    if (!a || !b || !c_) return 1;
    vkt_upload(be, vkt_at(a, 0), ha, sizeof ha);
    vkt_upload(be, vkt_at(b, 0), hb, sizeof hb);

    vkt_vk_ctx *c = vkt_vk(be);
    vkt_vk_shader def = {"matmul_f32", {16, 16, 1}, 0, {{0, 0}}, 0};
    check_spec(be, "matmul_f32 default (16x16, 4x4)", def, c_, a, b);
    /* the same 64x64 block from other shapes of threads and tiles (given out of order) */
    vkt_vk_shader s8 = {"matmul_f32", {8, 8, 1}, 4, {{3, 8}, {0, 8}, {2, 8}, {1, 8}}, 0};
    check_spec(be, "matmul_f32 8x8 threads, 8x8 each", s8, c_, a, b);
    vkt_vk_shader s32 = {"matmul_f32", {32, 8, 1}, 5, {{0, 32}, {1, 8}, {2, 8}, {3, 2}, {4, 8}},
                         0};
    check_spec(be, "matmul_f32 32x8 threads, 8x2 each, BK 8", s32, c_, a, b);
    vkt_vk_shader s8b = {"matmul_f32", {8, 8, 1}, 4, {{0, 8}, {1, 8}, {2, 8}, {3, 8}}, 0};
    check_spec(be, "matmul_f32 8x8 again, in another order", s8b, c_, a, b);
    CHECK(vkt_vk_pipelines_count(c) == 3, "%d pipelines for 3 sets of constants",
          vkt_vk_pipelines_count(c));

    /* the planner: a small shape gets a block no larger than it needs; the fp32 tier's
     * workgroup is 16x16 whatever the block */
    vkt_vk_gemm_plan p;
    CHECK(vkt_vk_matmul_plan_tier(be, vkt_vk_matmul_tier_index("fp32"), M, N, K, &p) == 0 &&
              p.sh.local[0] == 16 && p.sh.local[1] == 16 && p.bm == 32 && p.bn == 32 &&
              p.splits == 1 && p.k_split == K,
          "fp32 plan for %dx%dx%d: workgroup %ux%u, block %ux%u, %u splits of %u", M, N, K,
          p.sh.local[0], p.sh.local[1], p.bm, p.bn, p.splits, p.k_split);
    /* a weight-gradient shape (K = B*T) is split along K into whole 32-deep tiles */
    CHECK(vkt_vk_matmul_plan_tier(be, vkt_vk_matmul_tier_index("fp32"), 768, 768, 16384, &p) ==
                  0 &&
              p.splits > 1 && p.k_split % 32 == 0 && p.k_split * p.splits >= 16384 &&
              p.k_split * (p.splits - 1) < 16384,
          "fp32 plan for 768x768x16384: %u splits of %u", p.splits, p.k_split);
    printf("  fp32 768x768x16384: block %ux%u, %u K slices of %u\n", p.bm, p.bn, p.splits,
           p.k_split);

    /* the fp16 tiers read fp16 tensors through 16-bit storage where the device has it (and
     * VKT_VULKAN_DISABLE_STORAGE16 does not turn it off): the *_s16 variant */
    int f16 = vkt_vk_matmul_tier_index("fp16");
    CHECK(vkt_vk_matmul_plan_tier(be, f16, 256, 256, 256, &p) == 0 &&
              !strcmp(p.sh.name, c->storage16 ? "matmul_f16_s16" : "matmul_f16"),
          "fp16 tier's shader %s with 16-bit storage %s", p.sh.name,
          c->storage16 ? "enabled" : "off");
    printf("  fp16 tier: %s (16-bit storage %s)\n", p.sh.name, c->storage16 ? "enabled" : "off");

    /* the coopmat tier's fragments are one of the device's own configurations, its workgroup
     * 4 subgroups of the device's size, required of the pipeline (where available) */
    int cm = vkt_vk_matmul_tier_index("coopmat");
    char why[512];
    if (vkt_backend_set_option(be, "precision", "fp16", why, sizeof why) == 0 &&
        vkt_backend_set_option(be, "matmul", "coopmat", why, sizeof why) == 0) {
        CHECK(vkt_vk_matmul_plan_tier(be, cm, 1024, 1024, 1024, &p) == 0, "coopmat plan");
        uint32_t sg = c->phys->subgroup_size;
        int known = 0;
        for (int i = 0; i < c->phys->n_mma; i++)
            known |= c->phys->mma[i].m == p.sh.spec[6].value &&
                     c->phys->mma[i].n == p.sh.spec[7].value &&
                     c->phys->mma[i].k == p.sh.spec[8].value;
        CHECK(p.sh.nspec == 9 && p.sh.local[0] == 4 * sg && p.sh.subgroup == sg && known,
              "coopmat: %d constants, workgroup %u for subgroups of %u, fragment %ux%ux%u "
              "(one of the device's: %s)", p.sh.nspec, p.sh.local[0], sg, p.sh.spec[6].value,
              p.sh.spec[7].value, p.sh.spec[8].value, known ? "yes" : "no");
        printf("  coopmat: fragment %ux%ux%u, block %ux%u, workgroup %u\n", p.sh.spec[6].value,
               p.sh.spec[7].value, p.sh.spec[8].value, p.bm, p.bn, p.sh.local[0]);
        /* its weight-gradient GEMMs are split along K too, in whole K tiles (spec id 3) */
        CHECK(vkt_vk_matmul_plan_tier(be, cm, 768, 768, 16384, &p) == 0 && p.splits > 1 &&
                  p.bk == p.sh.spec[3].value && p.k_split % p.bk == 0 &&
                  p.k_split * p.splits >= 16384 && p.k_split * (p.splits - 1) < 16384,
              "coopmat plan for 768x768x16384: %u splits of %u, K tile %u", p.splits,
              p.k_split, p.bk);
        printf("  coopmat 768x768x16384: block %ux%u, %u K slices of %u\n", p.bm, p.bn,
               p.splits, p.k_split);
    } else {
        printf("  coopmat not available: %s\n", why);
    }
    vkt_backend_set_option(be, "matmul", "auto", why, sizeof why);
    vkt_backend_set_option(be, "precision", "fp32", why, sizeof why);

    /* the fragment choice on devices with several configurations (the list as the device
     * reported it, replaced for the planner only; nothing is compiled): the largest usable
     * one, skipping shapes the kernel cannot tile (rows over 32, a depth that neither
     * divides nor is a multiple of 32, sides not multiples of 4) */
    {
        vkt_vk_physdev *d = (vkt_vk_physdev *)c->phys; /* test only: restored below */
        vkt_vk_physdev saved = *d;
        static const struct {
            const char *what;
            int n;
            vkt_vk_mma_shape s[4], want;
        } cases[] = {
            {"NVIDIA-like", 3, {{16, 8, 16}, {16, 16, 16}, {8, 8, 8}}, {16, 16, 16}},
            {"Intel-like", 2, {{8, 8, 16}, {8, 16, 16}}, {8, 16, 16}},
            {"with unusable ones", 4, {{64, 8, 16}, {12, 12, 12}, {16, 16, 24}, {8, 8, 8}}, {8, 8, 8}},
            {"none usable", 1, {{64, 64, 64}}, {0, 0, 0}},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            d->n_mma = cases[i].n;
            memcpy(d->mma, cases[i].s, sizeof cases[i].s);
            int rc = vkt_vk_matmul_plan_tier(be, cm, 1024, 1024, 1024, &p);
            if (!cases[i].want.m) {
                CHECK(rc != 0, "%s: a coopmat plan from configurations it cannot use",
                      cases[i].what);
                continue;
            }
            CHECK(rc == 0 && p.sh.spec[6].value == cases[i].want.m &&
                      p.sh.spec[7].value == cases[i].want.n &&
                      p.sh.spec[8].value == cases[i].want.k,
                  "%s: fragment %ux%ux%u, want %ux%ux%u", cases[i].what, p.sh.spec[6].value,
                  p.sh.spec[7].value, p.sh.spec[8].value, cases[i].want.m, cases[i].want.n,
                  cases[i].want.k);
            printf("  configurations %s: fragment %ux%ux%u, block %ux%u\n", cases[i].what,
                   p.sh.spec[6].value, p.sh.spec[7].value, p.sh.spec[8].value, p.bm, p.bn);
        }
        *d = saved;
    }

    /* downloads go through host-cached memory where the device has such a type */
    {
        float one;
        vkt_download(be, &one, vkt_at(a, 0), sizeof one);
        int cached = 0;
        for (uint32_t i = 0; i < c->memprops.memoryTypeCount; i++) {
            VkMemoryPropertyFlags f = c->memprops.memoryTypes[i].propertyFlags;
            cached |= (f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) &&
                      (f & VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
        }
        CHECK(!cached || c->readback_map != NULL,
              "the device has host-cached memory, but downloads do not use it");
        printf("  downloads: %s\n", c->readback_map ? "host-cached readback buffer"
                                                     : "the staging ring (no host-cached memory)");
    }
    check_mismatch_aborts(be, c_, a, b);
    vkt_free(be, a);
    vkt_free(be, b);
    vkt_free(be, c_);
    vkt_backend_destroy(be);
    return vkt_test_finish("test_vulkan_spec");
}
