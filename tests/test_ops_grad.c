/* Op checks of the reference "cpu" backend: every forward op against a double-precision host
 * version, every backward op against finite differences of its forward op, and the += / overwrite
 * semantics that backend.h promises for each gradient output. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vktrain/backend.h"
#include "vkt_test.h"

/* ---- finite differences ------------------------------------------------------------------
 * The objective is a fixed random projection of an op's output, f = sum_i w_i out_i, so its
 * gradient with respect to the output is w and the backward op is called with dout = w. f is
 * summed in double on the host, but the outputs come from a float32 forward, so f carries
 * rounding noise of about sqrt(#outputs touched) * 1e-7. A plain central difference with
 * h = 1e-3 turns that into ~1e-4 absolute noise in the gradient, which is a few percent of the
 * small entries. We therefore use the fourth-order stencil
 *   f'(x) ~ (8 (f(x+h) - f(x-h)) - (f(x+2h) - f(x-2h))) / 12h
 * with h = 1e-2: its truncation error is O(h^4 f^(5)) ~ 1e-8 for these smooth ops with O(1)
 * inputs, and its rounding noise is ~1.5e-7/h ~ 1.5e-5 absolute. (x +- h is rounded to float;
 * the step error, ulp(x)/h ~ 3e-5 relative for |x| < 2, is negligible.)
 * Pass criterion: |num - ana| / max(|num|, |ana|, FD_FLOOR) <= FD_TOL, i.e. 1% relative error
 * for gradients above 1e-2 and 1e-4 absolute below (entries that are exactly zero, such as
 * d/dq at t = 0 of causal attention, land here). The typical gradient is O(0.1 .. 1) since
 * inputs and weights are O(1); a wrong formula (a missing factor, a transposed index, a
 * dropped term) gives errors of order 1, far above this. */
#define FD_H 1e-2
#define FD_TOL 1e-2
#define FD_FLOOR 1e-2
#define FD_ALL 400   /* tensors up to this size are checked on every element */
#define FD_SAMPLE 50 /* larger ones on this many random elements */

static vkt_backend *be;

/* ---- random numbers: xorshift64*, fixed seed so failures reproduce ---- */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rng_u32(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}
static float rnd(void) { return (float)((rng_u32() >> 8) * (2.0 / 16777216.0) - 1.0); } /* [-1,1) */

static float *hnew(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) { fprintf(stderr, "out of host memory\n"); exit(1); }
    return p;
}
static float *hrand(size_t n, float scale) {
    float *p = hnew(n);
    for (size_t i = 0; i < n; i++) p[i] = scale * rnd();
    return p;
}
static double *dnew(size_t n) {
    double *p = calloc(n ? n : 1, sizeof(double));
    if (!p) { fprintf(stderr, "out of host memory\n"); exit(1); }
    return p;
}

/* ---- device tensors: placed at a nonzero offset inside their buffer, between guard bands
 * whose contents are checked when the tensor is freed (catches writes out of bounds and ops
 * that ignore vkt_ptr.off) ---- */
#define GUARD 4 /* floats before and after; 16 bytes keeps offsets vec4-aligned */
static const float GUARD_VAL = -777.25f;

typedef struct tensor {
    vkt_buf *buf;
    vkt_ptr p;
    size_t n;
    const char *name;
} tensor;

static tensor tnew(const char *name, size_t n) {
    char err[512] = "";
    tensor t;
    t.buf = vkt_alloc(be, (n + 2 * GUARD) * sizeof(float), err, sizeof err);
    if (!t.buf) {
        fprintf(stderr, "vkt_alloc(%zu floats) for %s failed: %s\n", n, name, err);
        exit(1);
    }
    t.p = vkt_at(t.buf, GUARD * sizeof(float));
    t.n = n;
    t.name = name;
    float *g = hnew(n + 2 * GUARD);
    for (size_t i = 0; i < n + 2 * GUARD; i++) g[i] = GUARD_VAL;
    vkt_upload(be, vkt_at(t.buf, 0), g, (n + 2 * GUARD) * sizeof(float));
    free(g);
    return t;
}
static void tfree(tensor t) {
    float g[2 * GUARD];
    vkt_synchronize(be);
    vkt_download(be, g, vkt_at(t.buf, 0), GUARD * sizeof(float));
    vkt_download(be, g + GUARD, vkt_ptr_addf(t.p, t.n), GUARD * sizeof(float));
    for (int i = 0; i < 2 * GUARD; i++)
        CHECK(memcmp(&g[i], &GUARD_VAL, sizeof(float)) == 0,
              "guard float %d %s tensor %s (%zu floats) was overwritten with %g", i % GUARD,
              i < GUARD ? "before" : "after", t.name, t.n, g[i]);
    vkt_free(be, t.buf);
}
static void up(tensor t, const void *src) { vkt_upload(be, t.p, src, t.n * sizeof(float)); }
static void down(void *dst, tensor t) {
    vkt_synchronize(be);
    vkt_download(be, dst, t.p, t.n * sizeof(float));
}
static float *down_new(tensor t) {
    float *h = hnew(t.n);
    down(h, t);
    return h;
}
static void tset(tensor t, float v) {
    float *h = hnew(t.n);
    for (size_t i = 0; i < t.n; i++) h[i] = v;
    up(t, h);
    free(h);
}

/* f = sum_i w_i out_i in double */
static double project(tensor out, const float *w) {
    float *o = down_new(out);
    double f = 0;
    for (size_t i = 0; i < out.n; i++) f += (double)w[i] * (double)o[i];
    free(o);
    return f;
}

/* analytic gradient read back from a buffer that was pre-filled with `pre`: what the op added */
static double *added(tensor t, const float *pre) {
    float *g = down_new(t);
    double *a = dnew(t.n);
    for (size_t i = 0; i < t.n; i++) a[i] = (double)g[i] - (double)pre[i];
    free(g);
    return a;
}
/* analytic gradient of an op that overwrites */
static double *fetched(tensor t) {
    float *g = down_new(t);
    double *a = dnew(t.n);
    for (size_t i = 0; i < t.n; i++) a[i] = g[i];
    free(g);
    return a;
}

typedef double (*objective_fn)(void *ctx);

/* fourth-order central difference of obj in element i of x (device data; restored after) */
static double fd_at(objective_fn obj, void *ctx, tensor x, float x0, size_t i) {
    static const double step[4] = {FD_H, -FD_H, 2 * FD_H, -2 * FD_H};
    double f[4];
    vkt_ptr at = vkt_ptr_addf(x.p, i);
    for (int k = 0; k < 4; k++) {
        float xs = (float)((double)x0 + step[k]);
        vkt_upload(be, at, &xs, sizeof xs);
        f[k] = obj(ctx);
    }
    vkt_upload(be, at, &x0, sizeof x0);
    return (8.0 * (f[0] - f[1]) - (f[2] - f[3])) / (12.0 * FD_H);
}

