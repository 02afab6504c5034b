/* The vulkan backend's splitting of tensors larger than one descriptor's range: with
 * VKT_VULKAN_MAX_RANGE=8192 (bytes) the ops that split (matmul by rows of C or slices of K,
 * softmax_xent by rows, the 1-D ops by chunks) must still match the cpu reference. Skips (77)
 * without a Vulkan device unless VKT_REQUIRE_BACKENDS names vulkan. */
#include <stdint.h>

#include "vkt_test.h"
#include "vktrain/backend.h"

static vkt_backend *be[2]; /* cpu, vulkan */
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float rnd(void) {
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    return (float)(((rng * 0x2545F4914F6CDD1Dull) >> 40) * (2.0 / 16777216.0) - 1.0);
}

typedef struct { vkt_buf *b[2]; size_t n; } pair;
static pair made[32];
static int nmade;
static pair make(size_t n, float scale, const int32_t *ints) {
    char err[256];
    pair p = {{NULL, NULL}, n};
    float *h = malloc(n * 4);
    for (size_t i = 0; i < n; i++) h[i] = scale * rnd();
    for (int k = 0; k < 2; k++) {
        p.b[k] = vkt_alloc(be[k], n * 4, err, sizeof err);
        if (!p.b[k]) {
            fprintf(stderr, "alloc: %s\n", err);
            exit(1);
        }
        vkt_upload(be[k], vkt_at(p.b[k], 0), ints ? (const void *)ints : h, n * 4);
    }
    free(h);
    made[nmade++] = p; /* freed at the end */
    return p;
}
static void same_tol(const char *what, pair p, double rtol) {
    float *h[2] = {malloc(p.n * 4), malloc(p.n * 4)};
    for (int k = 0; k < 2; k++) vkt_download(be[k], h[k], vkt_at(p.b[k], 0), p.n * 4);
    printf("  %-28s worst %.2f of tolerance\n", what,
           vkt_test_close(what, h[1], h[0], p.n, rtol, 1e-5));
    free(h[0]);
    free(h[1]);
}
static void same(const char *what, pair p) { same_tol(what, p, 1e-4); }
#define BOTH(call_with_k) for (int k = 0; k < 2; k++) { call_with_k; }
#define P(p) vkt_at((p).b[k], 0)

int main(void) {
    setenv("VKT_VULKAN_MAX_RANGE", "8192", 1);
    char err[512];
    int dv = vkt_device_resolve("vulkan:0", err, sizeof err);
    const char *req = getenv("VKT_REQUIRE_BACKENDS");
    if (dv < 0) {
        printf("no vulkan device: skipped (%s)\n", err);
        return req && strstr(req, "vulkan") ? 1 : 77;
    }
    be[0] = vkt_backend_create(vkt_device_resolve("cpu:0", err, sizeof err), err, sizeof err);
    be[1] = vkt_backend_create(dv, err, sizeof err);
    if (be[0]) vkt_backend_set_option(be[0], "kernels", "reference", err, sizeof err);
    if (!be[0] || !be[1]) {
        fprintf(stderr, "backend: %s\n", err);
        return 1;
    }

    /* C and A by row blocks (B whole), both layouts of B, with accumulate and bias */
    {
        int M = 300, N = 20, K = 30;
        pair a = make((size_t)M * K, 1, NULL), b = make((size_t)K * N, 1, NULL),
             c = make((size_t)M * N, 1, NULL), bias = make((size_t)N, 1, NULL);
        BOTH(vkt_matmul(be[k], P(c), P(a), P(b), VKT_NULL_PTR, M, N, K, 0, 0, 1.0f, 0.0f));
        same("matmul rows ta0 tb0", c);
        BOTH(vkt_matmul(be[k], P(c), P(a), P(b), P(bias), M, N, K, 0, 1, 0.5f, 1.0f));
        same("matmul rows ta0 tb1 acc+bias", c);
    }
    /* A transposed: slices of K accumulate into C */
    {
        int M = 40, N = 20, K = 600;
        pair a = make((size_t)K * M, 1, NULL), b = make((size_t)K * N, 1, NULL),
             c = make((size_t)M * N, 1, NULL), bias = make((size_t)N, 1, NULL);
        BOTH(vkt_matmul(be[k], P(c), P(a), P(b), VKT_NULL_PTR, M, N, K, 1, 0, 1.0f, 0.0f));
        /* slices sum K in a different order than the reference: 1e-3 */
        same_tol("matmul K slices ta1 tb0", c, 1e-3);
        BOTH(vkt_matmul(be[k], P(c), P(a), P(b), P(bias), M, N, K, 1, 0, 0.5f, 1.0f));
        same_tol("matmul K slices acc+bias", c, 1e-3);
    }
    /* softmax_xent by rows */
    {
        int N = 50, V = 100, VP = 128;
        int32_t t[50];
        for (int i = 0; i < N; i++) t[i] = i == 7 ? -1 : (i * 37) % V;
        pair logits = make((size_t)N * VP, 3, NULL), tg = make((size_t)N, 0, t),
             losses = make((size_t)N, 0, NULL);
        BOTH(vkt_softmax_xent(be[k], P(losses), P(logits), P(tg), N, V, VP, 0.01f, 1));
        same("softmax_xent losses", losses);
        same("softmax_xent dlogits", logits);
    }
    /* 1-D ops by chunks */
    {
        size_t n = 5003;
        pair x = make(n, 1, NULL), y = make(n, 1, NULL), o = make(n, 0, NULL),
             s = make(2, 0, NULL);
        BOTH(vkt_gelu_forward(be[k], P(o), P(x), n, VKT_NULL_PTR));
        same("gelu_forward", o);
        BOTH(vkt_gelu_backward(be[k], P(o), P(x), P(y), n));
        /* gelu' crosses zero near x = -0.75, where an ulp of tanh is a large relative error;
         * this test is about chunking, so 1e-3 there */
        same_tol("gelu_backward", o, 1e-3);
        BOTH(vkt_residual_forward(be[k], P(o), P(x), P(y), n));
        same("residual_forward", o);
        BOTH(vkt_scale(be[k], P(x), 0.7f, n));
        same("scale", x);
        BOTH(vkt_sumsq(be[k], vkt_at(s.b[k], 4), P(x), n));
        BOTH(vkt_sum_into(be[k], P(s), P(y), n, 0.5f));
        same("sumsq, sum_into", s);
        pair m = make(n, 0.1f, NULL), v = make(n, 0.1f, NULL);
        BOTH(vkt_scale(be[k], P(v), 0.0f, n));
        vkt_adamw_args args = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f,
                               .weight_decay = 0.1f, .grad_scale = 1.0f, .t = 3,
                               .max_norm = 1.0f};
        for (int k = 0; k < 2; k++) {
            args.norm_sq = vkt_at(s.b[k], 4);
            vkt_adamw(be[k], P(x), P(y), P(m), P(v), n, &args);
        }
        same("adamw params (clipped)", x);
        same("adamw m", m);
    }
    for (int i = 0; i < nmade; i++)
        for (int k = 0; k < 2; k++) vkt_free(be[k], made[i].b[k]);
    vkt_backend_destroy(be[1]);
    vkt_backend_destroy(be[0]);
    return vkt_test_finish("test_vulkan_split");
}
