/* Reference kernels: the semantics every other backend is tested against. Written for
 * clarity and exactness first; OpenMP splits work so that each output element is still
 * computed by one thread in a fixed order, which keeps results bitwise reproducible for any
 * thread count (checkpoint resume relies on it). */
#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend/cpu/cpu_ops.h"
#include "util/half.h"

#define F(p) ((float *)vkt_cpu_addr(p))
#define I32(p) ((const int32_t *)vkt_cpu_addr(p))

/* Scratch memory of the calling thread, slot 0..3, grown on demand and kept: once a run's
 * shapes have been seen, no op allocates inside a training step. */
void *vkt_cpu_scratch(int slot, size_t bytes) {
    static _Thread_local void *buf[4];
    static _Thread_local size_t cap[4];
    VKT_CPU_ASSERT(slot >= 0 && slot < 4);
    if (cap[slot] < bytes) {
        free(buf[slot]);
        buf[slot] = malloc(bytes);
        VKT_CPU_ASSERT(buf[slot] != NULL);
        cap[slot] = bytes;
    }
    return buf[slot];
}

long vkt_cpu_num_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* ---- embedding ---- */

void vkt_cpu_encoder_forward(vkt_backend *be, vkt_ptr out_, vkt_ptr tokens_, vkt_ptr wte_,
                             vkt_ptr wpe_, int B, int T, int C) {
    (void)be;
    float *out = F(out_);
    const int32_t *tok = I32(tokens_);
    const float *wte = F(wte_), *wpe = F(wpe_);
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        const float *e = wte + (size_t)tok[bt] * C, *p = wpe + (size_t)(bt % T) * C;
        float *o = out + (size_t)bt * C;
        for (int c = 0; c < C; c++) o[c] = e[c] + p[c];
    }
}

void vkt_cpu_encoder_backward(vkt_backend *be, vkt_ptr dwte_, vkt_ptr dwpe_, vkt_ptr dout_,
                              vkt_ptr tokens_, int B, int T, int C) {
    (void)be;
    float *dwte = F(dwte_), *dwpe = F(dwpe_);
    const float *dout = F(dout_);
    const int32_t *tok = I32(tokens_);
    /* serial over positions: several positions may share one token row */
    for (int bt = 0; bt < B * T; bt++) {
        const float *d = dout + (size_t)bt * C;
        float *e = dwte + (size_t)tok[bt] * C, *p = dwpe + (size_t)(bt % T) * C;
        for (int c = 0; c < C; c++) {
            e[c] += d[c];
            p[c] += d[c];
        }
    }
}

/* ---- layernorm ---- */

void vkt_cpu_layernorm_forward(vkt_backend *be, vkt_ptr out_, vkt_ptr mean_, vkt_ptr rstd_,
                               vkt_ptr inp_, vkt_ptr weight_, vkt_ptr bias_, int N, int C,
                               vkt_ptr out_half) {
    (void)be;
    float *out = F(out_), *mean = F(mean_), *rstd = F(rstd_);
    const float *inp = F(inp_), *w = F(weight_), *b = F(bias_);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        double s = 0, ss = 0;
        for (int c = 0; c < C; c++) s += x[c];
        double m = s / C;
        for (int c = 0; c < C; c++) ss += (x[c] - m) * (x[c] - m);
        double r = 1.0 / sqrt(ss / C + 1e-5);
        float *o = out + (size_t)n * C;
        for (int c = 0; c < C; c++) o[c] = (float)((x[c] - m) * r) * w[c] + b[c];
        mean[n] = (float)m;
        rstd[n] = (float)r;
    }
    if (out_half.buf) vkt_cpu_to_half(be, out_half, out_, (size_t)N * C); /* the fp16 copy */
}