/* Compares ana (the backward op's gradient of x) to finite differences of obj at the elements
 * idx[0..k) of x, or at all / FD_SAMPLE random elements when idx is NULL. */
static double fd_check(const char *what, objective_fn obj, void *ctx, tensor x,
                       const double *ana, const size_t *idx, size_t k) {
    size_t *own = NULL;
    if (!idx) {
        own = malloc(x.n * sizeof *own);
        if (!own) exit(1);
        for (size_t i = 0; i < x.n; i++) own[i] = i;
        k = x.n;
        if (x.n > FD_ALL) { /* partial Fisher-Yates: FD_SAMPLE distinct random elements */
            for (size_t j = 0; j < FD_SAMPLE; j++) {
                size_t r = j + (size_t)rng_u32() % (x.n - j);
                size_t tmp = own[j];
                own[j] = own[r];
                own[r] = tmp;
            }
            k = FD_SAMPLE;
        }
        idx = own;
    }
    float *xh = down_new(x);
    double worst = 0, wnum = 0, wana = 0;
    size_t wi = 0;
    for (size_t j = 0; j < k; j++) {
        size_t i = idx[j];
        double num = fd_at(obj, ctx, x, xh[i], i);
        double a = ana[i];
        double e = fabs(num - a) / fmax(fmax(fabs(num), fabs(a)), FD_FLOOR);
        if (!(e <= worst)) { /* NaN counts as worst */
            worst = e;
            wi = i;
            wnum = num;
            wana = a;
        }
    }
    printf("  fd  %-44s %4zu/%-4zu elements, worst rel err %.1e\n", what, k, x.n, worst);
    CHECK(worst <= FD_TOL, "%s: element %zu: finite difference %.7g, backward op %.7g", what, wi,
          wnum, wana);
    free(xh);
    free(own);
    return worst;
}

/* elementwise comparison of float results with a double reference */
static void close_d(const char *what, const float *got, const double *want, size_t n, double rtol,
                    double atol_frac) {
    float *wf = hnew(n);
    for (size_t i = 0; i < n; i++) wf[i] = (float)want[i];
    double worst = vkt_test_close(what, got, wf, n, rtol, atol_frac);
    printf("  fwd %-44s %4zu elements, worst %.2f x tolerance\n", what, n, worst);
    free(wf);
}
static size_t count_nan(const float *x, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += isnan(x[i]) ? 1 : 0;
    return c;
}
static int bits_equal(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * sizeof(float)) == 0;
}

/* ================================== encoder ================================================ */
enum { EB = 2, ET = 5, EC = 12, EV = 11, EMAXT = 7 };

struct enc_ctx {
    tensor out, tok, wte, wpe;
    const float *w;
};
static double enc_obj(void *p) {
    struct enc_ctx *c = p;
    vkt_encoder_forward(be, c->out.p, c->tok.p, c->wte.p, c->wpe.p, EB, ET, EC);
    return project(c->out, c->w);
}

static void test_encoder(void) {
    printf("encoder (B=%d T=%d C=%d V=%d, wpe rows %d)\n", EB, ET, EC, EV, EMAXT);
    /* token 3 three times, 7 three times (twice in one row): dwte rows must accumulate */
    const int32_t toks[EB * ET] = {3, 7, 3, 0, 10, 7, 7, 2, 3, 9};
    struct enc_ctx c;
    c.out = tnew("enc.out", EB * ET * EC);
    c.tok = tnew("enc.tokens", EB * ET);
    c.wte = tnew("enc.wte", EV * EC);
    c.wpe = tnew("enc.wpe", EMAXT * EC);
    tensor dwte = tnew("enc.dwte", EV * EC), dwpe = tnew("enc.dwpe", EMAXT * EC);
    tensor dout = tnew("enc.dout", EB * ET * EC);
    float *wte = hrand(EV * EC, 1), *wpe = hrand(EMAXT * EC, 1), *w = hrand(EB * ET * EC, 1);
    float *pwte = hrand(EV * EC, 1), *pwpe = hrand(EMAXT * EC, 1);
    c.w = w;
    up(c.tok, toks);
    up(c.wte, wte);
    up(c.wpe, wpe);
    tset(c.out, NAN);

    vkt_encoder_forward(be, c.out.p, c.tok.p, c.wte.p, c.wpe.p, EB, ET, EC);
    float *out = down_new(c.out);
    double *want = dnew(c.out.n);
    for (int b = 0; b < EB; b++)
        for (int t = 0; t < ET; t++)
            for (int i = 0; i < EC; i++)
                want[(b * ET + t) * EC + i] =
                    (double)(wte[toks[b * ET + t] * EC + i] + wpe[t * EC + i]);
    close_d("encoder_forward out", out, want, c.out.n, 1e-7, 1e-3);

    /* backward into gradients pre-filled with known values: it must add */
    up(dwte, pwte);
    up(dwpe, pwpe);
    up(dout, w);
    vkt_encoder_backward(be, dwte.p, dwpe.p, dout.p, c.tok.p, EB, ET, EC);
    double *awte = added(dwte, pwte), *awpe = added(dwpe, pwpe);
    /* exact host sums, and rows that no token / position touches must stay bit-identical */
    double *hwte = dnew(dwte.n), *hwpe = dnew(dwpe.n);
    for (int b = 0; b < EB; b++)
        for (int t = 0; t < ET; t++)
            for (int i = 0; i < EC; i++) {
                hwte[toks[b * ET + t] * EC + i] += w[(b * ET + t) * EC + i];
                hwpe[t * EC + i] += w[(b * ET + t) * EC + i];
            }
    double worst = 0;
    for (size_t i = 0; i < dwte.n; i++) worst = fmax(worst, fabs(awte[i] - hwte[i]));
    for (size_t i = 0; i < dwpe.n; i++) worst = fmax(worst, fabs(awpe[i] - hwpe[i]));
    CHECK(worst < 1e-5, "encoder_backward: dwte/dwpe += differ from host sums by %g", worst);
    float *gwte = down_new(dwte), *gwpe = down_new(dwpe);
    int untouched_ok = 1;
    for (int v = 0; v < EV; v++) {
        int used = 0;
        for (int j = 0; j < EB * ET; j++) used |= toks[j] == v;
        if (!used && !bits_equal(gwte + v * EC, pwte + v * EC, EC)) untouched_ok = 0;
    }
    for (int t = ET; t < EMAXT; t++)
        if (!bits_equal(gwpe + t * EC, pwpe + t * EC, EC)) untouched_ok = 0;
    CHECK(untouched_ok, "encoder_backward changed dwte rows of absent tokens or dwpe rows >= T");
    printf("  bwd encoder_backward += vs host sums: max abs err %.1e\n", worst);

    fd_check("encoder dwte (rows of repeated tokens)", enc_obj, &c, c.wte, awte, NULL, 0);
    fd_check("encoder dwpe", enc_obj, &c, c.wpe, awpe, NULL, 0);

    free(wte), free(wpe), free(w), free(pwte), free(pwpe), free(out), free(want);
    free(awte), free(awpe), free(hwte), free(hwpe), free(gwte), free(gwpe);
    tfree(c.out), tfree(c.tok), tfree(c.wte), tfree(c.wpe), tfree(dwte), tfree(dwpe);
    tfree(dout);
}

