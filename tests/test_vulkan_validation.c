/* The vulkan backend runs clean under VK_LAYER_KHRONOS_validation (core checks and
 * synchronization validation, VKT_VULKAN_VALIDATION=1): every op of the backend interface
 * forward and backward on small odd shapes at odd offsets (under precision = fp16 too, once more
 * per cooperative-matrix tier that runs: coopmat_tiers.h; once more profiled), the memory
 * calls, ops split by a small VKT_VULKAN_MAX_RANGE, and two-step training runs (profiled and
 * not, with timed matmul tiers) report zero validation errors, counted until after the
 * instance is destroyed. Commands are ordered only after those they depend on
 * (vkt_vk_order), so synchronization validation is what proves no barrier is missing. Two
 * self-tests first prove that an invalid call and an unordered pair of writes are counted,
 * and a missing layer fails the test (it never passes unvalidated). Run with push
 * descriptors and, as test_vulkan_validation_pools, with descriptor sets from pools. Skips
 * (77) without a Vulkan device unless VKT_REQUIRE_BACKENDS names vulkan. */
#include <math.h>
#include <stdint.h>
#include <unistd.h>

#include "backend/vulkan/vk_validation.h"
#include "coopmat_tiers.h"
#include "train_util.h"
#include "vkt_test.h"
#include "vktrain/backend.h"
#include "vktrain/train.h"

static int selftest_errors; /* the deliberate ones, subtracted from the total */

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float rnd(void) {
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    return (float)(((rng * 0x2545F4914F6CDD1Dull) >> 40) * (2.0 / 16777216.0) - 1.0);
}

/* ---- tensors: carved from one arena at odd float offsets, like the model's parameters ---- */
typedef struct arena {
    vkt_backend *be;
    vkt_buf *buf;
    size_t used, cap; /* floats */
} arena;

#define ARENA_FLOATS (64u << 10)
static arena arena_new(vkt_backend *be) {
    char err[256];
    arena a = {be, vkt_alloc(be, ARENA_FLOATS * 4, err, sizeof err), 0, ARENA_FLOATS};
    CHECK(a.buf != NULL, "alloc: %s", err);
    return a;
}

static vkt_ptr tensor(arena *a, size_t n, float scale) {
    a->used += 3; /* odd gaps: offsets that are not multiples of the descriptor alignment */
    if (a->used + n > a->cap) {
        fprintf(stderr, "arena too small\n");
        exit(1);
    }
    vkt_ptr p = vkt_at(a->buf, a->used * 4);
    a->used += n;
    float *h = malloc(n * 4);
    for (size_t i = 0; i < n; i++) h[i] = scale * rnd();
    vkt_upload(a->be, p, h, n * 4);
    free(h);
    return p;
}

static vkt_ptr ints(arena *a, size_t n, int mod, int with_ignored) {
    vkt_ptr p = tensor(a, n, 0);
    int32_t *h = malloc(n * 4);
    for (size_t i = 0; i < n; i++) h[i] = (int32_t)((i * 7 + 3) % (size_t)mod);
    if (with_ignored) h[n / 2] = -1; /* softmax_xent skips negative targets */
    vkt_upload(a->be, p, h, n * 4);
    free(h);
    return p;
}

/* Every element finite: the ops really ran on sane data. */
static void finite(vkt_backend *be, const char *what, vkt_ptr p, size_t n) {
    float *h = malloc(n * 4);
    vkt_download(be, h, p, n * 4);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += !isfinite(h[i]);
    CHECK(bad == 0, "%s: %zu of %zu elements not finite", what, bad, n);
    free(h);
}