void vkt_cpu_layernorm_backward(vkt_backend *be, vkt_ptr dinp_, vkt_ptr dweight_,
                                vkt_ptr dbias_, vkt_ptr dout_, vkt_ptr inp_, vkt_ptr weight_,
                                vkt_ptr mean_, vkt_ptr rstd_, int N, int C) {
    (void)be;
    float *dinp = F(dinp_), *dw = F(dweight_), *db = F(dbias_);
    const float *dout = F(dout_), *inp = F(inp_), *w = F(weight_), *mean = F(mean_),
                *rstd = F(rstd_);
    /* input gradient: rows are independent */
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
        float m = mean[n], r = rstd[n];
        double dnorm_mean = 0, dnorm_norm_mean = 0;
        for (int c = 0; c < C; c++) {
            float norm = (x[c] - m) * r, dnorm = w[c] * d[c];
            dnorm_mean += dnorm;
            dnorm_norm_mean += (double)dnorm * norm;
        }
        dnorm_mean /= C;
        dnorm_norm_mean /= C;
        float *di = dinp + (size_t)n * C;
        for (int c = 0; c < C; c++) {
            float norm = (x[c] - m) * r, dnorm = w[c] * d[c];
            di[c] += (float)((dnorm - dnorm_mean - norm * dnorm_norm_mean) * r);
        }
    }
    /* weight and bias gradients: a column reduction, split over channels */
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double sw = 0, sb = 0;
        for (int n = 0; n < N; n++) {
            float d = dout[(size_t)n * C + c];
            sw += (double)d * ((inp[(size_t)n * C + c] - mean[n]) * rstd[n]);
            sb += d;
        }
        dw[c] += (float)sw;
        db[c] += (float)sb;
    }
}

/* ---- matmul ---- */

/* Columns of C handled per pass: a (K x JB) panel of B stays in L2 while rows stream by. */
#define MM_JB 256

/* One row i of C, columns [j0, j0+nj): acc = sum_k A(i,k) * Bkn(k, j). Bkn is row-major
 * (K,N); A(i,k) = a[i*sa_i + k*sa_k]. The j loop is what vectorizes; built for AVX2 too
 * where the CPU has it (the compiler does not contract to FMA under -std=c11, so both
 * clones round identically). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
__attribute__((target_clones("avx2", "default")))
#endif
static void mm_row_panel(float *restrict acc, const float *restrict a, size_t sa_k,
                         const float *restrict bkn, int N, int K, int j0, int nj) {
    for (int j = 0; j < nj; j++) acc[j] = 0;
    for (int k = 0; k < K; k++) {
        float av = a[(size_t)k * sa_k];
        const float *brow = bkn + (size_t)k * N + j0;
        for (int j = 0; j < nj; j++) acc[j] += av * brow[j];
    }
}

float *vkt_cpu_rounded_f16(const float *x, size_t n, int slot) {
    float *r = vkt_cpu_scratch(slot, n * sizeof(float));
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) r[i] = vkt_round_f16(x[i]);
    return r;
}

const float *vkt_cpu_operand(vkt_backend *be, vkt_ptr p, size_t n, int slot, int round) {
    if (p.half) {
        const uint16_t *h = vkt_cpu_addr(p);
        float *r = vkt_cpu_scratch(slot, n * sizeof(float));
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) r[i] = vkt_f16_value(h[i]);
        return r;
    }
    return round && be->fp16_matmul ? vkt_cpu_rounded_f16(F(p), n, slot) : F(p);
}

void vkt_cpu_to_half(vkt_backend *be, vkt_ptr dst, vkt_ptr src, size_t n) {
    (void)be;
    uint16_t *d = vkt_cpu_addr(dst);
    const float *s = F(src);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) d[i] = vkt_f16_bits(s[i]);
}

void vkt_cpu_matmul(vkt_backend *be, vkt_ptr c_, vkt_ptr a_, vkt_ptr b_, vkt_ptr bias_, int M,
                    int N, int K, int trans_a, int trans_b, float alpha, float beta) {
    float *c = F(c_);
    const float *bias = bias_.buf ? F(bias_) : NULL;
    /* precision = fp16: the operands as fp16 would hold them; the sums stay fp32 */
    const float *a = vkt_cpu_operand(be, a_, (size_t)M * K, 0, 1);
    /* Bring op(B) to row-major (K,N) so the inner loop runs along contiguous memory. */
    float *bt = NULL;
    const float *bkn;
    if (trans_b) {
        const float *b = vkt_cpu_operand(be, b_, (size_t)K * N, 2, 0);
        bt = vkt_cpu_scratch(1, (size_t)K * N * sizeof(float));
        int half = be->fp16_matmul;
#pragma omp parallel for schedule(static)
        for (int k = 0; k < K; k++)
            for (int j = 0; j < N; j++) {
                float v = b[(size_t)j * K + k];
                bt[(size_t)k * N + j] = half ? vkt_round_f16(v) : v;
            }
        bkn = bt;
    } else {
        bkn = vkt_cpu_operand(be, b_, (size_t)K * N, 1, 1);
    }
    size_t sa_i = trans_a ? 1 : (size_t)K, sa_k = trans_a ? (size_t)M : 1;
