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

/* ---- device buffers ----
 * Every buffer the model allocates, in one numbered table (buffer_spec): the parameters,
 * gradients and both AdamW moments (one contiguous buffer each: one optimizer dispatch, one
 * all-reduce), then each activation tensor in a buffer of its own (per layer for the layers'
 * ones), then the backward scratch and the inputs. One buffer per tensor keeps allocations
 * below what drivers allow for one (maxMemoryAllocationSize and maxBufferSize are 2-4 GiB on
 * AMD's, Intel's and CPU drivers; CL_DEVICE_MAX_MEM_ALLOC_SIZE likewise): all activations in
 * one buffer would be 6.9 GiB for GPT-2 124M at 8 x 1024 tokens. Buffers are sized for
 * max_B x max_T; a smaller batch uses the start of each. */

/* Activations outside the layers: the fields of struct acts, in order. */
enum { A_ENCODED, A_LNF, A_LNF_MEAN, A_LNF_RSTD, A_LOGITS, A_LOSSES, NUM_TOP_ACTS };
static const char *const top_act_names[NUM_TOP_ACTS] = {"encoded", "lnf", "lnf_mean",
                                                        "lnf_rstd", "logits", "losses"};
/* Each layer's activations: the fields of struct layer_acts after residual, in order. */
enum { A_LN1, A_LN1_MEAN, A_LN1_RSTD, A_QKV, A_ATTY, A_ATT_LSE, A_ATTPROJ, A_RESIDUAL2, A_LN2,
       A_LN2_MEAN, A_LN2_RSTD, A_FCH, A_FCH_GELU, A_FCPROJ, A_RESIDUAL3, NUM_LAYER_ACTS };
static const char *const layer_act_names[NUM_LAYER_ACTS] = {
    "ln1", "ln1_mean", "ln1_rstd", "qkv", "atty", "att_lse", "attproj", "residual2", "ln2",
    "ln2_mean", "ln2_rstd", "fch", "fch_gelu", "fcproj", "residual3"};
/* The backward's activation gradients (see vkt_model_backward), the inputs, the loss. */
enum { S_DRES, S_DBUF, S_DQKV, S_DFCH, S_TOKENS, S_TARGETS, S_LOSS, NUM_SCRATCH };
static const char *const scratch_names[NUM_SCRATCH] = {
    "dres (backward)", "dbuf (backward)", "dqkv (backward)", "dfch (backward)", "tokens",
    "targets", "loss"};

enum { BUF_PARAMS, BUF_GRADS, BUF_ADAM_M, BUF_ADAM_V, BUF_TOP };
#define BUF_LAYER(l, i) (BUF_TOP + NUM_TOP_ACTS + (l) * NUM_LAYER_ACTS + (i))
#define BUF_SCRATCH(L, i) (BUF_LAYER(L, 0) + (i)) /* L = the number of layers */
#define NUM_BUFS(L) BUF_SCRATCH(L, NUM_SCRATCH)

/* precision = fp16: the fp16 copies the matmuls read (docs/backends.md, "fp16 operands"),
 * after the fp32 table: the parameters (refreshed after every optimizer update), then the
 * activations that are matmul inputs (written right after the op that produces each): lnf,
 * and per layer ln1, atty, ln2 and fch_gelu. The fp32 originals stay (LayerNorm's and GELU's
 * backward read them; the master weights and the optimizer are fp32). */
enum { H_PARAMS, H_LNF, NUM_TOP_HALF };
static const char *const top_half_names[NUM_TOP_HALF] = {"parameters (fp16)", "lnf (fp16)"};
enum { H_LN1, H_ATTY, H_LN2, H_FCH_GELU, NUM_LAYER_HALF };
static const char *const layer_half_names[NUM_LAYER_HALF] = {"ln1 (fp16)", "atty (fp16)",
                                                             "ln2 (fp16)", "fch_gelu (fp16)"};