/* ================================== layernorm ============================================== */
enum { LN = 7, LC = 12 };

struct ln_ctx {
    tensor out, mean, rstd, inp, weight, bias;
    const float *w;
};
static double ln_obj(void *p) {
    struct ln_ctx *c = p;
    vkt_layernorm_forward(be, c->out.p, c->mean.p, c->rstd.p, c->inp.p, c->weight.p, c->bias.p,
                          LN, LC, VKT_NULL_PTR);
    return project(c->out, c->w);
}

static void test_layernorm(void) {
    printf("layernorm (N=%d C=%d)\n", LN, LC);
    struct ln_ctx c;
    c.out = tnew("ln.out", LN * LC);
    c.mean = tnew("ln.mean", LN);
    c.rstd = tnew("ln.rstd", LN);
    c.inp = tnew("ln.inp", LN * LC);
    c.weight = tnew("ln.weight", LC);
    c.bias = tnew("ln.bias", LC);
    tensor dinp = tnew("ln.dinp", LN * LC), dw = tnew("ln.dweight", LC),
           db = tnew("ln.dbias", LC), dout = tnew("ln.dout", LN * LC);
    float *inp = hrand(LN * LC, 1.5f), *wt = hnew(LC), *bs = hrand(LC, 0.3f);
    for (int r = 0; r < LN; r++) /* rows with different means and spreads */
        for (int i = 0; i < LC; i++) inp[r * LC + i] = inp[r * LC + i] * (0.5f + 0.2f * r) + 0.3f * r;
    for (int i = 0; i < LC; i++) wt[i] = 1.0f + 0.3f * rnd();
    float *w = hrand(LN * LC, 1);
    c.w = w;
    up(c.inp, inp), up(c.weight, wt), up(c.bias, bs);
    tset(c.out, NAN), tset(c.mean, NAN), tset(c.rstd, NAN);

    vkt_layernorm_forward(be, c.out.p, c.mean.p, c.rstd.p, c.inp.p, c.weight.p, c.bias.p, LN, LC, VKT_NULL_PTR);
    double *hout = dnew(LN * LC), hmean[LN], hrstd[LN];
    for (int r = 0; r < LN; r++) {
        double m = 0, v = 0;
        for (int i = 0; i < LC; i++) m += inp[r * LC + i];
        m /= LC;
        for (int i = 0; i < LC; i++) v += (inp[r * LC + i] - m) * (inp[r * LC + i] - m);
        v /= LC;
        double s = 1.0 / sqrt(v + 1e-5);
        hmean[r] = m;
        hrstd[r] = s;
        for (int i = 0; i < LC; i++) hout[r * LC + i] = (inp[r * LC + i] - m) * s * wt[i] + bs[i];
    }
    float *out = down_new(c.out), *mean = down_new(c.mean), *rstd = down_new(c.rstd);
    /* float32 forward over C=12: a few ulp; rtol 2e-5 with a floor of 1e-3 * max|out| */
    close_d("layernorm_forward out", out, hout, LN * LC, 2e-5, 1e-3);
    close_d("layernorm_forward mean", mean, hmean, LN, 2e-5, 1e-3);
    close_d("layernorm_forward rstd", rstd, hrstd, LN, 2e-5, 1e-3);

    /* all three gradients are +=: pre-fill them with known values */
    float *pi = hrand(LN * LC, 1), *pw = hrand(LC, 1), *pb = hrand(LC, 1);
    up(dinp, pi), up(dw, pw), up(db, pb), up(dout, w);
    vkt_layernorm_backward(be, dinp.p, dw.p, db.p, dout.p, c.inp.p, c.weight.p, c.mean.p, c.rstd.p,
                           LN, LC);
    double *ai = added(dinp, pi), *aw = added(dw, pw), *ab = added(db, pb);
    fd_check("layernorm dinp (+=)", ln_obj, &c, c.inp, ai, NULL, 0);
    fd_check("layernorm dweight (+=)", ln_obj, &c, c.weight, aw, NULL, 0);
    fd_check("layernorm dbias (+=)", ln_obj, &c, c.bias, ab, NULL, 0);

    free(inp), free(wt), free(bs), free(w), free(hout), free(out), free(mean), free(rstd);
    free(pi), free(pw), free(pb), free(ai), free(aw), free(ab);
    tfree(c.out), tfree(c.mean), tfree(c.rstd), tfree(c.inp), tfree(c.weight), tfree(c.bias);
    tfree(dinp), tfree(dw), tfree(db), tfree(dout);
}

/* ================================== matmul ================================================= */
enum { MM = 7, MN = 9, MK = 13 };

/* C = alpha op(A) op(B) + beta C0 + bias, in double */
static void host_matmul(double *c, const float *a, const float *b, const float *bias,
                        const float *c0, int M, int N, int K, int ta, int tb, double alpha,
                        double beta) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) {
                double av = ta ? a[k * M + i] : a[i * K + k];
                double bv = tb ? b[j * K + k] : b[k * N + j];
                s += av * bv;
            }
            double v = alpha * s;
            if (beta != 0) v += beta * c0[i * N + j];
            if (bias) v += bias[j];
            c[i * N + j] = v;
        }
}

struct mm_ctx {
    tensor c, a, b, bias;
    int M, N, K, ta, tb, use_bias;
    float alpha;
    const float *w;
};
static double mm_obj(void *p) {
    struct mm_ctx *x = p;
    vkt_matmul(be, x->c.p, x->a.p, x->b.p, x->use_bias ? x->bias.p : VKT_NULL_PTR, x->M, x->N,
               x->K, x->ta, x->tb, x->alpha, 0.0f);
    return project(x->c, x->w);
}

