/* How the vulkan backend records a step (issue 14, sections 3 and 4):
 * - ordering: a linear layer's backward (the input-gradient GEMM, the weight-gradient GEMM,
 *   the bias gradient's two stages) records with one barrier, before the bias gradient's
 *   final stage, so the independent GEMMs may overlap; a dispatch that reads what another
 *   wrote waits for it;
 * - a GPT-2 training step with 12 micro-batches of gradient accumulation records as one
 *   submission, with push descriptors and with descriptor sets from pools
 *   (VKT_VULKAN_NO_PUSH_DESCRIPTORS=1), with fewer barriers than dispatches;
 * - the parallelism census: GPT-2-124M's training step at B=8, T=1024, recorded without
 *   running (census mode: vk_context.h) under every matmul tier the device has, launches at
 *   least 256 workgroups in every dispatch that touches more than 1 MiB, with fewer barriers
 *   than dispatches. The per-shader table it prints is the one in docs/backends.md.
 * That no needed barrier is missing is test_vulkan_validation's (synchronization validation).
 * Skips (77) without a Vulkan device unless VKT_REQUIRE_BACKENDS names vulkan. */
#include <stdint.h>
#include <stdlib.h>

#include "backend/vulkan/vk_context.h"
#include "coopmat_tiers.h"
#include "vkt_test.h"
#include "vktrain/model.h"
#include "vktrain/train.h"

/* A backend with matmul = tier under precision; NULL when the device cannot (noted, or a
 * failure for a cooperative-matrix tier under VKT_REQUIRE_COOPMAT=1: coopmat_tiers.h). */
static vkt_backend *open_backend(int dev, const char *tier, const char *precision, int coop) {
    char err[512];
    vkt_backend *be = vkt_backend_create(dev, err, sizeof err);
    CHECK(be != NULL, "create: %s", err);
    if (!be) return NULL;
    if (vkt_backend_set_option(be, "precision", precision, err, sizeof err) ||
        vkt_backend_set_option(be, "matmul", tier, err, sizeof err)) {
        if (coop)
            vkt_test_coopmat_missing("test_vulkan_sync", tier, err);
        else
            printf("  matmul = %s under precision = %s: not on this device (%s)\n", tier,
                   precision, err);
        vkt_backend_destroy(be);
        return NULL;
    }
    return be;
}

/* ---- a linear layer's backward: one barrier ---- */
static void linear_backward(int dev) {
    vkt_backend *be = open_backend(dev, "fp32", "fp32", 0);
    if (!be) return;
    enum { BT = 96, IN = 40, OUT = 56 };
    char err[256];
    size_t floats = (size_t)BT * OUT + OUT * IN + BT * IN * 2 + OUT * IN + OUT;
    vkt_buf *b = vkt_alloc(be, floats * 4, err, sizeof err);
    CHECK(b != NULL, "alloc: %s", err);
    if (!b) {
        vkt_backend_destroy(be);
        return;
    }
    vkt_fill(be, vkt_at(b, 0), 0.25f, floats);
    size_t at = 0;
    vkt_ptr dout = vkt_ptr_addf(vkt_at(b, 0), at);
    at += (size_t)BT * OUT;
    vkt_ptr w = vkt_ptr_addf(vkt_at(b, 0), at);
    at += (size_t)OUT * IN;
    vkt_ptr inp = vkt_ptr_addf(vkt_at(b, 0), at);
    at += (size_t)BT * IN;
    vkt_ptr dinp = vkt_ptr_addf(vkt_at(b, 0), at);
    at += (size_t)BT * IN;
    vkt_ptr dw = vkt_ptr_addf(vkt_at(b, 0), at);
    at += (size_t)OUT * IN;
    vkt_ptr dbias = vkt_ptr_addf(vkt_at(b, 0), at);
    vkt_synchronize(be);
    vkt_vk_ctx *c = vkt_vk(be);
    uint64_t d0 = c->dispatches, b0 = c->barriers;
    /* the model's sequence (gpt2.c): dinp = dout W; dW += dout^T inp; dbias += colsum(dout) */
    vkt_matmul(be, dinp, dout, w, VKT_NULL_PTR, BT, IN, OUT, 0, 0, 1.0f, 0.0f);
    vkt_matmul(be, dw, dout, inp, VKT_NULL_PTR, OUT, IN, BT, 1, 0, 1.0f, 1.0f);
    vkt_bias_backward(be, dbias, dout, BT, OUT);
    uint64_t nd = c->dispatches - d0, nb = c->barriers - b0;
    printf("linear backward: %llu dispatches, %llu barrier(s)\n", (unsigned long long)nd,
           (unsigned long long)nb);
    CHECK(nd == 4 && nb == 1, "%llu dispatches and %llu barriers; want 4 (two GEMMs, the bias "
          "gradient's two stages) and 1 (before the final stage, which reads the partials)",
          (unsigned long long)nd, (unsigned long long)nb);
    /* a reader of what was written since the last barrier waits: dbias's */
    b0 = c->barriers;
    vkt_scale(be, dbias, 2.0f, OUT);
    CHECK(c->barriers == b0 + 1, "scale over dbias recorded without a barrier");
    float got[BT * IN];
    vkt_download(be, got, dinp, sizeof got);
    CHECK(got[0] == 0.25f * 0.25f * OUT, "dinp[0] = %g, want %g", got[0], 0.25 * 0.25 * OUT);
    float gb[OUT];
    vkt_download(be, gb, dbias, sizeof gb);
    CHECK(gb[0] == 2.0f * (0.25f + 0.25f * BT), "dbias[0] = %g, want %g", gb[0],
          2.0 * (0.25 + 0.25 * BT));
    vkt_free(be, b);
    vkt_backend_destroy(be);
}