#define BUF_HALF(L, i) (NUM_BUFS(L) + (i))
#define BUF_HALF_LAYER(L, l, i) (BUF_HALF(L, NUM_TOP_HALF) + (l) * NUM_LAYER_HALF + (i))
#define NUM_BUFS_FP16(L) BUF_HALF_LAYER(L, L, 0)
static int num_bufs(int L, int fp16) { return fp16 ? NUM_BUFS_FP16(L) : NUM_BUFS(L); }

typedef struct buf_spec {
    vkt_mem_class cls;
    const char *name; /* within its class; NULL for the parameter-sized ones */
    int layer;        /* -1 when not a layer's */
    size_t bytes;
} buf_spec;

/* Buffer i of the table for batches of B x T; np = the parameter count. */
static buf_spec buffer_spec(const vkt_gpt2_shape *s, size_t np, int B, int T, int i) {
    size_t BT = (size_t)B * T, C = s->channels, NH = s->num_heads;
    int L = s->num_layers;
    buf_spec b = {VKT_MEM_PARAMS, NULL, -1, np};
    if (i < BUF_TOP) {
        static const char *const optim[] = {"AdamW m", "AdamW v"};
        b.cls = i == BUF_PARAMS ? VKT_MEM_PARAMS : i == BUF_GRADS ? VKT_MEM_GRADS : VKT_MEM_OPTIM;
        if (b.cls == VKT_MEM_OPTIM) b.name = optim[i - BUF_ADAM_M];
    } else if (i < BUF_LAYER(0, 0)) {
        const size_t n[NUM_TOP_ACTS] = {BT * C, BT * C, BT, BT, BT * s->padded_vocab_size, BT};
        b.cls = VKT_MEM_ACTS;
        b.name = top_act_names[i - BUF_TOP];
        b.bytes = n[i - BUF_TOP];
    } else if (i < BUF_SCRATCH(L, 0)) {
        const size_t n[NUM_LAYER_ACTS] = {BT * C,     BT,     BT,     3 * BT * C, BT * C,
                                          B * NH * T, BT * C, BT * C, BT * C,     BT,
                                          BT,         4 * BT * C, 4 * BT * C, BT * C, BT * C};
        int k = (i - BUF_LAYER(0, 0)) % NUM_LAYER_ACTS;
        b.cls = VKT_MEM_ACTS;
        b.name = layer_act_names[k];
        b.layer = (i - BUF_LAYER(0, 0)) / NUM_LAYER_ACTS;
        b.bytes = n[k];
    } else if (i < NUM_BUFS(L)) {
        const size_t n[NUM_SCRATCH] = {BT * C, BT * C, 3 * BT * C, 4 * BT * C, BT, BT, 1};
        b.cls = VKT_MEM_SCRATCH;
        b.name = scratch_names[i - BUF_SCRATCH(L, 0)];
        b.bytes = n[i - BUF_SCRATCH(L, 0)];
    } else { /* fp16 copies: halves, in whole 4-byte words */
        b.cls = VKT_MEM_FP16;
        if (i < BUF_HALF_LAYER(L, 0, 0)) {
            b.name = top_half_names[i - BUF_HALF(L, 0)];
            b.bytes = i == BUF_HALF(L, H_PARAMS) ? np : BT * C;
        } else {
            const size_t n[NUM_LAYER_HALF] = {BT * C, BT * C, BT * C, 4 * BT * C};
            int k = (i - BUF_HALF_LAYER(L, 0, 0)) % NUM_LAYER_HALF;
            b.name = layer_half_names[k];
            b.layer = (i - BUF_HALF_LAYER(L, 0, 0)) / NUM_LAYER_HALF;
            b.bytes = n[k];
        }
        b.bytes = (b.bytes + 1) / 2 * 4;
        return b;
    }
    b.bytes *= 4; /* floats, and int32 tokens */
    return b;
}

const char *vkt_mem_class_name(vkt_mem_class c) {
    static const char *const names[VKT_MEM_CLASSES] = {
        "parameters", "gradients", "optimizer", "activations", "scratch", "fp16 copies"};
    return (unsigned)c < VKT_MEM_CLASSES ? names[c] : "?";
}