static void test_matmul_forward(void) {
    printf("matmul forward (M=%d N=%d K=%d, alpha=0.75, all trans/bias/beta combinations)\n", MM,
           MN, MK);
    const float alpha = 0.75f;
    tensor a = tnew("mm.A", MM * MK), b = tnew("mm.B", MK * MN), bias = tnew("mm.bias", MN),
           c = tnew("mm.C", MM * MN);
    float *ha = hrand(a.n, 1), *hb = hrand(b.n, 1), *hbias = hrand(MN, 1), *hc0 = hrand(c.n, 1);
    double *want = dnew(c.n);
    float *nan_c = hnew(c.n);
    for (size_t i = 0; i < c.n; i++) nan_c[i] = NAN;
    up(a, ha), up(b, hb), up(bias, hbias);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int ub = 0; ub < 2; ub++)
                for (int beta = 0; beta < 2; beta++) {
                    /* beta = 0 must never read C: NaN there must not leak into the result */
                    up(c, beta ? hc0 : nan_c);
                    vkt_matmul(be, c.p, a.p, b.p, ub ? bias.p : VKT_NULL_PTR, MM, MN, MK, ta, tb,
                               alpha, (float)beta);
                    float *got = down_new(c);
                    host_matmul(want, ha, hb, ub ? hbias : NULL, hc0, MM, MN, MK, ta, tb, alpha,
                                beta);
                    char what[96];
                    snprintf(what, sizeof what, "matmul ta=%d tb=%d bias=%d beta=%d", ta, tb, ub,
                             beta);
                    CHECK(count_nan(got, c.n) == 0, "%s: %zu NaN in C", what, count_nan(got, c.n));
                    /* K=13 float products: error <~ K ulp of the largest term; rtol 1e-4 with a
                     * floor of 1% of max|C| for entries that cancel */
                    close_d(what, got, want, c.n, 1e-4, 1e-2);
                    free(got);
                }
    free(ha), free(hb), free(hbias), free(hc0), free(want), free(nan_c);
    tfree(a), tfree(b), tfree(bias), tfree(c);
}

/* Gradients of C = alpha op(A) op(B) + bias for each transpose combination, obtained with
 * vkt_matmul itself (G = dC = w):
 *   dA (M,K)   = alpha G op(B)^T      : matmul(dA, G, B, M, K, N, 0, !tb)   when !ta
 *   dA (K,M)   = alpha op(B) G^T      : matmul(dA, B, G, K, M, N, tb, 1)    when ta
 *   dB (K,N)   = alpha op(A)^T G      : matmul(dB, A, G, K, N, M, !ta, 0)   when !tb
 *   dB (N,K)   = alpha G^T op(A)      : matmul(dB, G, A, N, K, M, 1, ta)    when tb
 * dA accumulates with beta=1 onto known values, dB overwrites (beta=0) NaN garbage. */
static void test_matmul_grad(void) {
    printf("matmul gradients via vkt_matmul in backward configurations (M=%d N=%d K=%d)\n", MM,
           MN, MK);
    const float alpha = 0.75f;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            struct mm_ctx x;
            x.M = MM, x.N = MN, x.K = MK, x.ta = ta, x.tb = tb, x.use_bias = 1, x.alpha = alpha;
            x.a = tnew("mmg.A", MM * MK), x.b = tnew("mmg.B", MK * MN);
            x.bias = tnew("mmg.bias", MN), x.c = tnew("mmg.C", MM * MN);
            tensor g = tnew("mmg.G", MM * MN), da = tnew("mmg.dA", MM * MK),
                   db = tnew("mmg.dB", MK * MN), dbias = tnew("mmg.dbias", MN);
            float *ha = hrand(x.a.n, 1), *hb = hrand(x.b.n, 1), *hbias = hrand(MN, 1);
            float *w = hrand(g.n, 1), *pa = hrand(da.n, 1), *pbias = hrand(MN, 1);
            x.w = w;
            up(x.a, ha), up(x.b, hb), up(x.bias, hbias), up(g, w);
            up(da, pa), tset(db, NAN), up(dbias, pbias);
            if (!ta)
                vkt_matmul(be, da.p, g.p, x.b.p, VKT_NULL_PTR, MM, MK, MN, 0, !tb, alpha, 1.0f);
            else
                vkt_matmul(be, da.p, x.b.p, g.p, VKT_NULL_PTR, MK, MM, MN, tb, 1, alpha, 1.0f);
            if (!tb)
                vkt_matmul(be, db.p, x.a.p, g.p, VKT_NULL_PTR, MK, MN, MM, !ta, 0, alpha, 0.0f);
            else
                vkt_matmul(be, db.p, g.p, x.a.p, VKT_NULL_PTR, MN, MK, MM, 1, ta, alpha, 0.0f);
            vkt_bias_backward(be, dbias.p, g.p, MM, MN);
            double *aa = added(da, pa), *ab = fetched(db), *abias = added(dbias, pbias);
            char what[96];
            snprintf(what, sizeof what, "matmul ta=%d tb=%d dA (beta=1 +=)", ta, tb);
            fd_check(what, mm_obj, &x, x.a, aa, NULL, 0);
            snprintf(what, sizeof what, "matmul ta=%d tb=%d dB (beta=0 over NaN)", ta, tb);
            fd_check(what, mm_obj, &x, x.b, ab, NULL, 0);
            snprintf(what, sizeof what, "matmul ta=%d tb=%d dbias (bias_backward +=)", ta, tb);
            fd_check(what, mm_obj, &x, x.bias, abias, NULL, 0);
            free(ha), free(hb), free(hbias), free(w), free(pa), free(pbias);
            free(aa), free(ab), free(abias);
            tfree(x.a), tfree(x.b), tfree(x.bias), tfree(x.c);
            tfree(g), tfree(da), tfree(db), tfree(dbias);
        }
}

/* A linear layer as the model uses it: out(N,OC) = inp(N,C) W(OC,C)^T + bias, and its backward
 * dinp = dout W (beta 0), dW += dout^T inp (trans_a, beta 1), dbias += colsum(dout). */
enum { LR = 10, LIC = 48, LOC = 37 };
static void test_linear(void) {
    printf("linear layer (N=%d C=%d OC=%d)\n", LR, LIC, LOC);
    struct mm_ctx x;
    x.M = LR, x.N = LOC, x.K = LIC, x.ta = 0, x.tb = 1, x.use_bias = 1, x.alpha = 1.0f;
    x.a = tnew("lin.inp", LR * LIC), x.b = tnew("lin.W", LOC * LIC);
    x.bias = tnew("lin.bias", LOC), x.c = tnew("lin.out", LR * LOC);
    tensor dout = tnew("lin.dout", LR * LOC), dinp = tnew("lin.dinp", LR * LIC),
           dw = tnew("lin.dW", LOC * LIC), dbias = tnew("lin.dbias", LOC);
    float *hi = hrand(x.a.n, 1), *hw = hrand(x.b.n, 0.3f), *hb = hrand(LOC, 1);
    float *w = hrand(dout.n, 1), *pw = hrand(dw.n, 1), *pb = hrand(LOC, 1);
    x.w = w;
    up(x.a, hi), up(x.b, hw), up(x.bias, hb), up(dout, w);
    tset(dinp, NAN), up(dw, pw), up(dbias, pb);
    vkt_matmul(be, dinp.p, dout.p, x.b.p, VKT_NULL_PTR, LR, LIC, LOC, 0, 0, 1.0f, 0.0f);
    vkt_matmul(be, dw.p, dout.p, x.a.p, VKT_NULL_PTR, LOC, LIC, LR, 1, 0, 1.0f, 1.0f);
    vkt_bias_backward(be, dbias.p, dout.p, LR, LOC);
    double *ai = fetched(dinp), *aw = added(dw, pw), *ab = added(dbias, pb);

    /* bias_backward against exact host column sums */
    double worst = 0;
    for (int j = 0; j < LOC; j++) {
        double s = 0;
        for (int i = 0; i < LR; i++) s += w[i * LOC + j];
        worst = fmax(worst, fabs(ab[j] - s));
    }
    CHECK(worst < 1e-5, "bias_backward: dbias += colsum differs from host by %g", worst);
    printf("  bwd bias_backward += vs host column sums: max abs err %.1e\n", worst);

    fd_check("linear dinp (beta=0 over NaN)", mm_obj, &x, x.a, ai, NULL, 0);
    fd_check("linear dW (trans_a, beta=1 +=)", mm_obj, &x, x.b, aw, NULL, 0);
    fd_check("linear dbias (bias_backward +=)", mm_obj, &x, x.bias, ab, NULL, 0);
    free(hi), free(hw), free(hb), free(w), free(pw), free(pb), free(ai), free(aw), free(ab);
    tfree(x.a), tfree(x.b), tfree(x.bias), tfree(x.c);
    tfree(dout), tfree(dinp), tfree(dw), tfree(dbias);
}

