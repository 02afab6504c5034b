/* GPT-2: parameter layout, activation layout, and forward/backward as a readable sequence of
 * backend ops (the structure of llm.c's gpt2_forward / gpt2_backward). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/rng.h"
#include "vktrain/model.h"

int vkt_padded_vocab(int vocab_size) { return (vocab_size + 63) / 64 * 64; }

size_t vkt_gpt2_param_layout(const vkt_gpt2_shape *s, vkt_param_tensor t[VKT_NUM_PARAM_TENSORS]) {
    size_t Vp = s->padded_vocab_size, C = s->channels, L = s->num_layers, maxT = s->max_seq_len;
    const struct {
        const char *name;
        size_t size;
        int decay;
    } spec[VKT_NUM_PARAM_TENSORS] = {
        {"wte", Vp * C, 1},          {"wpe", maxT * C, 1},        {"ln1w", L * C, 0},
        {"ln1b", L * C, 0},          {"qkvw", L * 3 * C * C, 1},  {"qkvb", L * 3 * C, 0},
        {"attprojw", L * C * C, 1},  {"attprojb", L * C, 0},      {"ln2w", L * C, 0},
        {"ln2b", L * C, 0},          {"fcw", L * 4 * C * C, 1},   {"fcb", L * 4 * C, 0},
        {"fcprojw", L * C * 4 * C, 1}, {"fcprojb", L * C, 0},     {"lnfw", C, 0},
        {"lnfb", C, 0},
    };
    size_t off = 0;
    for (int i = 0; i < VKT_NUM_PARAM_TENSORS; i++) {
        t[i].name = spec[i].name;
        t[i].offset = off;
        t[i].size = spec[i].size;
        t[i].decay = spec[i].decay;
        off += spec[i].size;
    }
    return off;
}

/* Bounds far beyond any model this trainer can hold, so that every product below stays exact
 * in 64 bits: a file or config that exceeds them is damaged or hostile, not big. */
#define MAX_SEQ_LEN (1 << 24)
#define MAX_VOCAB 65536 /* tokens are uint16 */
#define MAX_LAYERS (1 << 16)
#define MAX_CHANNELS (1 << 16)
#define MAX_PARAMS (1ull << 44)

static int shape_fail(char *err, size_t errlen, const char *fmt, int v, int w) {
    snprintf(err, errlen, fmt, v, w);
    return 2;
}

int vkt_gpt2_shape_check(const vkt_gpt2_shape *s, char *err, size_t errlen) {
    const struct {
        const char *name;
        int v, max;
    } dims[] = {
        {"block_size (max sequence length)", s->max_seq_len, MAX_SEQ_LEN},
        {"vocab_size", s->vocab_size, MAX_VOCAB},
        {"n_layer", s->num_layers, MAX_LAYERS},
        {"n_head", s->num_heads, MAX_CHANNELS},
        {"n_embd (channels)", s->channels, MAX_CHANNELS},
    };
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i].v < 1 || dims[i].v > dims[i].max) {
            snprintf(err, errlen, "%s = %d is outside [1, %d]", dims[i].name, dims[i].v,
                     dims[i].max);
            return 2;
        }
    if (s->channels % s->num_heads)
        return shape_fail(err, errlen, "n_embd (channels) = %d is not divisible by n_head = %d",
                          s->channels, s->num_heads);
    if (s->padded_vocab_size != vkt_padded_vocab(s->vocab_size)) {
        snprintf(err, errlen,
                 "padded_vocab_size = %d, but vocab_size = %d pads to %d (a multiple of 64)",
                 s->padded_vocab_size, s->vocab_size, vkt_padded_vocab(s->vocab_size));
        return 2;
    }
    /* within the bounds above: Vp C <= 2^32, maxT C <= 2^40, L 12 C^2 < 2^52 */
    uint64_t C = (uint64_t)s->channels, L = (uint64_t)s->num_layers;
    uint64_t n = (uint64_t)s->padded_vocab_size * C + (uint64_t)s->max_seq_len * C +
                 L * (12 * C * C + 13 * C) + 2 * C;
    if (n > MAX_PARAMS) {
        snprintf(err, errlen, "the shape has %llu parameters, more than the %llu this vktrain "
                 "accepts", (unsigned long long)n, (unsigned long long)MAX_PARAMS);
        return 2;
    }
    return 0;
}

/* NaN and both infinities: an all-ones exponent. A bit test, so -ffast-math cannot fold it. */
static int nonfinite(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return (u & 0x7f800000u) == 0x7f800000u;
}