/* "activations: fch (layer 3)", "optimizer: AdamW m", "parameters" */
static void spec_name(const buf_spec *b, char *out, size_t len) {
    int n = snprintf(out, len, "%s%s%s", vkt_mem_class_name(b->cls), b->name ? ": " : "",
                     b->name ? b->name : "");
    if (b->layer >= 0 && n >= 0 && (size_t)n < len)
        snprintf(out + n, len - (size_t)n, " (layer %d)", b->layer);
}

void vkt_gpt2_memory_plan(const vkt_gpt2_shape *s, int B, int T, int fp16,
                          vkt_model_memory *out) {
    vkt_param_tensor t[VKT_NUM_PARAM_TENSORS];
    size_t np = vkt_gpt2_param_layout(s, t);
    memset(out, 0, sizeof *out);
    out->buffers = num_bufs(s->num_layers, fp16);
    for (int i = 0; i < out->buffers; i++) {
        buf_spec b = buffer_spec(s, np, B, T, i);
        out->bytes[b.cls] += b.bytes;
        out->total += b.bytes;
        if (b.bytes > out->largest) {
            out->largest = b.bytes;
            spec_name(&b, out->largest_name, sizeof out->largest_name);
        }
        if (b.cls == VKT_MEM_ACTS && b.bytes > out->largest_act) {
            out->largest_act = b.bytes;
            spec_name(&b, out->largest_act_name, sizeof out->largest_act_name);
        }
    }
}

/* In double so that absurd shapes give a huge number instead of wrapping around: the
 * trainer compares it with the device's memory before allocating anything. The sum of
 * buffer_spec's sizes. */
double vkt_gpt2_memory_bytes(const vkt_gpt2_shape *s, int B, int T, int fp16) {
    double C = s->channels, L = s->num_layers, Vp = s->padded_vocab_size, NH = s->num_heads;
    double BT = (double)B * T;
    double params = Vp * C + (double)s->max_seq_len * C + L * (12 * C * C + 13 * C) + 2 * C;
    double acts = BT * C * 2 + BT * 3 + BT * Vp +
                  L * (18 * BT * C + 4 * BT + (double)B * NH * T);
    double scratch = 9 * BT * C;
    /* fp16 copies: 2 bytes an element, each buffer rounded up to whole 4-byte words */
    double words = ceil(params / 2) + ceil(BT * C / 2) + L * (3 * ceil(BT * C / 2) + 2 * BT * C);
    return 4.0 * (4 * params + acts + scratch) + 2 * 4.0 * BT + 4.0 /* loss scalar */ +
           (fp16 ? 4.0 * words : 0);
}

struct vkt_model {
    vkt_backend *be;
    vkt_gpt2_shape shape;
    vkt_param_tensor tensors[VKT_NUM_PARAM_TENSORS];
    size_t num_params;
    int max_B, max_T;
    vkt_buf **bufs; /* NUM_BUFS(L), in buffer_spec's order */
    int nbufs;
    /* the buffers used by name (entries of bufs) */
    vkt_buf *params, *grads, *adam_m, *adam_v;
    vkt_buf *tokens, *targets; /* int32 (B,T) */
    vkt_buf *loss;             /* one float: vkt_model_forward's mean loss */
    size_t device_bytes;       /* all of bufs */
    int fp16;                  /* precision = fp16: the fp16 copies exist (BUF_HALF...) */
    vkt_buf *params_h;         /* the parameters' fp16 copy */
};

static void fmt_size(char *buf, size_t len, double b) {
    if (b >= 1073741824.0) snprintf(buf, len, "%.2f GiB", b / 1073741824.0);
    else if (b >= 1048576.0) snprintf(buf, len, "%.1f MiB", b / 1048576.0);
    else snprintf(buf, len, "%.1f KiB", b / 1024.0);
}

/* One buffer of the table, or NULL with err naming it, its size, what the device allows for
 * one allocation and how much of the model was allocated before it. */