#pragma omp parallel
    {
        float acc[MM_JB];
#pragma omp for schedule(static)
        for (int i = 0; i < M; i++) {
            float *crow = c + (size_t)i * N;
            for (int j0 = 0; j0 < N; j0 += MM_JB) {
                int nj = N - j0 < MM_JB ? N - j0 : MM_JB;
                mm_row_panel(acc, a + (size_t)i * sa_i, sa_k, bkn, N, K, j0, nj);
                for (int j = 0; j < nj; j++) {
                    float v = alpha * acc[j];
                    if (beta != 0.0f) v += beta * crow[j0 + j];
                    if (bias) v += bias[j0 + j];
                    crow[j0 + j] = v;
                }
            }
        }
    }
}

void vkt_cpu_bias_backward(vkt_backend *be, vkt_ptr dbias_, vkt_ptr dout_, int M, int N) {
    (void)be;
    float *db = F(dbias_);
    const float *dout = F(dout_);
#pragma omp parallel for schedule(static)
    for (int j = 0; j < N; j++) {
        double s = 0;
        for (int i = 0; i < M; i++) s += dout[(size_t)i * N + j];
        db[j] += (float)s;
    }
}

/* ---- attention ---- */

/* Scaled scores of query row t against keys 0..t of head h: s[t2] = q_t . k_t2 * scale. */
static void attention_scores(float *s, const float *qkv, int b, int h, int t, int T, int C,
                             int hs, float scale) {
    const float *q = qkv + ((size_t)b * T + t) * 3 * C + h * hs;
    for (int t2 = 0; t2 <= t; t2++) {
        const float *k = qkv + ((size_t)b * T + t2) * 3 * C + C + h * hs;
        float dot = 0;
        for (int i = 0; i < hs; i++) dot += q[i] * k[i];
        s[t2] = dot * scale;
    }
}

void vkt_cpu_attention_forward(vkt_backend *be, vkt_ptr out_, vkt_ptr lse_, vkt_ptr qkv_, int B,
                               int T, int C, int NH, vkt_ptr out_half) {
    (void)be;
    float *out = F(out_), *lse = F(lse_);
    const float *qkv = F(qkv_);
    int hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel
    {
        float *p = vkt_cpu_scratch(0, (size_t)T * sizeof(float)); /* a row of probabilities */
#pragma omp for collapse(3) schedule(static)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
                for (int t = 0; t < T; t++) {
                    attention_scores(p, qkv, b, h, t, T, C, hs, scale);
                    float maxv = -INFINITY;
                    for (int t2 = 0; t2 <= t; t2++)
                        if (p[t2] > maxv) maxv = p[t2];
                    double sum = 0;
                    for (int t2 = 0; t2 <= t; t2++) {
                        p[t2] = expf(p[t2] - maxv);
                        sum += p[t2];
                    }
                    lse[((size_t)b * NH + h) * T + t] = maxv + (float)log(sum);
                    /* out = sum_t2 p v / sum: normalized once at the end, as a fused kernel
                     * that streams the keys does */
                    float *o = out + ((size_t)b * T + t) * C + h * hs;
                    for (int i = 0; i < hs; i++) o[i] = 0;
                    for (int t2 = 0; t2 <= t; t2++) {
                        const float *v = qkv + ((size_t)b * T + t2) * 3 * C + 2 * C + h * hs;
                        for (int i = 0; i < hs; i++) o[i] += p[t2] * v[i];
                    }
                    float inv = (float)(1.0 / sum);
                    for (int i = 0; i < hs; i++) o[i] *= inv;
                }
    }
    if (out_half.buf) vkt_cpu_to_half(be, out_half, out_, (size_t)B * T * C);
}