int vkt_params_first_nonfinite(const vkt_gpt2_shape *s, const float *params, size_t *elem) {
    vkt_param_tensor t[VKT_NUM_PARAM_TENSORS];
    vkt_gpt2_param_layout(s, t);
    for (int i = 0; i < VKT_NUM_PARAM_TENSORS; i++) {
        const float *x = params + t[i].offset;
        for (size_t j = 0; j < t[i].size; j++)
            if (nonfinite(x[j])) {
                if (elem) *elem = j;
                return i;
            }
    }
    return -1;
}

enum { WTE, WPE, LN1W, LN1B, QKVW, QKVB, ATTPROJW, ATTPROJB, LN2W, LN2B, FCW, FCB, FCPROJW,
       FCPROJB, LNFW, LNFB };

/* Activations of one forward pass (B x T tokens), each a float count; per-layer ones are
 * stacked L times. Laid out back to back in one buffer, in this order. */
typedef struct act_layout {
    size_t encoded, ln1, ln1_mean, ln1_rstd, qkv, atty, att_lse, attproj, residual2, ln2,
        ln2_mean, ln2_rstd, fch, fch_gelu, fcproj, residual3, lnf, lnf_mean, lnf_rstd, logits,
        losses;
} act_layout;
#define NUM_ACTS (sizeof(act_layout) / sizeof(size_t))

static act_layout act_sizes(const vkt_gpt2_shape *s, int B, int T) {
    size_t BT = (size_t)B * T, C = s->channels, L = s->num_layers, NH = s->num_heads;
    act_layout a = {
        .encoded = BT * C,      .ln1 = L * BT * C,       .ln1_mean = L * BT,
        .ln1_rstd = L * BT,     .qkv = L * BT * 3 * C,   .atty = L * BT * C,
        .att_lse = L * B * NH * T, .attproj = L * BT * C, .residual2 = L * BT * C,
        .ln2 = L * BT * C,      .ln2_mean = L * BT,      .ln2_rstd = L * BT,
        .fch = L * BT * 4 * C,  .fch_gelu = L * BT * 4 * C, .fcproj = L * BT * C,
        .residual3 = L * BT * C, .lnf = BT * C,          .lnf_mean = BT,
        .lnf_rstd = BT,         .logits = BT * s->padded_vocab_size, .losses = BT,
    };
    return a;
}

static size_t act_total(const act_layout *a) {
    const size_t *f = (const size_t *)a;
    size_t n = 0;
    for (size_t i = 0; i < NUM_ACTS; i++) n += f[i];
    return n;
}

/* Gradient scratch for backward, reused by every layer (see vkt_model_backward). */
static size_t grad_scratch_floats(const vkt_gpt2_shape *s, int B, int T) {
    size_t BT = (size_t)B * T, C = s->channels;
    return BT * C /* dres */ + BT * C /* dbuf */ + BT * 3 * C /* dqkv */ + BT * 4 * C /* dfch */;
}

/* In double so that absurd shapes give a huge number instead of wrapping around: the
 * trainer compares it with the device's memory before allocating anything. Mirrors
 * vkt_gpt2_param_layout, act_sizes and grad_scratch_floats. */
double vkt_gpt2_memory_bytes(const vkt_gpt2_shape *s, int B, int T) {
    double C = s->channels, L = s->num_layers, Vp = s->padded_vocab_size, NH = s->num_heads;
    double BT = (double)B * T;
    double params = Vp * C + (double)s->max_seq_len * C + L * (12 * C * C + 13 * C) + 2 * C;
    double acts = BT * C * 2 + BT * 3 + BT * Vp +
                  L * (18 * BT * C + 4 * BT + (double)B * NH * T);
    double scratch = 9 * BT * C;
    return 4.0 * (4 * params + acts + scratch) + 2 * 4.0 * BT + 4.0 /* loss scalar */;
}

struct vkt_model {
    vkt_backend *be;
    vkt_gpt2_shape shape;
    vkt_param_tensor tensors[VKT_NUM_PARAM_TENSORS];
    size_t num_params;
    int max_B, max_T;
    vkt_buf *params, *grads, *adam_m, *adam_v;
    vkt_buf *acts;    /* forward activations, laid out by act_layout for the current B, T */
    vkt_buf *scratch; /* backward scratch */
    vkt_buf *tokens, *targets; /* int32 (B,T) */
    vkt_buf *loss;             /* one float: vkt_model_forward's mean loss */
    size_t device_bytes; /* all of the above buffers */
};