static vkt_buf *alloc_buffer(vkt_backend *be, const buf_spec *b, size_t before, char *err,
                             size_t errlen) {
    const vkt_device_info *d = vkt_backend_info(be);
    char what[96], size[32], lim[32] = "no limit", done[32], mem[32];
    spec_name(b, what, sizeof what);
    fmt_size(size, sizeof size, (double)b->bytes);
    if (d->max_alloc_bytes) fmt_size(lim, sizeof lim, (double)d->max_alloc_bytes);
    const char *hint = b->cls <= VKT_MEM_OPTIM
                           ? "a smaller model ([model] n_layer, n_embd, vocab_size): the "
                             "parameters, the gradients and each AdamW moment are one buffer each"
                           : "lower [train] batch_size or seq_len (raise grad_accum_steps to "
                             "keep the tokens per step), or a smaller model";
    if (d->max_alloc_bytes && b->bytes > d->max_alloc_bytes) {
        snprintf(err, errlen,
                 "%s: %s (%zu bytes) in one buffer is more than %s:%d (%s) allows for one "
                 "allocation (%s). HINT: %s",
                 what, size, b->bytes, d->backend, d->backend_index, d->name, lim, hint);
        return NULL;
    }
    char why[1024];
    vkt_buf *buf = vkt_alloc(be, b->bytes, why, sizeof why);
    if (!buf) {
        fmt_size(done, sizeof done, (double)before);
        fmt_size(mem, sizeof mem, (double)d->memory_bytes);
        snprintf(err, errlen,
                 "%s: %s (%zu bytes) could not be allocated after %s of the model's buffers "
                 "(device memory %s, one allocation at most %s): %s",
                 what, size, b->bytes, done, mem, lim, why);
    }
    return buf;
}

vkt_model *vkt_model_alloc(vkt_backend *be, const vkt_gpt2_shape *s, int max_B, int max_T,
                           char *err, size_t errlen) {
    vkt_model *m = calloc(1, sizeof *m);
    if (m) m->bufs = calloc((size_t)NUM_BUFS_FP16(s->num_layers), sizeof *m->bufs); /* room for either table */
    if (!m || !m->bufs) {
        free(m);
        snprintf(err, errlen, "out of host memory");
        return NULL;
    }
    m->be = be;
    m->shape = *s;
    m->max_B = max_B;
    m->max_T = max_T;
    m->num_params = vkt_gpt2_param_layout(s, m->tensors);
    m->fp16 = vkt_backend_precision_fp16(be);
    m->nbufs = num_bufs(s->num_layers, m->fp16);
    for (int i = 0; i < m->nbufs; i++) {
        buf_spec b = buffer_spec(s, m->num_params, max_B, max_T, i);
        if (!(m->bufs[i] = alloc_buffer(be, &b, m->device_bytes, err, errlen))) {
            vkt_model_destroy(m);
            return NULL;
        }
        m->device_bytes += b.bytes;
    }
    int L = s->num_layers;
    m->params = m->bufs[BUF_PARAMS];
    m->grads = m->bufs[BUF_GRADS];
    m->adam_m = m->bufs[BUF_ADAM_M];
    m->adam_v = m->bufs[BUF_ADAM_V];
    m->tokens = m->bufs[BUF_SCRATCH(L, S_TOKENS)];
    m->targets = m->bufs[BUF_SCRATCH(L, S_TARGETS)];
    m->loss = m->bufs[BUF_SCRATCH(L, S_LOSS)];
    m->params_h = m->fp16 ? m->bufs[BUF_HALF(L, H_PARAMS)] : NULL;
    return m;
}

vkt_model *vkt_model_create(vkt_backend *be, const vkt_gpt2_shape *s, int max_B, int max_T,
                            char *err, size_t errlen) {
    vkt_model *m = vkt_model_alloc(be, s, max_B, max_T, err, errlen);
    if (!m) return NULL;
    vkt_fill(be, vkt_at(m->grads, 0), 0, m->num_params);
    vkt_fill(be, vkt_at(m->adam_m, 0), 0, m->num_params);
    vkt_fill(be, vkt_at(m->adam_v, 0), 0, m->num_params);
    return m;
}