/* ================================== attention ============================================== */
enum { AB = 2, AT = 5, AC = 12, ANH = 3 };

/* out and lse (log-sum-exp of each row's scaled scores) in double, from the definition. */
static void host_attention(double *out, double *lse, const float *qkv) {
    const int hs = AC / ANH;
    const double scale = 1.0 / sqrt((double)hs);
    for (int b = 0; b < AB; b++)
        for (int h = 0; h < ANH; h++)
            for (int t = 0; t < AT; t++) {
                const float *q = qkv + (b * AT + t) * 3 * AC + h * hs;
                double a[AT], mx = -INFINITY, sum = 0;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *k = qkv + (b * AT + t2) * 3 * AC + AC + h * hs;
                    double s = 0;
                    for (int i = 0; i < hs; i++) s += (double)q[i] * k[i];
                    a[t2] = s * scale;
                    mx = fmax(mx, a[t2]);
                }
                for (int t2 = 0; t2 <= t; t2++) sum += exp(a[t2] - mx);
                lse[(b * ANH + h) * AT + t] = mx + log(sum);
                for (int t2 = 0; t2 <= t; t2++) a[t2] = exp(a[t2] - mx) / sum;
                for (int i = 0; i < hs; i++) {
                    double o = 0;
                    for (int t2 = 0; t2 <= t; t2++)
                        o += a[t2] * qkv[(b * AT + t2) * 3 * AC + 2 * AC + h * hs + i];
                    out[(b * AT + t) * AC + h * hs + i] = o;
                }
            }
}

struct att_ctx {
    tensor out, lse, qkv;
    const float *w;
};
static double att_obj(void *p) {
    struct att_ctx *c = p;
    vkt_attention_forward(be, c->out.p, c->lse.p, c->qkv.p, AB, AT, AC, ANH, VKT_NULL_PTR);
    return project(c->out, c->w);
}

static void test_attention(void) {
    printf("attention (B=%d T=%d C=%d NH=%d)\n", AB, AT, AC, ANH);
    struct att_ctx c;
    c.out = tnew("att.out", AB * AT * AC);
    c.lse = tnew("att.lse", AB * ANH * AT);
    c.qkv = tnew("att.qkv", AB * AT * 3 * AC);
    tensor dqkv = tnew("att.dqkv", c.qkv.n), dout = tnew("att.dout", c.out.n);
    float *qkv = hrand(c.qkv.n, 1.2f), *w = hrand(c.out.n, 1);
    c.w = w;
    up(c.qkv, qkv);
    tset(c.out, NAN);
    tset(c.lse, NAN); /* every row's lse is written */

    vkt_attention_forward(be, c.out.p, c.lse.p, c.qkv.p, AB, AT, AC, ANH, VKT_NULL_PTR);
    float *out = down_new(c.out), *lse = down_new(c.lse);
    double *hout = dnew(c.out.n), *hlse = dnew(c.lse.n);
    host_attention(hout, hlse, qkv);
    close_d("attention_forward out", out, hout, c.out.n, 1e-4, 1e-2);
    close_d("attention_forward lse", lse, hlse, c.lse.n, 1e-5, 1e-2);
    /* row t = 0 attends only to itself: its lse is its own scaled score */
    int first_ok = 1;
    for (int b = 0; b < AB; b++)
        for (int h = 0; h < ANH; h++) {
            const int hs = AC / ANH;
            const float *q = qkv + (b * AT) * 3 * AC + h * hs, *k = q + AC;
            double s = 0;
            for (int i = 0; i < hs; i++) s += (double)q[i] * k[i];
            s /= sqrt((double)hs);
            if (fabs(lse[(b * ANH + h) * AT] - s) > 1e-5 * (1 + fabs(s))) first_ok = 0;
        }
    CHECK(first_ok, "attention_forward: lse of row 0 is not its own score q.k/sqrt(hs)");
    printf("  fwd attention lse of row 0 = its own score: %s\n", first_ok ? "yes" : "NO");

    /* causality: changing k and v of position t0 in batch 0 must leave every output at t < t0
     * (and all of batch 1) bit-identical, and must change something at t >= t0 */
    const int t0 = 2;
    float *pert = malloc(c.qkv.n * sizeof(float));
    if (!pert) exit(1);
    memcpy(pert, qkv, c.qkv.n * sizeof(float));
    for (int i = AC; i < 3 * AC; i++) pert[t0 * 3 * AC + i] += 0.5f;
    up(c.qkv, pert);
    vkt_attention_forward(be, c.out.p, c.lse.p, c.qkv.p, AB, AT, AC, ANH, VKT_NULL_PTR);
    float *out2 = down_new(c.out);
    int past_same = bits_equal(out2, out, t0 * AC);
    int other_batch_same = bits_equal(out2 + AT * AC, out + AT * AC, AT * AC);
    int later_changed = !bits_equal(out2 + t0 * AC, out + t0 * AC, (AT - t0) * AC);
    CHECK(past_same, "attention_forward: k/v at t=%d changed outputs at t < %d", t0, t0);
    CHECK(other_batch_same, "attention_forward: changing batch 0 changed batch 1");
    CHECK(later_changed, "attention_forward: k/v at t=%d did not affect outputs at t >= %d", t0,
          t0);
    printf("  fwd attention causality (k/v at t=%d): earlier outputs unchanged: %s\n", t0,
           past_same && other_batch_same ? "yes" : "NO");
    up(c.qkv, qkv);

    /* backward: dqkv is overwritten, so garbage in it must not matter; lse from the forward */
    vkt_attention_forward(be, c.out.p, c.lse.p, c.qkv.p, AB, AT, AC, ANH, VKT_NULL_PTR);
    up(dout, w);
    tset(dqkv, 1234.5f);
    vkt_attention_backward(be, dqkv.p, dout.p, c.qkv.p, c.lse.p, c.out.p, AB, AT, AC, ANH);
    float *g1 = down_new(dqkv);
    /* a second call onto its own result must give the same result (overwrite, not +=) */
    vkt_attention_backward(be, dqkv.p, dout.p, c.qkv.p, c.lse.p, c.out.p, AB, AT, AC, ANH);
    float *g2 = down_new(dqkv);
    CHECK(bits_equal(g1, g2, dqkv.n), "attention_backward: calling twice changes dqkv (adds?)");
    double *ana = dnew(dqkv.n);
    for (size_t i = 0; i < dqkv.n; i++) ana[i] = g1[i];
    static const char *part[3] = {"attention dq (over garbage)", "attention dk (over garbage)",
                                  "attention dv (over garbage)"};
    size_t *idx = malloc(dqkv.n * sizeof *idx);
    if (!idx) exit(1);
    for (int p = 0; p < 3; p++) {
        size_t k = 0;
        for (size_t i = 0; i < dqkv.n; i++)
            if ((int)((i % (3 * AC)) / AC) == p) idx[k++] = i;
        fd_check(part[p], att_obj, &c, c.qkv, ana, idx, k);
    }

    free(qkv), free(w), free(out), free(lse), free(hout), free(hlse), free(pert), free(out2);
    free(g1), free(g2), free(ana), free(idx);
    tfree(c.out), tfree(c.lse), tfree(c.qkv), tfree(dqkv), tfree(dout);
}