vkt_model *vkt_model_create(vkt_backend *be, const vkt_gpt2_shape *s, int max_B, int max_T,
                            char *err, size_t errlen) {
    vkt_model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of host memory");
        return NULL;
    }
    m->be = be;
    m->shape = *s;
    m->max_B = max_B;
    m->max_T = max_T;
    m->num_params = vkt_gpt2_param_layout(s, m->tensors);
    act_layout a = act_sizes(s, max_B, max_T);
    size_t pbytes = m->num_params * sizeof(float), tbytes = sizeof(int32_t) * max_B * max_T;
    if (!(m->params = vkt_alloc(be, pbytes, err, errlen)) ||
        !(m->grads = vkt_alloc(be, pbytes, err, errlen)) ||
        !(m->adam_m = vkt_alloc(be, pbytes, err, errlen)) ||
        !(m->adam_v = vkt_alloc(be, pbytes, err, errlen)) ||
        !(m->acts = vkt_alloc(be, act_total(&a) * sizeof(float), err, errlen)) ||
        !(m->scratch = vkt_alloc(be, grad_scratch_floats(s, max_B, max_T) * sizeof(float), err,
                                 errlen)) ||
        !(m->tokens = vkt_alloc(be, tbytes, err, errlen)) ||
        !(m->targets = vkt_alloc(be, tbytes, err, errlen)) ||
        !(m->loss = vkt_alloc(be, sizeof(float), err, errlen))) {
        vkt_model_destroy(m);
        return NULL;
    }
    m->device_bytes = 4 * pbytes + act_total(&a) * sizeof(float) +
                      grad_scratch_floats(s, max_B, max_T) * sizeof(float) + 2 * tbytes + sizeof(float);
    vkt_fill(be, vkt_at(m->grads, 0), 0, m->num_params);
    vkt_fill(be, vkt_at(m->adam_m, 0), 0, m->num_params);
    vkt_fill(be, vkt_at(m->adam_v, 0), 0, m->num_params);
    return m;
}

void vkt_model_destroy(vkt_model *m) {
    if (!m) return;
    vkt_buf *bufs[] = {m->params, m->grads, m->adam_m, m->adam_v, m->acts, m->scratch,
                       m->tokens, m->targets, m->loss};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) vkt_free(m->be, bufs[i]);
    free(m);
}

const vkt_gpt2_shape *vkt_model_shape(const vkt_model *m) { return &m->shape; }
size_t vkt_model_num_params(const vkt_model *m) { return m->num_params; }
size_t vkt_model_device_bytes(const vkt_model *m) { return m->device_bytes; }
const vkt_param_tensor *vkt_model_tensors(const vkt_model *m) { return m->tensors; }
vkt_backend *vkt_model_backend(const vkt_model *m) { return m->be; }
vkt_buf *vkt_model_params(vkt_model *m) { return m->params; }
vkt_buf *vkt_model_grads(vkt_model *m) { return m->grads; }
vkt_buf *vkt_model_adam_m(vkt_model *m) { return m->adam_m; }
vkt_buf *vkt_model_adam_v(vkt_model *m) { return m->adam_v; }

int vkt_model_init_random(vkt_model *m, uint64_t seed) {
    float *p = calloc(m->num_params, sizeof(float));
    if (!p) return -1; /* the host's memory, not the device's: the caller says so */
    vkt_rng rng;
    vkt_rng_seed(&rng, seed);
    double resid_std = 0.02 / sqrt(2.0 * m->shape.num_layers);
    for (int i = 0; i < VKT_NUM_PARAM_TENSORS; i++) {
        const vkt_param_tensor *t = &m->tensors[i];
        float *x = p + t->offset;
        if (i == LN1W || i == LN2W || i == LNFW) {
            for (size_t j = 0; j < t->size; j++) x[j] = 1.0f;
        } else if (t->decay) { /* matrices; biases stay 0 */
            double std = (i == ATTPROJW || i == FCPROJW) ? resid_std : 0.02;
            size_t n = t->size;
            if (i == WTE) n = (size_t)m->shape.vocab_size * m->shape.channels; /* pad rows 0 */
            for (size_t j = 0; j < n; j++) x[j] = (float)(std * vkt_rng_normal(&rng));
        }
    }
    vkt_model_set_params(m, p);
    free(p);
    return 0;
}