/* ---- every op of include/vktrain/backend.h, forward and backward ---- */
static void all_ops(vkt_backend *be, arena *a) {
    enum { B = 2, T = 5, C = 12, NH = 3, V = 11, Vp = 13, N = B * T, C3 = 3 * C };
    vkt_ptr tok = ints(a, N, V, 0), tgt = ints(a, N, V, 1);
    vkt_ptr wte = tensor(a, (size_t)Vp * C, 0.5f), wpe = tensor(a, (size_t)T * C, 0.5f);
    vkt_ptr x = tensor(a, (size_t)N * C, 0), dx = tensor(a, (size_t)N * C, 0.1f);
    vkt_ptr dwte = tensor(a, (size_t)Vp * C, 0), dwpe = tensor(a, (size_t)T * C, 0);
    vkt_encoder_forward(be, x, tok, wte, wpe, B, T, C);
    vkt_encoder_backward(be, dwte, dwpe, dx, tok, B, T, C);

    vkt_ptr ln = tensor(a, (size_t)N * C, 0), mean = tensor(a, N, 0), rstd = tensor(a, N, 0);
    vkt_ptr w = tensor(a, C, 1), bias = tensor(a, C, 0.1f);
    vkt_ptr dw = tensor(a, C, 0), db = tensor(a, C, 0), dln = tensor(a, (size_t)N * C, 0.1f);
    vkt_layernorm_forward(be, ln, mean, rstd, x, w, bias, N, C, VKT_NULL_PTR);
    vkt_layernorm_backward(be, dx, dw, db, dln, x, w, mean, rstd, N, C);

    /* a linear layer's forward and backward: all four transpose combinations (the last
     * reads dqkv as if stored (3C, N): same size, any values do), overwrite and accumulate */
    vkt_ptr wqkv = tensor(a, (size_t)C * C3, 0.3f), bqkv = tensor(a, C3, 0.1f);
    vkt_ptr qkv = tensor(a, (size_t)N * C3, 0), dwqkv = tensor(a, (size_t)C * C3, 0);
    vkt_matmul(be, qkv, ln, wqkv, bqkv, N, C3, C, 0, 0, 1.0f, 0.0f);         /* forward */
    vkt_matmul(be, qkv, ln, wqkv, VKT_NULL_PTR, N, C3, C, 0, 0, 0.5f, 0.5f); /* accumulate */
    vkt_ptr dqkv = tensor(a, (size_t)N * C3, 0.1f), dbqkv = tensor(a, C3, 0);
    vkt_matmul(be, dln, dqkv, wqkv, VKT_NULL_PTR, N, C, C3, 0, 1, 1.0f, 0.0f); /* dinp */
    vkt_matmul(be, dwqkv, ln, dqkv, VKT_NULL_PTR, C, C3, N, 1, 0, 1.0f, 1.0f); /* dweight */
    vkt_matmul(be, dwqkv, dln, dqkv, VKT_NULL_PTR, C, C3, N, 1, 1, 1.0f, 1.0f); /* both T */
    vkt_bias_backward(be, dbqkv, dqkv, N, C3);

    vkt_ptr att = tensor(a, (size_t)B * NH * T * T, 0), ao = tensor(a, (size_t)N * C, 0);
    vkt_attention_forward(be, ao, att, qkv, B, T, C, NH, VKT_NULL_PTR);
    vkt_attention_backward(be, dqkv, dx, qkv, att, ao, B, T, C, NH);

    vkt_ptr g = tensor(a, (size_t)N * C, 0), dg = tensor(a, (size_t)N * C, 0);
    vkt_gelu_forward(be, g, ao, (size_t)N * C, VKT_NULL_PTR);
    vkt_gelu_backward(be, dg, ao, dx, (size_t)N * C);
    vkt_gelu_backward(be, dx, ao, dx, (size_t)N * C); /* in place: dinp may be dout */
    vkt_residual_forward(be, x, x, g, (size_t)N * C);

    vkt_ptr logits = tensor(a, (size_t)N * Vp, 0), losses = tensor(a, N, 0);
    vkt_matmul(be, logits, x, wte, VKT_NULL_PTR, N, Vp, C, 0, 1, 1.0f, 0.0f);
    vkt_softmax_xent(be, losses, logits, tgt, N, V, Vp, 1.0f, 0);
    vkt_softmax_xent(be, losses, logits, tgt, N, V, Vp, 1.0f / N, 1);

    vkt_ptr p = tensor(a, (size_t)C * C3, 0.5f), m = tensor(a, (size_t)C * C3, 0),
            v = tensor(a, (size_t)C * C3, 0), nsq = tensor(a, 1, 0), sum = tensor(a, 1, 0);
    vkt_sumsq(be, nsq, dwqkv, (size_t)C * C3);
    vkt_sum_into(be, sum, losses, N, 1.0f / N);
    vkt_scale(be, dwqkv, 0.5f, (size_t)C * C3);
    vkt_adamw_args aw = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f,
                         .weight_decay = 0.1f, .grad_scale = 1.0f, .t = 1, .norm_sq = nsq,
                         .max_norm = 1.0f};
    vkt_adamw(be, p, dwqkv, m, v, (size_t)C * C3, &aw);
    aw.t = 2;
    aw.norm_sq = VKT_NULL_PTR;
    vkt_adamw(be, p, dwqkv, m, v, (size_t)C * C3, &aw);

    finite(be, "logits (dlogits)", logits, (size_t)N * Vp);
    finite(be, "dqkv", dqkv, (size_t)N * C3);
    finite(be, "params after adamw", p, (size_t)C * C3);
    finite(be, "loss sum", sum, 1);
}