/* ================================== gelu / residual ======================================== */
enum { GN = 37 };

struct gelu_ctx {
    tensor out, inp;
    const float *w;
};
static double gelu_obj(void *p) {
    struct gelu_ctx *c = p;
    vkt_gelu_forward(be, c->out.p, c->inp.p, GN, VKT_NULL_PTR);
    return project(c->out, c->w);
}

static void test_gelu(void) {
    printf("gelu (n=%d)\n", GN);
    struct gelu_ctx c;
    c.out = tnew("gelu.out", GN);
    c.inp = tnew("gelu.inp", GN);
    tensor dinp = tnew("gelu.dinp", GN), dout = tnew("gelu.dout", GN);
    float *x = hnew(GN), *w = hrand(GN, 1);
    for (int i = 0; i < GN; i++) x[i] = -4.0f + 8.0f * i / (GN - 1) + 0.05f * rnd(); /* [-4,4] */
    x[GN / 2] = 0.0f;
    c.w = w;
    up(c.inp, x);
    tset(c.out, NAN);
    vkt_gelu_forward(be, c.out.p, c.inp.p, GN, VKT_NULL_PTR);
    float *out = down_new(c.out);
    double worst = 0;
    for (int i = 0; i < GN; i++) {
        double xi = x[i];
        double want = 0.5 * xi * (1.0 + tanh(sqrt(2.0 / 3.14159265358979323846) * (xi + 0.044715 * xi * xi * xi)));
        /* float tanh near -1 cancels in 1 + tanh: judge by 1e-6 absolute + 1e-5 relative */
        worst = fmax(worst, fabs(out[i] - want) / (1e-6 + 1e-5 * fabs(want)));
    }
    CHECK(worst <= 1.0, "gelu_forward differs from the tanh formula (%.2f x tolerance)", worst);
    printf("  fwd gelu_forward vs tanh formula: worst %.2f x tolerance\n", worst);

    up(dout, w);
    tset(dinp, 1234.5f); /* overwritten: garbage must not matter */
    vkt_gelu_backward(be, dinp.p, c.inp.p, dout.p, GN);
    float *g = down_new(dinp);
    double *ana = dnew(GN);
    for (int i = 0; i < GN; i++) ana[i] = g[i];
    fd_check("gelu dinp (over garbage)", gelu_obj, &c, c.inp, ana, NULL, 0);

    /* in place: dinp == dout */
    vkt_gelu_backward(be, dout.p, c.inp.p, dout.p, GN);
    float *gi = down_new(dout);
    vkt_test_close("gelu_backward in place (dinp == dout)", gi, g, GN, 1e-6, 1e-3);
    printf("  bwd gelu_backward in place equals out of place: %s\n",
           bits_equal(gi, g, GN) ? "bitwise" : "within 1e-6");

    free(x), free(w), free(out), free(g), free(ana), free(gi);
    tfree(c.out), tfree(c.inp), tfree(dinp), tfree(dout);
}

struct res_ctx {
    tensor out, a, b;
    const float *w;
};
static double res_obj(void *p) {
    struct res_ctx *c = p;
    vkt_residual_forward(be, c->out.p, c->a.p, c->b.p, GN);
    return project(c->out, c->w);
}

static void test_residual(void) {
    printf("residual (n=%d)\n", GN);
    struct res_ctx c;
    c.out = tnew("res.out", GN), c.a = tnew("res.a", GN), c.b = tnew("res.b", GN);
    float *a = hrand(GN, 2), *b = hrand(GN, 2), *w = hrand(GN, 1), *want = hnew(GN);
    c.w = w;
    for (int i = 0; i < GN; i++) want[i] = a[i] + b[i];
    up(c.a, a), up(c.b, b), tset(c.out, NAN);
    vkt_residual_forward(be, c.out.p, c.a.p, c.b.p, GN);
    float *out = down_new(c.out);
    CHECK(bits_equal(out, want, GN), "residual_forward: out != a + b (float)");
    printf("  fwd residual_forward == a + b bitwise: %s\n", bits_equal(out, want, GN) ? "yes" : "NO");
    /* its backward is the identity: d/da = d/db = dout = w */
    double *ana = dnew(GN);
    for (int i = 0; i < GN; i++) ana[i] = w[i];
    fd_check("residual d/da (identity)", res_obj, &c, c.a, ana, NULL, 0);
    fd_check("residual d/db (identity)", res_obj, &c, c.b, ana, NULL, 0);
    free(a), free(b), free(w), free(want), free(out), free(ana);
    tfree(c.out), tfree(c.a), tfree(c.b);
}

/* ================================== softmax cross-entropy ================================== */
enum { XN = 7, XV = 11, XVP = 16 };
static const float XSCALE = 0.37f;

struct xent_ctx {
    tensor losses, logits, targets;
};
/* objective grad_scale * sum(losses): its gradient is exactly what want_grad writes */
static double xent_obj(void *p) {
    struct xent_ctx *c = p;
    vkt_softmax_xent(be, c->losses.p, c->logits.p, c->targets.p, XN, XV, XVP, XSCALE, 0);
    float l[XN];
    down(l, c->losses);
    double f = 0;
    for (int i = 0; i < XN; i++) f += l[i];
    return XSCALE * f;
}