void vkt_cpu_attention_backward(vkt_backend *be, vkt_ptr dqkv_, vkt_ptr dout_, vkt_ptr qkv_,
                                vkt_ptr lse_, vkt_ptr out_, int B, int T, int C, int NH) {
    (void)be;
    (void)out_; /* the reference sums D from the probabilities, in double */
    float *dqkv = F(dqkv_);
    const float *dout = F(dout_), *qkv = F(qkv_), *lse = F(lse_);
    int hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
    /* one (b, h) pair per task: its q/k/v gradient channels are written by nobody else */
#pragma omp parallel
    {
        float *p = vkt_cpu_scratch(0, (size_t)T * sizeof(float)),
              *datt = vkt_cpu_scratch(1, (size_t)T * sizeof(float));
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++) {
                for (int t = 0; t < T; t++)
                    for (int part = 0; part < 3; part++)
                        memset(dqkv + ((size_t)b * T + t) * 3 * C + part * C + h * hs, 0,
                               (size_t)hs * sizeof(float));
                for (int t = 0; t < T; t++) {
                    /* the forward's probabilities, recomputed: p = exp(s - lse) */
                    attention_scores(p, qkv, b, h, t, T, C, hs, scale);
                    float l = lse[((size_t)b * NH + h) * T + t];
                    for (int t2 = 0; t2 <= t; t2++) p[t2] = expf(p[t2] - l);
                    const float *d = dout + ((size_t)b * T + t) * C + h * hs;
                    const float *q = qkv + ((size_t)b * T + t) * 3 * C + h * hs;
                    float *dq = dqkv + ((size_t)b * T + t) * 3 * C + h * hs;
                    double dot = 0; /* sum_t2 p * datt, for the softmax backward */
                    for (int t2 = 0; t2 <= t; t2++) {
                        const float *v = qkv + ((size_t)b * T + t2) * 3 * C + 2 * C + h * hs;
                        float *dv = dqkv + ((size_t)b * T + t2) * 3 * C + 2 * C + h * hs;
                        float s = 0;
                        for (int i = 0; i < hs; i++) {
                            s += d[i] * v[i];
                            dv[i] += p[t2] * d[i];
                        }
                        datt[t2] = s;
                        dot += (double)p[t2] * s;
                    }
                    for (int t2 = 0; t2 <= t; t2++) {
                        float dpre = p[t2] * (datt[t2] - (float)dot) * scale;
                        const float *k = qkv + ((size_t)b * T + t2) * 3 * C + C + h * hs;
                        float *dk = dqkv + ((size_t)b * T + t2) * 3 * C + C + h * hs;
                        for (int i = 0; i < hs; i++) {
                            dq[i] += dpre * k[i];
                            dk[i] += dpre * q[i];
                        }
                    }
                }
            }
    }
}

/* ---- pointwise ---- */

#define GELU_SCALE 0.7978845608028654f /* sqrt(2/pi) */

void vkt_cpu_gelu_forward(vkt_backend *be, vkt_ptr out_, vkt_ptr inp_, size_t n, vkt_ptr out_half) {
    (void)be;
    float *out = F(out_);
    const float *x = F(inp_);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        out[i] = 0.5f * v * (1.0f + tanhf(GELU_SCALE * (v + 0.044715f * v * v * v)));
    }
    if (out_half.buf) vkt_cpu_to_half(be, out_half, out_, n);
}

/* The two ops: the matmul of this backend's kernels option (be->ops: BLAS or the reference),
 * then gelu. */
void vkt_cpu_matmul_gelu(vkt_backend *be, vkt_ptr pre, vkt_ptr out, vkt_ptr a, vkt_ptr b,
                         vkt_ptr bias, int M, int N, int K, int trans_a, int trans_b,
                         vkt_ptr out_half) {
    be->ops->matmul(be, pre, a, b, bias, M, N, K, trans_a, trans_b, 1.0f, 0.0f);
    vkt_cpu_gelu_forward(be, out, pre, (size_t)M * N, out_half);
}

void vkt_cpu_gelu_backward(vkt_backend *be, vkt_ptr dinp_, vkt_ptr inp_, vkt_ptr dout_,
                           size_t n) {
    (void)be;
    float *dinp = F(dinp_);
    const float *x = F(inp_), *dout = F(dout_);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float u = GELU_SCALE * (v + 0.044715f * v * v * v);
        float th = tanhf(u);
        float sech2 = 1.0f - th * th;
        float g = 0.5f * (1.0f + th) + 0.5f * v * sech2 * GELU_SCALE * (1.0f + 3.0f * 0.044715f * v * v);
        dinp[i] = g * dout[i];
    }
}

