/* The cpu backend's fast path, where it departs from the reference kernels of cpu_ops.c (which
 * stay the oracle every backend, this path included, is tested against, and run everywhere
 * under the "reference" kernels option): matmul through CBLAS sgemm (OpenBLAS) when the build
 * found one, and softmax + cross-entropy with a vectorized float exp. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backend/cpu/cpu_ops.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef VKT_HAVE_BLAS
#include <cblas.h>

#define F(p) ((float *)vkt_cpu_addr(p))

static void blas_matmul(vkt_backend *be, vkt_ptr c_, vkt_ptr a_, vkt_ptr b_, vkt_ptr bias_,
                        int M, int N, int K, int trans_a, int trans_b, float alpha,
                        float beta) {
    float *c = F(c_);
    const float *bias = bias_.buf ? F(bias_) : NULL;
    /* fp16 tensors decoded, fp32 ones rounded under precision = fp16 */
    const float *a = vkt_cpu_operand(be, a_, (size_t)M * K, 0, 1),
                *b = vkt_cpu_operand(be, b_, (size_t)K * N, 1, 1);
    if (bias) {
        /* C = beta*C + bias first, then the GEMM adds alpha*op(A)op(B) onto it (beta = 0
         * never reads C: it may hold NaNs) */
#pragma omp parallel for schedule(static)
        for (int i = 0; i < M; i++) {
            float *row = c + (size_t)i * N;
            for (int j = 0; j < N; j++) row[j] = (beta != 0.0f ? beta * row[j] : 0.0f) + bias[j];
        }
        beta = 1.0f;
    }
    /* One thread pool, OpenMP's: each thread runs a single-threaded sgemm on its block of C's
     * rows. OpenBLAS's own threads would otherwise compete with OpenMP's workers, which spin
     * for a while after every parallel region (measured: tiny.ini's small GEMMs ran 25% slower
     * that way). Rows of op(A) are columns of a transposed A: offset m0, same leading
     * dimension. BLAS with beta = 0 does not read C (the reference BLAS contract, which
     * OpenBLAS keeps). */
#ifdef OPENBLAS_VERSION
    static int single;
    if (!single) {
        openblas_set_num_threads(1);
        single = 1;
    }
#endif
    int lda = trans_a ? M : K, ldb = trans_b ? K : N;
    CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans,
                    tb = trans_b ? CblasTrans : CblasNoTrans;
#pragma omp parallel
    {
        int t = 0, nt = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        int m0 = (int)((long)M * t / nt), m1 = (int)((long)M * (t + 1) / nt);
        if (m1 > m0)
            cblas_sgemm(CblasRowMajor, ta, tb, m1 - m0, N, K, alpha,
                        a + (trans_a ? (size_t)m0 : (size_t)m0 * K), lda, b, ldb, beta,
                        c + (size_t)m0 * N, N);
    }
}
#endif

const char *vkt_cpu_gemm_name(void) {
#ifdef VKT_HAVE_BLAS
    return "CBLAS sgemm";
#else
    return "blocked C kernel";
#endif
}

void vkt_cpu_fast_matmul(vkt_backend *be, vkt_ptr c, vkt_ptr a, vkt_ptr b, vkt_ptr bias, int M,
                         int N, int K, int trans_a, int trans_b, float alpha, float beta) {
#ifdef VKT_HAVE_BLAS
    if (!vkt_cpu_reference(be) && M > 0 && N > 0) {
        blas_matmul(be, c, a, b, bias, M, N, K, trans_a, trans_b, alpha, beta);
        return;
    }
#endif
    vkt_cpu_matmul(be, c, a, b, bias, M, N, K, trans_a, trans_b, alpha, beta);
}

/* ---- softmax + cross-entropy, fast path ----
 * The reference evaluates exp in double, twice per logit, which made it a quarter of a
 * bench-ref step (vocabulary 50257). Here: a float exp written so that the compiler
 * vectorizes it (no library call in the loop), one exp per logit (kept in place when the
 * gradient overwrites the logits anyway), partial sums in float over blocks of 64 added up in
 * double. Relative error of fast_expf: about 2e-7 (degree-6 Taylor on |r| <= ln2/2). */

/* e^x for x <= 0 (a logit minus its row's maximum); 0 below -87 (e^-87 ~ 1.6e-38). */
static inline float fast_expf(float x) {
    float under = x < -87.0f ? 0.0f : 1.0f;
    x = x < -87.0f ? -87.0f : x;
    /* x = n ln2 + r: n rounded to nearest through the 1.5 * 2^23 trick (no rintf call) */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693145751953125f; /* ln2 in two parts (Cody-Waite) */
    r = r - n * 1.428606765330187045e-06f;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    /* a NaN logit (a diverged run) must give NaN, not undefined behaviour: p is NaN already,
     * n is made a number before the integer conversion, and the shift is unsigned */
    uint32_t bits = (uint32_t)((int32_t)(n == n ? n : 0.0f) + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale * under;
}

/* sum over v of e^(x[v] - maxv), each term also stored in out[v] when out is not NULL.
 * `omp simd` lets the float partial sums be reassociated, i.e. vectorized (the blocks of 64
 * keep their rounding error small); both clones run the same arithmetic. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
__attribute__((target_clones("avx2", "default")))
#endif
static double exp_sum(float *restrict out, const float *restrict x, int V, float maxv) {
    double sum = 0;
    for (int v0 = 0; v0 < V; v0 += 64) {
        int nv = V - v0 < 64 ? V - v0 : 64;
        float part = 0;
        if (out) {
#pragma omp simd reduction(+ : part)
            for (int v = 0; v < nv; v++) {
                float e = fast_expf(x[v0 + v] - maxv);
                out[v0 + v] = e;
                part += e;
            }
        } else {
#pragma omp simd reduction(+ : part)
            for (int v = 0; v < nv; v++) part += fast_expf(x[v0 + v] - maxv);
        }
        sum += part;
    }
    return sum;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
__attribute__((target_clones("avx2", "default")))
#endif
static float row_max(const float *x, int V) {
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int v = 0; v < V; v++) m = x[v] > m ? x[v] : m;
    return m;
}

void vkt_cpu_fast_softmax_xent(vkt_backend *be, vkt_ptr losses_, vkt_ptr logits_,
                               vkt_ptr targets_, int N, int V, int Vp, float grad_scale,
                               int want_grad) {
    if (vkt_cpu_reference(be)) {
        vkt_cpu_softmax_xent(be, losses_, logits_, targets_, N, V, Vp, grad_scale, want_grad);
        return;
    }
    float *losses = vkt_cpu_addr(losses_), *logits = vkt_cpu_addr(logits_);
    const int32_t *targets = vkt_cpu_addr(targets_);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float *x = logits + (size_t)n * Vp;
        int tgt = targets[n];
        VKT_CPU_ASSERT(tgt < V);
        if (tgt < 0) {
            losses[n] = 0;
            if (want_grad) memset(x, 0, (size_t)Vp * sizeof(float));
            continue;
        }
        float maxv = row_max(x, V), xt = x[tgt];
        /* with the gradient, the exps replace the logits (they are overwritten anyway) */
        double sum = exp_sum(want_grad ? x : NULL, x, V, maxv);
        losses[n] = (float)(log(sum) - ((double)xt - maxv));
        if (want_grad) {
            float inv = (float)(1.0 / sum) * grad_scale;
            for (int v = 0; v < V; v++) x[v] *= inv;
            x[tgt] -= grad_scale;
            for (int v = V; v < Vp; v++) x[v] = 0;
        }
    }
}