/* ---- a small GPT-2 step with deep accumulation: one submission ---- */
enum { ACCUM = 12 };
static void step(vkt_model *m, const int32_t *tok, const int32_t *tgt, int B, int T,
                 vkt_ptr scalars, int t) {
    vkt_backend *be = vkt_model_backend(m);
    vkt_model_zero_grad(m);
    vkt_fill(be, scalars, 0.0f, 2);
    for (int i = 0; i < ACCUM; i++) {
        vkt_model_forward_acc(m, tok + (size_t)i * B * T, tgt + (size_t)i * B * T, B, T,
                              1.0f / ((float)B * T * ACCUM), 1, scalars, 1.0f / ACCUM);
        vkt_model_backward(m, B, T);
    }
    vkt_ptr norm_sq = vkt_ptr_addf(scalars, 1);
    vkt_grad_norm_sq(m, norm_sq);
    vkt_optim_args a = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f,
                        .weight_decay = 0.1f, .grad_scale = 1.0f, .t = t,
                        .norm_sq = norm_sq, .max_norm = 1.0f};
    vkt_optim_adamw_step(m, &a);
}

static void accumulation_step(int dev, int push) {
    if (!push) setenv("VKT_VULKAN_NO_PUSH_DESCRIPTORS", "1", 1); /* read at device creation */
    vkt_backend *be = open_backend(dev, "fp32", "fp32", 0);
    unsetenv("VKT_VULKAN_NO_PUSH_DESCRIPTORS");
    if (!be) return;
    vkt_vk_ctx *c = vkt_vk(be);
    CHECK(push || !c->push_desc, "VKT_VULKAN_NO_PUSH_DESCRIPTORS=1, but push descriptors on");
    const char *how = c->push_desc ? "push descriptors" : "descriptor pools";
    vkt_gpt2_shape s = {64, 256, vkt_padded_vocab(256), 2, 2, 32};
    enum { B = 4, T = 32 };
    char err[512];
    vkt_model *m = vkt_model_create(be, &s, B, T, err, sizeof err);
    CHECK(m != NULL, "model: %s", err);
    vkt_buf *sb = vkt_alloc(be, 64, err, sizeof err);
    if (!m || !sb || vkt_model_init_random(m, 7)) {
        CHECK(0, "setup");
        vkt_backend_destroy(be);
        return;
    }
    static int32_t tok[ACCUM * B * T], tgt[ACCUM * B * T];
    for (int i = 0; i < ACCUM * B * T; i++) tok[i] = (i * 7 + 3) % 256, tgt[i] = (i * 5 + 1) % 256;
    float sc[2];
    step(m, tok, tgt, B, T, vkt_at(sb, 0), 1); /* the first creates the pipelines */
    vkt_download(be, sc, vkt_at(sb, 0), sizeof sc);
    uint64_t s0 = c->submits, d0 = c->dispatches, b0 = c->barriers;
    step(m, tok, tgt, B, T, vkt_at(sb, 0), 2);
    vkt_download(be, sc, vkt_at(sb, 0), sizeof sc); /* the step's one host round trip */
    uint64_t ns = c->submits - s0, nd = c->dispatches - d0, nb = c->barriers - b0;
    printf("GPT-2 step, %d micro-batches, %s: %llu submission(s), %llu dispatches, %llu "
           "barriers; loss %.4f\n", ACCUM, how, (unsigned long long)ns, (unsigned long long)nd,
           (unsigned long long)nb, sc[0]);
    CHECK(ns == 1, "%s: the step took %llu submissions, want 1", how, (unsigned long long)ns);
    CHECK(nb < nd, "%s: %llu barriers for %llu dispatches", how, (unsigned long long)nb,
          (unsigned long long)nd);
    CHECK(sc[0] > 4.0f && sc[0] < 7.0f, "%s: loss %g is not near ln 256", how, sc[0]);
    CHECK(vkt_backend_error(be, err, sizeof err) == 0, "device failed: %s", err);
    vkt_model_destroy(m);
    vkt_free(be, sb);
    vkt_backend_destroy(be);
}

