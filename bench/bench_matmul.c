/* GEMM throughput of one device, per matmul tier, on the shapes that matter: the linear layers
 * of configs/bench-ref.ini (1024 tokens, width 256, vocab 50304 padded) forward and backward,
 * the same for a GPT-2-124M step (8 x 1024 tokens, width 768), and one large square GEMM for
 * the device's ceiling (VKT_BENCH_QUICK=1: tiny.ini's shapes and 1024 cubed instead). Each case: a warm-up, then 5 timed batches of R matmuls (R sized to
 * about 0.2 s of work at the first batch), each batch one submission timed on the device's
 * clock (vkt_time_ms); the median batch gives GFLOP/s = 2 M N K R / seconds.
 *
 *   build/bench_matmul [DEVICE] [TIER ...]     DEVICE like vulkan:0 (default: auto = fastest)
 *                                        TIERS default: fp32 fp32_direct fp16 fp16_direct coopmat coopmat2
 *   build/bench_matmul opencl:0 untuned tuned   CLBlast as shipped, then after the tuning pass
 *
 * A tier the device lacks is reported as such and skipped; fp16 and coopmat run under
 * precision = fp16 (fp16 operands, fp32 accumulation) and read A and B as fp16 tensors, the
 * copies a training run keeps (vkt_to_half; VKT_BENCH_OPERANDS=fp32: fp32 A and B rounded as
 * they are loaded instead, the way before the copies, for comparison). Output: one line per
 * (tier, shape), then a summary per tier. Compare with PyTorch on the same GPU through
 * bench/torch_matmul.py (same shapes, cuBLAS), run side by side. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vktrain/backend.h"

typedef struct shape {
    const char *name;
    int M, N, K, ta, tb;
} shape;

/* Row-major vkt_matmul conventions (backend.h). Forward: out(BT,OC) = inp(BT,C) W(OC,C)^T;
 * backward: dinp = dout W (ta 0, tb 0), dW += dout^T inp (ta 1). */
static const shape shapes[] = {
    {"ref qkv fwd 1024x768x256", 1024, 768, 256, 0, 1},
    {"ref fc fwd 1024x1024x256", 1024, 1024, 256, 0, 1},
    {"ref fcproj fwd 1024x256x1024", 1024, 256, 1024, 0, 1},
    {"ref lm_head fwd 1024x50304x256", 1024, 50304, 256, 0, 1},
    {"ref lm_head dinp 1024x256x50304", 1024, 256, 50304, 0, 0},
    {"ref lm_head dW 50304x256x1024", 50304, 256, 1024, 1, 0},
    {"124M qkv fwd 8192x2304x768", 8192, 2304, 768, 0, 1},
    {"124M fc fwd 8192x3072x768", 8192, 3072, 768, 0, 1},
    {"124M fcproj dinp 8192x3072x768", 8192, 3072, 768, 0, 0},
    {"124M fc dW 3072x768x8192", 3072, 768, 8192, 1, 0},
    {"124M lm_head fwd 8192x50304x768", 8192, 50304, 768, 0, 1},
    {"square 4096", 4096, 4096, 4096, 0, 0},
};
#define NSHAPES ((int)(sizeof shapes / sizeof shapes[0]))

/* configs/tiny.ini: 16 x 64 = 1024 tokens, width 128, vocab 256 */
static const shape quick_shapes[] = {
    {"tiny qkv fwd 1024x384x128", 1024, 384, 128, 0, 1},
    {"tiny fc fwd 1024x512x128", 1024, 512, 128, 0, 1},
    {"tiny fcproj dinp 1024x512x128", 1024, 512, 128, 0, 0},
    {"tiny fc dW 512x128x1024", 512, 128, 1024, 1, 0},
    {"tiny lm_head fwd 1024x256x128", 1024, 256, 128, 0, 1},
    {"square 1024", 1024, 1024, 1024, 0, 0},
};
#define NQUICK ((int)(sizeof quick_shapes / sizeof quick_shapes[0]))

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* An operand of n elements filled with v: fp32, or (half) its fp16 copy, made through c's
 * buffer (at least n floats) as the model makes its copies. */
static vkt_buf *operand(vkt_backend *be, size_t n, float v, int half, vkt_buf *c, char *err,
                        size_t errlen) {
    vkt_buf *x = vkt_alloc(be, half ? (n + 1) / 2 * 4 : n * 4, err, errlen);
    if (!x) return NULL;
    if (!half) {
        vkt_fill(be, vkt_at(x, 0), v, n);
        return x;
    }
    vkt_fill(be, vkt_at(c, 0), v, n);
    vkt_to_half(be, vkt_half_at(x, 0), vkt_at(c, 0), n);
    return x;
}

/* Median GFLOP/s of shape s on be (the tier already set); -1 when it cannot allocate. half:
 * A and B as fp16 tensors. */