static void test_softmax_xent(void) {
    printf("softmax_xent (N=%d V=%d Vp=%d, grad_scale=%g)\n", XN, XV, XVP, XSCALE);
    const int32_t tg[XN] = {3, 0, 10, -1, 7, 3, 5}; /* row 3 is ignored */
    struct xent_ctx c;
    c.losses = tnew("xent.losses", XN);
    c.logits = tnew("xent.logits", XN * XVP);
    c.targets = tnew("xent.targets", XN);
    float *lg = hnew(XN * XVP);
    for (int r = 0; r < XN; r++)
        for (int j = 0; j < XVP; j++) /* padded columns huge: they must be ignored */
            lg[r * XVP + j] = j < XV ? 3.0f * rnd() : 1e4f;
    up(c.logits, lg), up(c.targets, tg), tset(c.losses, NAN);

    double hl[XN], *hg = dnew(XN * XVP);
    for (int r = 0; r < XN; r++) {
        double mx = -INFINITY, s = 0;
        for (int j = 0; j < XV; j++) mx = fmax(mx, lg[r * XVP + j]);
        for (int j = 0; j < XV; j++) s += exp(lg[r * XVP + j] - mx);
        hl[r] = tg[r] < 0 ? 0.0 : log(s) + mx - lg[r * XVP + tg[r]];
        for (int j = 0; j < XV; j++)
            hg[r * XVP + j] = tg[r] < 0 ? 0.0
                                        : (exp(lg[r * XVP + j] - mx) / s - (j == tg[r])) * XSCALE;
    }

    /* without want_grad: losses only, logits untouched */
    vkt_softmax_xent(be, c.losses.p, c.logits.p, c.targets.p, XN, XV, XVP, XSCALE, 0);
    float l1[XN];
    down(l1, c.losses);
    float *lg_after = down_new(c.logits);
    close_d("softmax_xent losses", l1, hl, XN, 1e-5, 1e-2);
    CHECK(l1[3] == 0.0f, "softmax_xent: target -1 gives loss %g, want 0", l1[3]);
    CHECK(bits_equal(lg_after, lg, XN * XVP), "softmax_xent: want_grad=0 modified the logits");

    /* padded columns do not affect the loss: other pad values, bit-identical losses */
    float *lg2 = hnew(XN * XVP);
    memcpy(lg2, lg, XN * XVP * sizeof(float));
    for (int r = 0; r < XN; r++)
        for (int j = XV; j < XVP; j++) lg2[r * XVP + j] = (j & 1) ? -1e4f : 0.5f * j;
    up(c.logits, lg2);
    vkt_softmax_xent(be, c.losses.p, c.logits.p, c.targets.p, XN, XV, XVP, XSCALE, 0);
    float l2[XN];
    down(l2, c.losses);
    CHECK(bits_equal(l1, l2, XN), "softmax_xent: padded logit columns change the losses");

    /* with want_grad: dlogits in place */
    up(c.logits, lg), tset(c.losses, NAN);
    vkt_softmax_xent(be, c.losses.p, c.logits.p, c.targets.p, XN, XV, XVP, XSCALE, 1);
    float l3[XN], *g = down_new(c.logits);
    down(l3, c.losses);
    close_d("softmax_xent losses (want_grad)", l3, hl, XN, 1e-5, 1e-2);
    close_d("softmax_xent dlogits", g, hg, XN * XVP, 1e-4, 1e-2);
    int pad_zero = 1, ign_zero = 1;
    for (int r = 0; r < XN; r++)
        for (int j = 0; j < XVP; j++) {
            if (j >= XV && g[r * XVP + j] != 0.0f) pad_zero = 0;
            if (tg[r] < 0 && g[r * XVP + j] != 0.0f) ign_zero = 0;
        }
    CHECK(pad_zero, "softmax_xent: padded columns of dlogits are not 0");
    CHECK(ign_zero, "softmax_xent: the row with target -1 has a nonzero gradient");
    printf("  bwd softmax_xent padded dlogits == 0: %s, ignored row == 0: %s\n",
           pad_zero ? "yes" : "NO", ign_zero ? "yes" : "NO");

    /* finite differences on every logit, padded ones included (gradient 0 there) */
    up(c.logits, lg);
    double *ana = dnew(XN * XVP);
    for (int i = 0; i < XN * XVP; i++) ana[i] = g[i];
    fd_check("softmax_xent dlogits (incl. pad, ignored row)", xent_obj, &c, c.logits, ana, NULL,
             0);

    free(lg), free(hg), free(lg_after), free(lg2), free(g), free(ana);
    tfree(c.losses), tfree(c.logits), tfree(c.targets);
}

/* ================================== optimizer and reductions =============================== */
enum { AN = 29 };

static void test_adamw(void) {
    vkt_adamw_args args = {.lr = 3e-3f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f,
                           .weight_decay = 0.1f, .grad_scale = 0.5f, .t = 0};
    printf("adamw (n=%d, lr=%g b1=%g b2=%g eps=%g wd=%g grad_scale=%g, t=1..3)\n", AN, args.lr,
           args.beta1, args.beta2, args.eps, args.weight_decay, args.grad_scale);
    tensor p = tnew("adamw.params", AN), gr = tnew("adamw.grads", AN), m = tnew("adamw.m", AN),
           v = tnew("adamw.v", AN);
    float *hp = hrand(AN, 1);
    double dp[AN], dm[AN] = {0}, dv[AN] = {0};
    for (int i = 0; i < AN; i++) dp[i] = hp[i];
    up(p, hp), tset(m, 0), tset(v, 0);
    for (int t = 1; t <= 3; t++) {
        float *g = hrand(AN, 1);
        up(gr, g);
        args.t = t;
        vkt_adamw(be, p.p, gr.p, m.p, v.p, AN, &args);
        const double b1 = args.beta1, b2 = args.beta2;
        for (int i = 0; i < AN; i++) {
            double gi = (double)g[i] * args.grad_scale;
            dm[i] = b1 * dm[i] + (1 - b1) * gi;
            dv[i] = b2 * dv[i] + (1 - b2) * gi * gi;
            double mh = dm[i] / (1 - pow(b1, t)), vh = dv[i] / (1 - pow(b2, t));
            dp[i] -= args.lr * (mh / (sqrt(vh) + args.eps) + args.weight_decay * dp[i]);
        }
        float *gp = down_new(p), *gm = down_new(m), *gv = down_new(v);
        char what[64];
        /* p moves by ~lr per step on O(1) values: rtol 1e-5 resolves the update to ~1e-3 of
         * itself (weight decay alone is 3e-4 of p); m and v are O(ulp)-accurate but can cancel,
         * hence a floor of 1% of their max */
        snprintf(what, sizeof what, "adamw params t=%d", t);
        close_d(what, gp, dp, AN, 1e-5, 1e-2);
        snprintf(what, sizeof what, "adamw m t=%d", t);
        close_d(what, gm, dm, AN, 1e-4, 1e-2);
        snprintf(what, sizeof what, "adamw v t=%d", t);
        close_d(what, gv, dv, AN, 1e-4, 1e-2);
        free(g), free(gp), free(gm), free(gv);
    }
    free(hp);
    tfree(p), tfree(gr), tfree(m), tfree(v);
}