void vkt_cpu_residual_forward(vkt_backend *be, vkt_ptr out_, vkt_ptr a_, vkt_ptr b_, size_t n) {
    (void)be;
    float *out = F(out_);
    const float *a = F(a_), *b = F(b_);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/* ---- loss ---- */

void vkt_cpu_softmax_xent(vkt_backend *be, vkt_ptr losses_, vkt_ptr logits_, vkt_ptr targets_,
                          int N, int V, int Vp, float grad_scale, int want_grad) {
    (void)be;
    float *losses = F(losses_), *logits = F(logits_);
    const int32_t *targets = I32(targets_);
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
        float maxv = -INFINITY;
        for (int v = 0; v < V; v++)
            if (x[v] > maxv) maxv = x[v];
        double sum = 0;
        for (int v = 0; v < V; v++) sum += exp((double)x[v] - maxv);
        losses[n] = (float)(log(sum) - ((double)x[tgt] - maxv));
        if (want_grad) {
            double inv = 1.0 / sum;
            for (int v = 0; v < V; v++) {
                float p = (float)(exp((double)x[v] - maxv) * inv);
                x[v] = (p - (v == tgt ? 1.0f : 0.0f)) * grad_scale;
            }
            for (int v = V; v < Vp; v++) x[v] = 0;
        }
    }
}

/* ---- optimizer and reductions ---- */

void vkt_cpu_adamw(vkt_backend *be, vkt_ptr params_, vkt_ptr grads_, vkt_ptr m_, vkt_ptr v_,
                   size_t n, const vkt_adamw_args *a) {
    (void)be;
    float *p = F(params_), *m = F(m_), *v = F(v_);
    const float *g = F(grads_);
    float bc1 = (float)(1.0 - pow(a->beta1, a->t)), bc2 = (float)(1.0 - pow(a->beta2, a->t));
    float b1 = a->beta1, b2 = a->beta2, lr = a->lr, eps = a->eps, wd = a->weight_decay,
          gs = a->grad_scale;
    if (a->norm_sq.buf) {
        float ns = F(a->norm_sq)[0];
        if (!isfinite(ns)) return; /* an overflowed gradient: skip the step */
        gs *= vkt_clip_factor(sqrtf(ns) * a->grad_scale, a->max_norm);
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float grad = g[i] * gs;
        float mi = b1 * m[i] + (1.0f - b1) * grad;
        float vi = b2 * v[i] + (1.0f - b2) * grad * grad;
        m[i] = mi;
        v[i] = vi;
        float mhat = mi / bc1, vhat = vi / bc2;
        p[i] -= lr * (mhat / (sqrtf(vhat) + eps) + wd * p[i]);
    }
    if (a->params_half.buf) vkt_cpu_to_half(be, a->params_half, params_, n); /* fp16 copy */
}

/* Fixed-size chunks summed in order: the result does not depend on the thread count. */
#define SUMSQ_CHUNK 65536

/* Sum of x (or of x^2) in double over fixed-size chunks, added in chunk order. */
static double chunked_sum(const float *x, size_t n, int squares) {
    size_t nchunks = (n + SUMSQ_CHUNK - 1) / SUMSQ_CHUNK;
    double *part = vkt_cpu_scratch(2, (nchunks ? nchunks : 1) * sizeof(double));
#pragma omp parallel for schedule(static)
    for (size_t ch = 0; ch < nchunks; ch++) {
        size_t lo = ch * SUMSQ_CHUNK, hi = lo + SUMSQ_CHUNK < n ? lo + SUMSQ_CHUNK : n;
        double s = 0;
        if (squares)
            for (size_t i = lo; i < hi; i++) s += (double)x[i] * x[i];
        else
            for (size_t i = lo; i < hi; i++) s += x[i];
        part[ch] = s;
    }
    double total = 0;
    for (size_t ch = 0; ch < nchunks; ch++) total += part[ch];
    return total;
}

void vkt_cpu_sumsq(vkt_backend *be, vkt_ptr out_, vkt_ptr x_, size_t n) {
    (void)be;
    F(out_)[0] = (float)chunked_sum(F(x_), n, 1);
}

void vkt_cpu_sum_into(vkt_backend *be, vkt_ptr out_, vkt_ptr x_, size_t n, float scale) {
    (void)be;
    F(out_)[0] += (float)(scale * chunked_sum(F(x_), n, 0));
}

void vkt_cpu_scale(vkt_backend *be, vkt_ptr x_, float s, size_t n) {
    (void)be;
    float *x = F(x_);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

/* The two ops in sequence: bit for bit what they give apart. */
void vkt_cpu_residual_layernorm_forward(vkt_backend *be, vkt_ptr res, vkt_ptr out, vkt_ptr mean,
                                        vkt_ptr rstd, vkt_ptr a, vkt_ptr b, vkt_ptr weight,
                                        vkt_ptr bias, int N, int C, vkt_ptr out_half) {
    vkt_cpu_residual_forward(be, res, a, b, (size_t)N * C);
    vkt_cpu_layernorm_forward(be, out, mean, rstd, res, weight, bias, N, C, out_half);
}