/* ---- memory: fill, copy (disjoint and overlapping), a free while work is queued ---- */
static void memory_calls(vkt_backend *be, arena *a) {
    char err[256];
    vkt_ptr t = tensor(a, 257, 1);
    vkt_fill(be, t, 2.5f, 101);
    vkt_copy(be, vkt_ptr_addf(t, 120), t, 37 * 4);      /* disjoint */
    vkt_copy(be, vkt_ptr_addf(t, 5), t, 100 * 4);       /* overlapping: through a temporary */
    vkt_buf *tmp = vkt_alloc(be, 1000, err, sizeof err);
    CHECK(tmp != NULL, "alloc: %s", err);
    if (!tmp) return;
    vkt_copy(be, vkt_at(tmp, 0), t, 200 * 4);
    vkt_free(be, tmp); /* queued work still reads it: released at the next flush */
    float h[8];
    vkt_download(be, h, vkt_ptr_addf(t, 120), sizeof h);
    CHECK(h[0] == 2.5f, "fill then copy: %g", h[0]);
    vkt_synchronize(be);
}

/* ---- the splits of a small descriptor range (see test_vulkan_split.c) ---- */
static void split_ops(int dev) {
    char err[512];
    setenv("VKT_VULKAN_MAX_RANGE", "8192", 1); /* read when the backend is created */
    vkt_backend *be = vkt_backend_create(dev, err, sizeof err);
    unsetenv("VKT_VULKAN_MAX_RANGE");
    CHECK(be != NULL, "create (split): %s", err);
    if (!be) return;
    arena a = arena_new(be);
    if (a.buf) {
        int M = 301, N = 9, K = 13, Kt = 701;
        vkt_ptr A = tensor(&a, (size_t)M * K, 1), B = tensor(&a, (size_t)K * N, 1),
                Cm = tensor(&a, (size_t)M * N, 0), bias = tensor(&a, N, 1);
        vkt_matmul(be, Cm, A, B, bias, M, N, K, 0, 0, 1.0f, 0.0f); /* row blocks of C */
        vkt_ptr At = tensor(&a, (size_t)Kt * 5, 1), Bt = tensor(&a, (size_t)Kt * N, 1),
                C2 = tensor(&a, (size_t)5 * N, 0);
        vkt_matmul(be, C2, At, Bt, bias, 5, N, Kt, 1, 0, 1.0f, 0.0f); /* slices of K */
        vkt_ptr big = tensor(&a, 5003, 1), out = tensor(&a, 5003, 0), s = tensor(&a, 1, 0);
        vkt_gelu_forward(be, out, big, 5003, VKT_NULL_PTR); /* chunks */
        vkt_sumsq(be, s, out, 5003);          /* chunks that accumulate */
        vkt_ptr lg = tensor(&a, (size_t)700 * 7, 1), ls = tensor(&a, 700, 0);
        vkt_ptr tg = ints(&a, 700, 5, 1);
        vkt_softmax_xent(be, ls, lg, tg, 700, 5, 7, 1.0f, 1); /* row blocks */
        finite(be, "split matmul", Cm, (size_t)M * N);
        finite(be, "split matmul (K slices)", C2, (size_t)5 * N);
        finite(be, "split sumsq", s, 1);
        finite(be, "split softmax_xent", ls, 700);
        vkt_free(be, a.buf);
    }
    vkt_backend_destroy(be);
}

/* ---- two training steps of a tiny model, with the matmul tiers timed; profiled or not (the
 * ordering differs: vkt_vk_order) ---- */
static void train_steps(const char *precision, int profile) {
    char dir[] = "/tmp/vkt_test_validation_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return;
    }
    const char *extra[] = {"backend.device=vulkan:0", "train.max_steps=2",
                           "optim.warmup_steps=1",    "train.eval_interval=2",
                           "train.eval_batches=1",    "train.grad_accum_steps=2",
                           "model.n_layer=1",         "model.n_embd=16",
                           "model.block_size=16",     "train.seq_len=16",
                           "train.batch_size=2",      precision};
    vkt_config cfg;
    CHECK(small_config(&cfg, dir, extra, (int)(sizeof extra / sizeof extra[0])) == 0, "config");
    setenv("VKT_MATMUL_TIERS_FORCE_TIMING", "1", 1); /* the timing path, with one tier */
    vkt_train_opts opts = {.profile = profile};
    vkt_train_result res;
    float losses[2] = {0};
    char err[1024];
    int rc = vkt_train_run_opts(&cfg, &opts, &res, losses, err, sizeof err);
    unsetenv("VKT_MATMUL_TIERS_FORCE_TIMING");
    CHECK(rc == 0, "training: %s", err);
    CHECK(rc || (res.steps_done == 2 && isfinite(losses[0]) && isfinite(losses[1])),
          "training: %d steps, losses %g %g", res.steps_done, losses[0], losses[1]);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "cleanup of %s failed\n", dir);
}