void vkt_model_get_params(vkt_model *m, float *dst) {
    vkt_download(m->be, dst, vkt_at(m->params, 0), m->num_params * sizeof(float));
}
void vkt_model_set_params(vkt_model *m, const float *src) {
    vkt_upload(m->be, vkt_at(m->params, 0), src, m->num_params * sizeof(float));
}
void vkt_model_zero_grad(vkt_model *m) { vkt_fill(m->be, vkt_at(m->grads, 0), 0, m->num_params); }

/* Pointers into the activation buffer for a B x T batch. */
typedef struct acts {
    vkt_ptr encoded, ln1, ln1_mean, ln1_rstd, qkv, atty, att_lse, attproj, residual2, ln2,
        ln2_mean, ln2_rstd, fch, fch_gelu, fcproj, residual3, lnf, lnf_mean, lnf_rstd, logits,
        losses;
} acts;

static acts act_ptrs(vkt_model *m, int B, int T, act_layout *sizes) {
    *sizes = act_sizes(&m->shape, B, T);
    acts a;
    vkt_ptr *p = (vkt_ptr *)&a;
    const size_t *f = (const size_t *)sizes;
    size_t off = 0;
    for (size_t i = 0; i < NUM_ACTS; i++) {
        p[i] = vkt_at(m->acts, off * sizeof(float));
        off += f[i];
    }
    return a;
}

/* Layer l's slice of a stacked (per-layer) activation or parameter. */
static vkt_ptr layer(vkt_ptr stacked, size_t total, int L, int l) {
    return vkt_ptr_addf(stacked, total / L * l);
}
/* Layer l's activations; residual is the layer's input (the embedding for layer 0). */
typedef struct layer_acts {
    vkt_ptr residual, ln1, ln1_mean, ln1_rstd, qkv, atty, att_lse, attproj, residual2, ln2,
        ln2_mean, ln2_rstd, fch, fch_gelu, fcproj, residual3;
} layer_acts;

static layer_acts layer_of(const acts *a, const act_layout *sz, int L, int l) {
    layer_acts x = {
        .residual = l == 0 ? a->encoded : layer(a->residual3, sz->residual3, L, l - 1),
        .ln1 = layer(a->ln1, sz->ln1, L, l),
        .ln1_mean = layer(a->ln1_mean, sz->ln1_mean, L, l),
        .ln1_rstd = layer(a->ln1_rstd, sz->ln1_rstd, L, l),
        .qkv = layer(a->qkv, sz->qkv, L, l),
        .atty = layer(a->atty, sz->atty, L, l),
        .att_lse = layer(a->att_lse, sz->att_lse, L, l),
        .attproj = layer(a->attproj, sz->attproj, L, l),
        .residual2 = layer(a->residual2, sz->residual2, L, l),
        .ln2 = layer(a->ln2, sz->ln2, L, l),
        .ln2_mean = layer(a->ln2_mean, sz->ln2_mean, L, l),
        .ln2_rstd = layer(a->ln2_rstd, sz->ln2_rstd, L, l),
        .fch = layer(a->fch, sz->fch, L, l),
        .fch_gelu = layer(a->fch_gelu, sz->fch_gelu, L, l),
        .fcproj = layer(a->fcproj, sz->fcproj, L, l),
        .residual3 = layer(a->residual3, sz->residual3, L, l),
    };
    return x;
}

static vkt_ptr param(vkt_model *m, vkt_buf *buf, int i, int l) {
    const vkt_param_tensor *t = &m->tensors[i];
    return vkt_at(buf, (t->offset + t->size / m->shape.num_layers * l) * sizeof(float));
}
static vkt_ptr param0(vkt_model *m, vkt_buf *buf, int i) {
    return vkt_at(buf, m->tensors[i].offset * sizeof(float));
}

/* A linear layer on N rows: out(N,OC) = inp(N,IC) . weight(OC,IC)^T + bias(OC). */
static void linear_forward(vkt_backend *be, vkt_ptr out, vkt_ptr inp, vkt_ptr weight,
                           vkt_ptr bias, int N, int IC, int OC) {
    vkt_matmul(be, out, inp, weight, bias, N, OC, IC, 0, 1, 1.0f, 0.0f);
}

/* Its backward: dinp = dout . weight (overwritten), dweight += dout^T . inp, dbias += column
 * sums of dout (skipped when dbias is VKT_NULL_PTR). */