void vkt_model_destroy(vkt_model *m) {
    if (!m) return;
    for (int i = m->nbufs - 1; i >= 0; i--) vkt_free(m->be, m->bufs[i]);
    free(m->bufs);
    free(m);
}

const vkt_gpt2_shape *vkt_model_shape(const vkt_model *m) { return &m->shape; }
size_t vkt_model_num_params(const vkt_model *m) { return m->num_params; }
size_t vkt_model_device_bytes(const vkt_model *m) { return m->device_bytes; }
const vkt_param_tensor *vkt_model_tensors(const vkt_model *m) { return m->tensors; }
vkt_backend *vkt_model_backend(const vkt_model *m) { return m->be; }
vkt_buf *vkt_model_params(vkt_model *m) { return m->params; }
vkt_ptr vkt_model_params_half(vkt_model *m) {
    return m->fp16 ? vkt_half_at(m->params_h, 0) : VKT_NULL_PTR;
}
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
    vkt_model_params_changed(m);
}

void vkt_model_params_changed(vkt_model *m) {
    if (m->fp16) vkt_to_half(m->be, vkt_half_at(m->params_h, 0), vkt_at(m->params, 0), m->num_params);
}
void vkt_model_zero_grad(vkt_model *m) { vkt_fill(m->be, vkt_at(m->grads, 0), 0, m->num_params); }

/* The activations outside the layers (fields in top_act_names' order). Each is a buffer of
 * its own, used from its start whatever the batch. */
typedef struct acts {
    vkt_ptr encoded, lnf, lnf_mean, lnf_rstd, logits, losses;
} acts;
_Static_assert(sizeof(acts) == NUM_TOP_ACTS * sizeof(vkt_ptr), "acts follows top_act_names");

static acts act_ptrs(vkt_model *m) {
    acts a;
    vkt_ptr *p = (vkt_ptr *)&a;
    for (int i = 0; i < NUM_TOP_ACTS; i++) p[i] = vkt_at(m->bufs[BUF_TOP + i], 0);
    return a;
}

/* Layer l's activations (after residual: layer_act_names' order); residual is the layer's
 * input, the embedding for layer 0 and the previous layer's residual3 after it. */
typedef struct layer_acts {
    vkt_ptr residual, ln1, ln1_mean, ln1_rstd, qkv, atty, att_lse, attproj, residual2, ln2,
        ln2_mean, ln2_rstd, fch, fch_gelu, fcproj, residual3;
} layer_acts;
_Static_assert(sizeof(layer_acts) == (1 + NUM_LAYER_ACTS) * sizeof(vkt_ptr),
               "layer_acts follows layer_act_names");

static layer_acts layer_of(vkt_model *m, int l) {
    layer_acts x;
    vkt_ptr *p = &x.ln1;
    for (int i = 0; i < NUM_LAYER_ACTS; i++) p[i] = vkt_at(m->bufs[BUF_LAYER(l, i)], 0);
    x.residual = vkt_at(l == 0 ? m->bufs[BUF_TOP + A_ENCODED]
                               : m->bufs[BUF_LAYER(l - 1, A_RESIDUAL3)], 0);
    return x;
}

static vkt_ptr param(vkt_model *m, vkt_buf *buf, int i, int l) {
    const vkt_param_tensor *t = &m->tensors[i];
    return vkt_at(buf, (t->offset + t->size / m->shape.num_layers * l) * sizeof(float));
}
static vkt_ptr param0(vkt_model *m, vkt_buf *buf, int i) {
    return vkt_at(buf, m->tensors[i].offset * sizeof(float));
}

/* What the matmuls read: under precision = fp16 the fp16 copies (weights from params_h,
 * activations from their BUF_HALF buffers), else the fp32 tensors themselves. */