/* Clipping decided on the device: a gradient norm above max_norm scales the update as
 * vkt_clip_factor says; a non-finite norm^2 leaves params, m and v untouched. */
static void test_adamw_clip_skip(void) {
    printf("adamw clip / skip (n=%d)\n", AN);
    tensor p = tnew("clip.params", AN), gr = tnew("clip.grads", AN), m = tnew("clip.m", AN),
           v = tnew("clip.v", AN), ns = tnew("clip.norm_sq", 1);
    tensor p2 = tnew("clip.params2", AN), m2 = tnew("clip.m2", AN), v2 = tnew("clip.v2", AN);
    float *hp = hrand(AN, 1), *g = hrand(AN, 1);
    double ss = 0;
    for (int i = 0; i < AN; i++) ss += (double)g[i] * g[i];
    float norm_sq = (float)ss;
    /* with grad_scale 0.5 the norm is 0.5 sqrt(ss); clip it to a quarter of that */
    float max_norm = 0.125f * sqrtf(norm_sq);
    vkt_adamw_args a = {.lr = 3e-3f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f,
                        .weight_decay = 0.1f, .grad_scale = 0.5f, .t = 1, .norm_sq = ns.p,
                        .max_norm = max_norm};
    up(p, hp), up(p2, hp), up(gr, g), tset(m, 0), tset(v, 0), tset(m2, 0), tset(v2, 0);
    up(ns, &norm_sq);
    vkt_adamw(be, p.p, gr.p, m.p, v.p, AN, &a);
    /* the same update without device clipping, the factor (0.25) folded into grad_scale */
    vkt_adamw_args b = a;
    b.norm_sq = VKT_NULL_PTR;
    b.grad_scale = 0.5f * 0.25f;
    vkt_adamw(be, p2.p, gr.p, m2.p, v2.p, AN, &b);
    float *gm = down_new(m), *gm2 = down_new(m2);
    vkt_test_close("adamw clipped m vs grad_scale * 0.25", gm, gm2, AN, 1e-6, 0);
    /* below the limit nothing changes */
    float big = 1e9f;
    a.max_norm = big, b.grad_scale = 0.5f;
    up(p, hp), up(p2, hp), tset(m, 0), tset(v, 0), tset(m2, 0), tset(v2, 0);
    vkt_adamw(be, p.p, gr.p, m.p, v.p, AN, &a);
    vkt_adamw(be, p2.p, gr.p, m2.p, v2.p, AN, &b);
    free(gm), free(gm2);
    gm = down_new(p), gm2 = down_new(p2);
    CHECK(bits_equal(gm, gm2, AN), "adamw: a norm below max_norm changed the update");
    /* inf or NaN norm: skipped */
    float bad[2] = {INFINITY, NAN};
    for (int k = 0; k < 2; k++) {
        up(ns, &bad[k]);
        vkt_adamw(be, p.p, gr.p, m.p, v.p, AN, &a);
        float *after = down_new(p);
        CHECK(bits_equal(after, gm, AN), "adamw with norm^2 = %g changed the parameters", bad[k]);
        free(after);
    }
    printf("  clip factor applied on the device; inf/NaN norm skips the update\n");
    free(hp), free(g), free(gm), free(gm2);
    tfree(p), tfree(gr), tfree(m), tfree(v), tfree(ns), tfree(p2), tfree(m2), tfree(v2);
}

static void test_sumsq_scale(void) {
    enum { SN = 1237 };
    printf("sumsq / scale (n=%d)\n", SN);
    tensor x = tnew("sumsq.x", SN), out = tnew("sumsq.out", 3);
    float *hx = hrand(SN, 2);
    float o3[3] = {5.0f, NAN, 6.0f};
    up(x, hx), up(out, o3);
    vkt_sumsq(be, vkt_ptr_addf(out.p, 1), x.p, SN);
    down(o3, out);
    double s = 0;
    for (int i = 0; i < SN; i++) s += (double)hx[i] * hx[i];
    /* float recursive summation of positive terms: relative error <= (n-1) u = 7.4e-5 */
    CHECK(fabs(o3[1] - s) <= 1e-4 * s, "sumsq = %.9g, want %.9g", o3[1], s);
    CHECK(o3[0] == 5.0f && o3[2] == 6.0f, "sumsq wrote next to its one-float output");
    printf("  fwd sumsq %.7g vs host %.7g (rel err %.1e)\n", o3[1], s, fabs(o3[1] - s) / s);

    /* sum_into accumulates: out += scale * sum(x) */
    float acc[3] = {2.0f, 0.0f, 0.0f};
    up(out, acc);
    vkt_sum_into(be, out.p, x.p, SN, 0.25f);
    vkt_sum_into(be, out.p, x.p, SN, 0.25f);
    down(o3, out);
    double sx = 0;
    for (int i = 0; i < SN; i++) sx += hx[i];
    double want_acc = 2.0 + 0.5 * sx;
    CHECK(fabs(o3[0] - want_acc) <= 1e-5 * fabs(want_acc) + 1e-6, "sum_into = %.9g, want %.9g",
          o3[0], want_acc);
    printf("  fwd sum_into %.7g vs host %.7g\n", o3[0], want_acc);

    const float sc = -0.3f;
    vkt_scale(be, x.p, sc, SN);
    float *gx = down_new(x), *want = hnew(SN);
    for (int i = 0; i < SN; i++) want[i] = hx[i] * sc;
    CHECK(bits_equal(gx, want, SN), "scale: x * s differs from the float product");
    printf("  fwd scale == float x*s bitwise: %s\n", bits_equal(gx, want, SN) ? "yes" : "NO");
    free(hx), free(gx), free(want);
    tfree(x), tfree(out);
}

int main(void) {
    char err[512] = "";
    int dev = vkt_device_resolve("cpu:0", err, sizeof err);
    if (dev < 0) {
        fprintf(stderr, "test_ops_grad: no cpu device: %s\n", err);
        return 1;
    }
    be = vkt_backend_create(dev, err, sizeof err);
    if (!be) {
        fprintf(stderr, "test_ops_grad: cpu backend: %s\n", err);
        return 1;
    }
    test_encoder();
    test_layernorm();
    test_matmul_forward();
    test_matmul_grad();
    test_linear();
    test_attention();
    test_gelu();
    test_residual();
    test_softmax_xent();
    test_adamw();
    test_adamw_clip_skip();
    test_sumsq_scale();
    vkt_backend_destroy(be);
    return vkt_test_finish("test_ops_grad");
}