static void linear_backward(vkt_backend *be, vkt_ptr dinp, vkt_ptr dweight, vkt_ptr dbias,
                            vkt_ptr dout, vkt_ptr inp, vkt_ptr weight, int N, int IC, int OC) {
    vkt_matmul(be, dinp, dout, weight, VKT_NULL_PTR, N, IC, OC, 0, 0, 1.0f, 0.0f);
    vkt_matmul(be, dweight, dout, inp, VKT_NULL_PTR, OC, IC, N, 1, 0, 1.0f, 1.0f);
    if (dbias.buf) vkt_bias_backward(be, dbias, dout, N, OC);
}

void vkt_model_forward_acc(vkt_model *m, const int32_t *tokens, const int32_t *targets, int B,
                           int T, float grad_scale, int want_grad, vkt_ptr loss_acc,
                           float weight) {
    if (B > m->max_B || T > m->max_T || T > m->shape.max_seq_len) { /* a caller's bug */
        fprintf(stderr, "vktrain: internal error at %s:%d: batch %dx%d exceeds the model's %dx%d\n",
                __FILE__, __LINE__, B, T, m->max_B, m->max_T);
        abort();
    }
    vkt_backend *be = m->be;
    int L = m->shape.num_layers, C = m->shape.channels, NH = m->shape.num_heads;
    int V = m->shape.vocab_size, Vp = m->shape.padded_vocab_size, BT = B * T;
    act_layout sz;
    acts a = act_ptrs(m, B, T, &sz);
    vkt_buf *P = m->params;

    vkt_upload(be, vkt_at(m->tokens, 0), tokens, sizeof(int32_t) * BT);
    vkt_encoder_forward(be, a.encoded, vkt_at(m->tokens, 0), param0(m, P, WTE), param0(m, P, WPE),
                        B, T, C);
    for (int l = 0; l < L; l++) {
        layer_acts x = layer_of(&a, &sz, L, l);

        vkt_layernorm_forward(be, x.ln1, x.ln1_mean, x.ln1_rstd, x.residual, param(m, P, LN1W, l),
                              param(m, P, LN1B, l), BT, C);
        linear_forward(be, x.qkv, x.ln1, param(m, P, QKVW, l), param(m, P, QKVB, l), BT, C, 3 * C);
        vkt_attention_forward(be, x.atty, x.att_lse, x.qkv, B, T, C, NH);
        linear_forward(be, x.attproj, x.atty, param(m, P, ATTPROJW, l), param(m, P, ATTPROJB, l),
                       BT, C, C);
        vkt_residual_forward(be, x.residual2, x.residual, x.attproj, (size_t)BT * C);
        vkt_layernorm_forward(be, x.ln2, x.ln2_mean, x.ln2_rstd, x.residual2, param(m, P, LN2W, l),
                              param(m, P, LN2B, l), BT, C);
        linear_forward(be, x.fch, x.ln2, param(m, P, FCW, l), param(m, P, FCB, l), BT, C, 4 * C);
        vkt_gelu_forward(be, x.fch_gelu, x.fch, (size_t)BT * 4 * C);
        linear_forward(be, x.fcproj, x.fch_gelu, param(m, P, FCPROJW, l),
                       param(m, P, FCPROJB, l), BT, 4 * C, C);
        vkt_residual_forward(be, x.residual3, x.residual2, x.fcproj, (size_t)BT * C);
    }
    vkt_ptr last = layer(a.residual3, sz.residual3, L, L - 1);
    vkt_layernorm_forward(be, a.lnf, a.lnf_mean, a.lnf_rstd, last, param0(m, P, LNFW),
                          param0(m, P, LNFB), BT, C);
    /* tied embedding: logits = lnf . wte^T over all Vp rows (padded rows are masked in the loss) */
    linear_forward(be, a.logits, a.lnf, param0(m, P, WTE), VKT_NULL_PTR, BT, C, Vp);
    if (!targets) return;

    vkt_upload(be, vkt_at(m->targets, 0), targets, sizeof(int32_t) * BT);
    vkt_softmax_xent(be, a.losses, a.logits, vkt_at(m->targets, 0), BT, V, Vp, grad_scale,
                     want_grad);
    /* the mean over counted positions (ignored targets have loss 0), added on the device */
    int counted = 0;
    for (int i = 0; i < BT; i++) counted += targets[i] >= 0;
    if (counted && loss_acc.buf) vkt_sum_into(be, loss_acc, a.losses, (size_t)BT, weight / counted);
}

float vkt_model_forward(vkt_model *m, const int32_t *tokens, const int32_t *targets, int B, int T,
                        float grad_scale, int want_grad) {
    float loss = 0;
    if (targets) vkt_fill(m->be, vkt_at(m->loss, 0), 0.0f, 1);
    vkt_model_forward_acc(m, tokens, targets, B, T, grad_scale, want_grad, vkt_at(m->loss, 0),
                          1.0f);
    if (targets) vkt_download(m->be, &loss, vkt_at(m->loss, 0), sizeof loss);
    return loss;
}