/* ---- the census ---- */
typedef struct row {
    const char *name;
    int n;
    uint32_t groups[4096];
    uint64_t max_bytes;
} row;

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void census_table(const vkt_vk_census *k) {
    static row rows[64];
    int nr = 0;
    for (int i = 0; i < k->n; i++) {
        int r = 0;
        while (r < nr && strcmp(rows[r].name, k->e[i].name)) r++;
        if (r == nr) {
            if (nr == 64) continue;
            rows[nr].name = k->e[i].name;
            rows[nr].n = 0;
            rows[nr].max_bytes = 0;
            nr++;
        }
        if (rows[r].n < 4096) rows[r].groups[rows[r].n++] = k->e[i].groups;
        if (k->e[i].bytes > rows[r].max_bytes) rows[r].max_bytes = k->e[i].bytes;
    }
    printf("    %-28s %6s %9s %9s %10s\n", "shader", "count", "min wg", "median wg",
           "max MiB");
    for (int r = 0; r < nr; r++) {
        qsort(rows[r].groups, (size_t)rows[r].n, sizeof rows[r].groups[0], cmp_u32);
        printf("    %-28s %6d %9u %9u %10.1f\n", rows[r].name, rows[r].n, rows[r].groups[0],
               rows[r].groups[rows[r].n / 2], (double)rows[r].max_bytes / (1 << 20));
    }
}

static void census(int dev, const char *tier, const char *precision, int coop) {
    vkt_backend *be = open_backend(dev, tier, precision, coop);
    if (!be) return;
    /* GPT-2-124M (configs/gpt2-124m.ini) at B=8, T=1024 */
    vkt_gpt2_shape s = {1024, 50257, vkt_padded_vocab(50257), 12, 12, 768};
    enum { B = 8, T = 1024 };
    char err[512];
    /* allocated, not touched: the census runs nothing */
    vkt_model *m = vkt_model_alloc(be, &s, B, T, err, sizeof err);
    vkt_buf *sb = vkt_alloc(be, 64, err, sizeof err);
    if (!m || !sb) {
        printf("  census (%s): no room for GPT-2-124M here: %s\n", tier, err);
        if (m) vkt_model_destroy(m);
        vkt_backend_destroy(be);
        return;
    }
    static int32_t tok[B * T];
    vkt_vk_ctx *c = vkt_vk(be);
    vkt_vk_census k = {0};
    /* as on a GPU whose descriptors cover 4 GiB (NVIDIA and AMD report that; lavapipe 128
     * MiB, which would split the logits' ops into blocks no GPU would see) */
    vkt_vk_census_begin(c, &k, (VkDeviceSize)4 << 30);
    uint64_t b0 = c->barriers;
    /* one micro-batch's step: forward, backward, the norm, AdamW */
    vkt_model_zero_grad(m);
    vkt_fill(be, vkt_at(sb, 0), 0.0f, 2);
    vkt_model_forward_acc(m, tok, tok, B, T, 1.0f / (B * T), 1, vkt_at(sb, 0), 1.0f);
    vkt_model_backward(m, B, T);
    vkt_grad_norm_sq(m, vkt_ptr_addf(vkt_at(sb, 0), 1));
    vkt_optim_args a = {.lr = 1e-4f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f,
                        .grad_scale = 1.0f, .t = 1, .norm_sq = vkt_ptr_addf(vkt_at(sb, 0), 1),
                        .max_norm = 1.0f};
    vkt_optim_adamw_step(m, &a);
    uint64_t nb = c->barriers - b0;
    vkt_vk_census_end(c);
    CHECK(vkt_backend_error(be, err, sizeof err) == 0, "census (%s): the device failed: %s", tier, err);
    int small = 0, big = 0;
    for (int i = 0; i < k.n; i++) {
        if (k.e[i].bytes <= (1u << 20)) continue;
        big++;
        if (k.e[i].groups >= 256) continue;
        small++;
        CHECK(0, "census (%s, %s): dispatch %d, %s, touches %.1f MiB with only %u workgroups",
              tier, precision, i, k.e[i].name, (double)k.e[i].bytes / (1 << 20), k.e[i].groups);
    }
    printf("  census: GPT-2-124M, B=%d T=%d, matmul = %s, precision = %s: %d dispatches (%d "
           "over 1 MiB, %d of those under 256 workgroups), %llu barriers\n", B, T, tier,
           precision, k.n, big, small, (unsigned long long)nb);
    census_table(&k);
    CHECK(k.n > 100, "census (%s): only %d dispatches recorded", tier, k.n);
    CHECK(nb < (uint64_t)k.n, "census (%s): %llu barriers for %d dispatches", tier,
          (unsigned long long)nb, k.n);
    free(k.e);
    vkt_model_destroy(m);
    vkt_free(be, sb);
    vkt_backend_destroy(be);
}

int main(void) {
    vkt_device_info info;
    int skip, dev = vkt_test_vulkan_device("test_vulkan_sync", &info, &skip);
    if (dev < 0) return skip;
    linear_backward(dev);
    accumulation_step(dev, 1);
    accumulation_step(dev, 0);
    census(dev, "fp32", "fp32", 0);
    census(dev, "fp16", "fp16", 0);
    for (int i = 0; i < VKT_TEST_NCOOPMAT; i++)
        census(dev, vkt_test_coopmat_tiers[i].tier, "fp16", 1);
    return vkt_test_finish("test_vulkan_sync");
}
