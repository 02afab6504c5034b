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
    vkt_matmul_push pc = {.M = M, .N = N, .K = K, .alpha = 1.0f};
    vkt_ptr p[4] = {vkt_at(c_, 0), vkt_at(a, 0), vkt_at(b, 0), VKT_NULL_PTR};
    vkt_vk_bindings bd;
    vkt_vk_bind(c, &bd, 4, p);
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
        vkt_vk_shader sh = {"matmul_f32", {8, 8, 1}, 0, {{0, 0}}}; /* shader: 16x16 */
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
    vkt_vk_shader def = vkt_vk_matmul_variant(c, "matmul_f32");
    CHECK(def.nspec == 0 && def.local[0] == 16 && def.local[1] == 16 && def.local[2] == 1,
          "matmul_f32: %d constants, workgroup %ux%u", def.nspec, def.local[0], def.local[1]);
    check_spec(be, "matmul_f32 default (16x16, 4x4)", def, c_, a, b);
    /* the same 64x64 block from other shapes of threads and tiles (given out of order) */
    vkt_vk_shader s8 = {"matmul_f32", {8, 8, 1}, 4, {{3, 8}, {0, 8}, {2, 8}, {1, 8}}};
    check_spec(be, "matmul_f32 8x8 threads, 8x8 each", s8, c_, a, b);
    vkt_vk_shader s32 = {"matmul_f32", {32, 8, 1}, 5, {{0, 32}, {1, 8}, {2, 8}, {3, 2}, {4, 8}}};
    check_spec(be, "matmul_f32 32x8 threads, 8x2 each, BK 8", s32, c_, a, b);
    vkt_vk_shader s8b = {"matmul_f32", {8, 8, 1}, 4, {{0, 8}, {1, 8}, {2, 8}, {3, 8}}};
    check_spec(be, "matmul_f32 8x8 again, in another order", s8b, c_, a, b);
    CHECK(vkt_vk_pipelines_count(c) == 3, "%d pipelines for 3 sets of constants",
          vkt_vk_pipelines_count(c));

    /* the coopmat variants hold 4 subgroups, 128 threads at least (runs where available) */
    uint32_t sg = c->phys->subgroup_size, wg = 4 * sg > 128 ? 4 * sg : 128;
    vkt_vk_shader cm = vkt_vk_matmul_variant(c, "matmul_coopmat");
    CHECK(cm.nspec == 1 && cm.spec[0].id == 0 && cm.spec[0].value == wg && cm.local[0] == wg &&
              cm.local[1] == 1 && cm.local[2] == 1,
          "coopmat: subgroup %u: %d constants, constant 0 = %u, workgroup %u", sg, cm.nspec,
          cm.spec[0].value, cm.local[0]);
    printf("  coopmat workgroup for subgroups of %u: %u\n", sg, cm.local[0]);

    check_mismatch_aborts(be, c_, a, b);
    vkt_free(be, a);
    vkt_free(be, b);
    vkt_free(be, c_);
    vkt_backend_destroy(be);
    return vkt_test_finish("test_vulkan_spec");
}