void vkt_model_get_logits(vkt_model *m, float *dst, int B, int T) {
    act_layout sz;
    acts a = act_ptrs(m, B, T, &sz);
    vkt_download(m->be, dst, a.logits, sz.logits * sizeof(float));
}

void vkt_model_get_logits_at(vkt_model *m, float *dst, int B, int T, int b, int t) {
    act_layout sz;
    acts a = act_ptrs(m, B, T, &sz);
    size_t Vp = (size_t)m->shape.padded_vocab_size;
    vkt_download(m->be, dst, vkt_ptr_addf(a.logits, ((size_t)b * T + t) * Vp), Vp * sizeof(float));
}

/* Backward of the last forward (which must have had want_grad). Activation gradients live in
 * four scratch tensors reused by every layer: dres carries the residual stream's gradient
 * (residual adds pass it through unchanged, so they need no op), dbuf the (B,T,C) gradient
 * entering a LayerNorm or attention, dqkv and dfch the wider ones. */
void vkt_model_backward(vkt_model *m, int B, int T) {
    vkt_backend *be = m->be;
    int L = m->shape.num_layers, C = m->shape.channels, NH = m->shape.num_heads;
    int Vp = m->shape.padded_vocab_size, BT = B * T;
    act_layout sz;
    acts a = act_ptrs(m, B, T, &sz);
    vkt_buf *P = m->params, *G = m->grads;
    vkt_ptr dres = vkt_at(m->scratch, 0), dbuf = vkt_ptr_addf(dres, (size_t)BT * C),
            dqkv = vkt_ptr_addf(dbuf, (size_t)BT * C),
            dfch = vkt_ptr_addf(dqkv, (size_t)BT * 3 * C);
    vkt_ptr dlogits = a.logits; /* softmax_xent left them there */

    vkt_fill(be, dres, 0.0f, (size_t)BT * C);
    linear_backward(be, dbuf, param0(m, G, WTE), VKT_NULL_PTR, dlogits, a.lnf, param0(m, P, WTE),
                    BT, C, Vp);
    vkt_layernorm_backward(be, dres, param0(m, G, LNFW), param0(m, G, LNFB), dbuf,
                           layer(a.residual3, sz.residual3, L, L - 1), param0(m, P, LNFW),
                           a.lnf_mean, a.lnf_rstd, BT, C);

    for (int l = L - 1; l >= 0; l--) {
        layer_acts x = layer_of(&a, &sz, L, l);

        /* MLP: dres is d(fcproj) and, through the residual add, d(residual2) */
        linear_backward(be, dfch, param(m, G, FCPROJW, l), param(m, G, FCPROJB, l), dres,
                        x.fch_gelu, param(m, P, FCPROJW, l), BT, 4 * C, C);
        vkt_gelu_backward(be, dfch, x.fch, dfch, (size_t)BT * 4 * C);
        linear_backward(be, dbuf, param(m, G, FCW, l), param(m, G, FCB, l), dfch, x.ln2,
                        param(m, P, FCW, l), BT, C, 4 * C);
        vkt_layernorm_backward(be, dres, param(m, G, LN2W, l), param(m, G, LN2B, l), dbuf,
                               x.residual2, param(m, P, LN2W, l), x.ln2_mean, x.ln2_rstd, BT, C);

        /* attention: dres is now d(residual2) = d(attproj) = d(residual) so far */
        linear_backward(be, dbuf, param(m, G, ATTPROJW, l), param(m, G, ATTPROJB, l), dres, x.atty,
                        param(m, P, ATTPROJW, l), BT, C, C);
        vkt_attention_backward(be, dqkv, dbuf, x.qkv, x.att_lse, B, T, C, NH);
        linear_backward(be, dbuf, param(m, G, QKVW, l), param(m, G, QKVB, l), dqkv, x.ln1,
                        param(m, P, QKVW, l), BT, C, 3 * C);
        vkt_layernorm_backward(be, dres, param(m, G, LN1W, l), param(m, G, LN1B, l), dbuf,
                               x.residual, param(m, P, LN1W, l), x.ln1_mean, x.ln1_rstd, BT, C);
    }
    vkt_encoder_backward(be, param0(m, G, WTE), param0(m, G, WPE), dres, vkt_at(m->tokens, 0), B,
                         T, C);
}