/* Runs after the instance is destroyed (atexit handlers run in reverse order, and this one is
 * registered before the backend registers its teardown): leaks reported by vkDestroyDevice
 * and vkDestroyInstance count too. */
static void check_at_exit(void) {
    int e = vkt_vk_validation_errors();
    if (e >= 0 && e != selftest_errors) {
        fprintf(stderr, "FAIL test_vulkan_validation: %d validation error(s) at teardown\n",
                e - selftest_errors);
        _exit(1);
    }
}

int main(void) {
    setenv("VKT_VULKAN_VALIDATION", "1", 1); /* before the first Vulkan call */
    atexit(check_at_exit);
    char err[512];
    vkt_device_info info;
    int skip, dev = vkt_test_vulkan_device("test_vulkan_validation", &info, &skip);
    if (dev < 0) return skip;
    if (vkt_vk_validation_errors() < 0) {
        fprintf(stderr, "FAIL test_vulkan_validation: the validation layer is not active (see "
                "the message above); a run without it proves nothing\n");
        return 1;
    }
    vkt_backend *be = vkt_backend_create(dev, err, sizeof err);
    CHECK(be != NULL, "create: %s", err);
    if (!be) return 1;

    selftest_errors = vkt_vk_validation_selftest(be);
    CHECK(selftest_errors >= 1, "the deliberate invalid call was not reported (%d): the "
          "counter does not work", selftest_errors);
    /* the ops are ordered by what they read and write (vkt_vk_order); that a missing barrier
     * would be seen is proven first */
    int sync = vkt_vk_validation_sync_selftest(be);
    CHECK(sync >= 1, "two unordered writes were not reported (%d): synchronization "
          "validation does not work", sync);
    if (sync > 0) selftest_errors += sync;
    arena a = arena_new(be);
    int timed = 0;
    if (a.buf) {
        all_ops(be, &a);
        memory_calls(be, &a);
        /* the fp16 matmul tier (precision = fp16), where the device has it, and then each
         * cooperative-matrix tier (a failure under VKT_REQUIRE_COOPMAT=1 when one cannot run) */
        char err16[512];
        if (vkt_backend_set_option(be, "precision", "fp16", err16, sizeof err16) == 0) {
            all_ops(be, &a);
            for (int t = 0; t < VKT_TEST_NCOOPMAT; t++) {
                const char *tier = vkt_test_coopmat_tiers[t].tier;
                if (!vkt_test_use_coopmat(be, "test_vulkan_validation", tier)) continue;
                printf("matmul = %s exercised\n", tier);
                all_ops(be, &a);
            }
            vkt_backend_set_option(be, "matmul", "auto", err16, sizeof err16);
            vkt_backend_set_option(be, "precision", "fp32", err16, sizeof err16);
        } else {
            printf("precision fp16 not exercised: %s\n", err16);
            vkt_test_coopmat_all_missing("test_vulkan_validation", err16);
        }
        /* profiled (timestamp queries; every command then ordered after the one before) */
        timed = vkt_profile_enable(be, 1) == 0;
        all_ops(be, &a);
        vkt_free(be, a.buf);
    }
    if (timed) {
        vkt_profile_entry e[4];
        CHECK(vkt_profile_report(be, e, 4) > 0, "profiling on, but nothing was timed");
        vkt_profile_enable(be, 0);
    }
    vkt_backend_destroy(be);
    split_ops(dev);
    train_steps("train.precision=fp32", 0);
    train_steps("train.precision=fp32", 1);
    if (vkt_device_info_get(dev, &info) == 0 && info.fp16) train_steps("train.precision=fp16", 0);

    int errors = vkt_vk_validation_errors() - selftest_errors;
    int warnings = vkt_vk_validation_warnings();
    printf("test_vulkan_validation: %s: %d validation error(s), %d warning(s) (self-test: %d "
           "error(s) made on purpose, not counted)%s\n",
           info.name, errors, warnings, selftest_errors, timed ? "" : "; no timestamps");
    CHECK(errors == 0, "%d validation error(s): see the \"vulkan validation: error\" lines",
          errors);
    return vkt_test_finish("test_vulkan_validation");
}