static vkt_ptr mm_weight(vkt_model *m, int i, int l) {
    vkt_ptr w = param(m, m->params, i, l);
    return m->fp16 ? vkt_half_at(m->params_h, w.off / 2) : w; /* the same element offset */
}
typedef struct mm_inputs {
    vkt_ptr ln1, atty, ln2, fch_gelu;
} mm_inputs;
static mm_inputs inputs_of(vkt_model *m, const layer_acts *x, int l) {
    if (!m->fp16) return (mm_inputs){x->ln1, x->atty, x->ln2, x->fch_gelu};
    int L = m->shape.num_layers;
    mm_inputs in;
    vkt_ptr *p = &in.ln1;
    for (int k = 0; k < NUM_LAYER_HALF; k++)
        p[k] = vkt_half_at(m->bufs[BUF_HALF_LAYER(L, l, k)], 0);
    return in;
}
static vkt_ptr lnf_input(vkt_model *m, const acts *a) {
    return m->fp16 ? vkt_half_at(m->bufs[BUF_HALF(m->shape.num_layers, H_LNF)], 0) : a->lnf;
}
/* Where a producer writes its output's fp16 copy (out_half): the copy under precision = fp16,
 * none in fp32 (the matmuls then read the fp32 tensor itself). */
static vkt_ptr half_copy(vkt_model *m, vkt_ptr copy) { return m->fp16 ? copy : VKT_NULL_PTR; }

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
    acts a = act_ptrs(m);
    vkt_buf *P = m->params;

    vkt_upload(be, vkt_at(m->tokens, 0), tokens, sizeof(int32_t) * BT);
    vkt_encoder_forward(be, a.encoded, vkt_at(m->tokens, 0), param0(m, P, WTE), param0(m, P, WPE),
                        B, T, C);
    /* each residual addition is fused with the LayerNorm that reads it: ln2 of its layer, ln1
     * of the next, lnf after the last */
    layer_acts x0 = layer_of(m, 0);
    vkt_layernorm_forward(be, x0.ln1, x0.ln1_mean, x0.ln1_rstd, x0.residual,
                          param(m, P, LN1W, 0), param(m, P, LN1B, 0), BT, C,
                          half_copy(m, inputs_of(m, &x0, 0).ln1));
    for (int l = 0; l < L; l++) {
        layer_acts x = layer_of(m, l);
        mm_inputs in = inputs_of(m, &x, l);

        linear_forward(be, x.qkv, in.ln1, mm_weight(m, QKVW, l), param(m, P, QKVB, l), BT, C, 3 * C);
        vkt_attention_forward(be, x.atty, x.att_lse, x.qkv, B, T, C, NH, half_copy(m, in.atty));
        linear_forward(be, x.attproj, in.atty, mm_weight(m, ATTPROJW, l), param(m, P, ATTPROJB, l),
                       BT, C, C);
        vkt_residual_layernorm_forward(be, x.residual2, x.ln2, x.ln2_mean, x.ln2_rstd, x.residual,
                                       x.attproj, param(m, P, LN2W, l), param(m, P, LN2B, l), BT,
                                       C, half_copy(m, in.ln2));
        /* fch = ln2 . fcw^T + fcb and fch_gelu = gelu(fch), GELU in the matmul's epilogue */
        vkt_matmul_gelu(be, x.fch, x.fch_gelu, in.ln2, mm_weight(m, FCW, l), param(m, P, FCB, l),
                        BT, 4 * C, C, 0, 1, half_copy(m, in.fch_gelu));
        linear_forward(be, x.fcproj, in.fch_gelu, mm_weight(m, FCPROJW, l),
                       param(m, P, FCPROJB, l), BT, 4 * C, C);
        if (l + 1 < L) { /* residual3 is the next layer's residual: its ln1 */
            layer_acts nx = layer_of(m, l + 1);
            vkt_residual_layernorm_forward(be, x.residual3, nx.ln1, nx.ln1_mean, nx.ln1_rstd,
                                           x.residual2, x.fcproj, param(m, P, LN1W, l + 1),
                                           param(m, P, LN1B, l + 1), BT, C,
                                           half_copy(m, inputs_of(m, &nx, l + 1).ln1));
        } else {
            vkt_residual_layernorm_forward(be, x.residual3, a.lnf, a.lnf_mean, a.lnf_rstd,
                                           x.residual2, x.fcproj, param0(m, P, LNFW),
                                           param0(m, P, LNFB), BT, C,
                                           half_copy(m, lnf_input(m, &a)));
        }
    }
    /* tied embedding: logits = lnf . wte^T over all Vp rows (padded rows are masked in the loss) */
    linear_forward(be, a.logits, lnf_input(m, &a), mm_weight(m, WTE, 0), VKT_NULL_PTR, BT, C, Vp);
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
    acts a = act_ptrs(m);
    vkt_download(m->be, dst, a.logits,
                 (size_t)B * T * m->shape.padded_vocab_size * sizeof(float));
}