static double measure(vkt_backend *be, const shape *s, int half) {
    char err[512];
    size_t na = (size_t)s->M * s->K, nb = (size_t)s->K * s->N, nc = (size_t)s->M * s->N;
    size_t big = na > nb ? na : nb;
    vkt_buf *c = vkt_alloc(be, (half && big > nc ? big : nc) * 4, err, sizeof err);
    vkt_buf *a = c ? operand(be, na, 0.01f, half, c, err, sizeof err) : NULL;
    vkt_buf *b = a ? operand(be, nb, 0.02f, half, c, err, sizeof err) : NULL;
    double result = -1;
    if (a && b && c) {
        double flop = 2.0 * s->M * s->N * s->K;
        int reps = 1;
        double times[5];
        for (int batch = -1; batch < 5; batch++) { /* -1: warm-up and sizing */
            double t0 = vkt_time_ms(be);
            for (int r = 0; r < reps; r++)
                vkt_matmul(be, vkt_at(c, 0), half ? vkt_half_at(a, 0) : vkt_at(a, 0),
                           half ? vkt_half_at(b, 0) : vkt_at(b, 0), VKT_NULL_PTR, s->M, s->N,
                           s->K, s->ta, s->tb, 1.0f, 0.0f);
            double ms = vkt_time_ms(be) - t0;
            if (batch < 0) {
                reps = ms > 0 ? (int)(200.0 / ms) : 100;
                if (reps < 1) reps = 1;
                if (reps > 1000) reps = 1000;
                continue;
            }
            times[batch] = ms;
        }
        qsort(times, 5, sizeof times[0], cmp_double);
        result = flop * reps / (times[2] * 1e-3) / 1e9;
    } else {
        fprintf(stderr, "  %s: %s\n", s->name, err);
    }
    vkt_free(be, a);
    vkt_free(be, b);
    vkt_free(be, c);
    return result;
}

#define MAX_TIERS 8
static double result[MAX_TIERS][NSHAPES + NQUICK];

int main(int argc, char **argv) {
    const char *dev_spec = argc > 1 ? argv[1] : "auto";
    const char *default_tiers[] = {"fp32",        "fp32_direct", "fp16",
                                   "fp16_direct", "coopmat",     "coopmat2"};
    const char **tiers = argc > 2 ? (const char **)argv + 2 : default_tiers;
    int ntiers = argc > 2 ? argc - 2 : (int)(sizeof default_tiers / sizeof default_tiers[0]);
    if (ntiers > MAX_TIERS) ntiers = MAX_TIERS;
    char err[512];
    int dev = vkt_device_resolve(dev_spec, err, sizeof err);
    if (dev < 0) {
        fprintf(stderr, "bench_matmul: %s\n", err);
        return 2;
    }
    /* VKT_BENCH_QUICK=1: only the small shapes of a tiny.ini step (CPU drivers like lavapipe,
     * where the full set takes hours) */
    const char *quick = getenv("VKT_BENCH_QUICK");
    int is_quick = quick && !strcmp(quick, "1");
    const shape *set = is_quick ? quick_shapes : shapes;
    int nshapes = is_quick ? NQUICK : NSHAPES;
    const char *ops = getenv("VKT_BENCH_OPERANDS");
    int fp32_operands = ops && !strcmp(ops, "fp32");
    for (int t = 0; t < ntiers; t++) {
        vkt_backend *be = vkt_backend_create(dev, err, sizeof err);
        if (!be) {
            fprintf(stderr, "bench_matmul: %s\n", err);
            return 1;
        }
        const vkt_device_info *info = vkt_backend_info(be);
        /* opencl: "untuned" (CLBlast as shipped) and "tuned" (the first-use tuning pass,
         * forced, on a 1024^3 GEMM first). Run untuned first: CLBlast's parameter overrides
         * last for the process. */
        int tuning = !strcmp(tiers[t], "untuned") || !strcmp(tiers[t], "tuned");
        const char *precision = strncmp(tiers[t], "fp32", 4) && !tuning ? "fp16" : "fp32";
        if (tuning) {
            if (vkt_backend_set_option(be, "gemm_tune", tiers[t][0] == 't' ? "force" : "off",
                                       err, sizeof err)) {
                printf("%s:%d %-8s not available: %s\n", info->backend, info->backend_index,
                       tiers[t], err);
                vkt_backend_destroy(be);
                continue;
            }
            if (tiers[t][0] == 't') {
                shape sq = {"tuning 1024^3", 1024, 1024, 1024, 0, 0};
                measure(be, &sq, 0);
            }
        } else if (vkt_backend_set_option(be, "precision", precision, err, sizeof err) ||
                   vkt_backend_set_option(be, "matmul", tiers[t], err, sizeof err)) {
            printf("%s:%d %-8s not available: %s\n", info->backend, info->backend_index,
                   tiers[t], err);
            vkt_backend_destroy(be);
            continue;
        }
        double sum = 0, best = 0;
        int n = 0;
        for (int i = 0; i < nshapes; i++) {
            double g = measure(be, &set[i], !strcmp(precision, "fp16") && !fp32_operands);
            if (t < MAX_TIERS) result[t][i] = g;
            if (g < 0) continue;
            printf("%s:%d %-8s %-34s %10.1f GFLOP/s\n", info->backend, info->backend_index,
                   tiers[t], set[i].name, g);
            fflush(stdout);
            sum += g, n++;
            if (g > best) best = g;
        }
        if (n)
            printf("%s:%d %-8s summary: mean %.1f GFLOP/s over %d shapes, best %.1f (%s, %s%s)\n",
                   info->backend, info->backend_index, tiers[t], sum / n, n, best, info->name,
                   precision,
                   strcmp(precision, "fp16") ? "" : fp32_operands ? ", fp32 operands" : ", fp16 operands");
        vkt_backend_destroy(be);
    }
    /* every later tier against the first, shape by shape, side by side in this one run */
    for (int t = 1; t < ntiers && t < MAX_TIERS; t++) {
        double r[NSHAPES + NQUICK];
        int n = 0;
        for (int i = 0; i < nshapes; i++)
            if (result[0][i] > 0 && result[t][i] > 0) r[n++] = result[t][i] / result[0][i];
        if (!n) continue;
        qsort(r, (size_t)n, sizeof r[0], cmp_double);
        printf("%s / %s: median %.2fx over %d shapes (min %.2fx, max %.2fx)\n", tiers[t],
               tiers[0], n % 2 ? r[n / 2] : (r[n / 2 - 1] + r[n / 2]) / 2, n, r[0], r[n - 1]);
    }
    return 0;
}
