/* The cpu backend's fast matmul: CBLAS sgemm (OpenBLAS) when the build found one; without it,
 * and under the "reference" kernels option, the plain blocked kernel of cpu_ops.c, which stays
 * the oracle every backend (this path included) is tested against. */
#include <string.h>

#include "backend/cpu/cpu_ops.h"
#include "util/half.h"

#ifdef VKT_HAVE_BLAS
#include <cblas.h>

#define F(p) ((float *)vkt_cpu_addr(p))

/* A copy of x(n) rounded to fp16 values (precision = fp16); layout unchanged. */
static float *rounded(const float *x, size_t n) {
    float *r = malloc(n * sizeof(float));
    VKT_CPU_ASSERT(r != NULL);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) r[i] = vkt_round_f16(x[i]);
    return r;
}

static void blas_matmul(vkt_backend *be, vkt_ptr c_, vkt_ptr a_, vkt_ptr b_, vkt_ptr bias_,
                        int M, int N, int K, int trans_a, int trans_b, float alpha,
                        float beta) {
    float *c = F(c_);
    const float *a = F(a_), *b = F(b_), *bias = bias_.buf ? F(bias_) : NULL;
    float *ar = NULL, *br = NULL;
    if (be->fp16_matmul) {
        a = ar = rounded(a, (size_t)M * K);
        b = br = rounded(b, (size_t)K * N);
    }
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
    /* BLAS with beta = 0 does not read C (the reference BLAS contract, which OpenBLAS keeps) */
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, a, trans_a ? M : K, b,
                trans_b ? K : N, beta, c, N);
    free(ar);
    free(br);
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