void vkt_model_get_logits_at(vkt_model *m, float *dst, int B, int T, int b, int t) {
    (void)B; /* row b*T + t of the logits' own buffer, whatever the batch */
    acts a = act_ptrs(m);
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
    acts a = act_ptrs(m);
    vkt_buf *P = m->params, *G = m->grads;
    vkt_ptr dres = vkt_at(m->bufs[BUF_SCRATCH(L, S_DRES)], 0),
            dbuf = vkt_at(m->bufs[BUF_SCRATCH(L, S_DBUF)], 0),
            dqkv = vkt_at(m->bufs[BUF_SCRATCH(L, S_DQKV)], 0),
            dfch = vkt_at(m->bufs[BUF_SCRATCH(L, S_DFCH)], 0);
    vkt_ptr dlogits = a.logits; /* softmax_xent left them there */

    vkt_fill(be, dres, 0.0f, (size_t)BT * C);
    linear_backward(be, dbuf, param0(m, G, WTE), VKT_NULL_PTR, dlogits, lnf_input(m, &a),
                    mm_weight(m, WTE, 0), BT, C, Vp);
    vkt_layernorm_backward(be, dres, param0(m, G, LNFW), param0(m, G, LNFB), dbuf,
                           layer_of(m, L - 1).residual3, param0(m, P, LNFW),
                           a.lnf_mean, a.lnf_rstd, BT, C);

    for (int l = L - 1; l >= 0; l--) {
        layer_acts x = layer_of(m, l);
        mm_inputs in = inputs_of(m, &x, l);

        /* MLP: dres is d(fcproj) and, through the residual add, d(residual2) */
        linear_backward(be, dfch, param(m, G, FCPROJW, l), param(m, G, FCPROJB, l), dres,
                        in.fch_gelu, mm_weight(m, FCPROJW, l), BT, 4 * C, C);
        vkt_gelu_backward(be, dfch, x.fch, dfch, (size_t)BT * 4 * C);
        linear_backward(be, dbuf, param(m, G, FCW, l), param(m, G, FCB, l), dfch, in.ln2,
                        mm_weight(m, FCW, l), BT, C, 4 * C);
        vkt_layernorm_backward(be, dres, param(m, G, LN2W, l), param(m, G, LN2B, l), dbuf,
                               x.residual2, param(m, P, LN2W, l), x.ln2_mean, x.ln2_rstd, BT, C);

        /* attention: dres is now d(residual2) = d(attproj) = d(residual) so far */
        linear_backward(be, dbuf, param(m, G, ATTPROJW, l), param(m, G, ATTPROJB, l), dres,
                        in.atty, mm_weight(m, ATTPROJW, l), BT, C, C);
        vkt_attention_backward(be, dqkv, dbuf, x.qkv, x.att_lse, x.atty, B, T, C, NH);
        linear_backward(be, dbuf, param(m, G, QKVW, l), param(m, G, QKVB, l), dqkv, in.ln1,
                        mm_weight(m, QKVW, l), BT, C, 3 * C);
        vkt_layernorm_backward(be, dres, param(m, G, LN1W, l), param(m, G, LN1B, l), dbuf,
                               x.residual, param(m, P, LN1W, l), x.ln1_mean, x.ln1_rstd, BT, C);
    }
    vkt_encoder_backward(be, param0(m, G, WTE), param0(m, G, WPE), dres, vkt_at(m->tokens, 0), B,
                         T, C);
}
