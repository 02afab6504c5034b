/* GPT-2 on any backend: parameter layout (llm.c's order, one contiguous buffer each for
 * params, grads and the two AdamW moments), activations, forward and backward as a readable
 * sequence of backend ops. No autograd, no graph. */
#ifndef VKTRAIN_MODEL_H
#define VKTRAIN_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "vktrain/backend.h"

#define VKT_NUM_PARAM_TENSORS 16

typedef struct vkt_gpt2_shape {
    int max_seq_len;       /* block_size: rows of wpe */
    int vocab_size;        /* V: real tokens */
    int padded_vocab_size; /* Vp: V rounded up to a multiple of 64; padded logits are masked */
    int num_layers;
    int num_heads;
    int channels;
} vkt_gpt2_shape;

/* One parameter tensor: its name, element offset in the parameter buffer, element count and
 * whether AdamW applies weight decay to it (matrices yes; biases and LayerNorm no). */
typedef struct vkt_param_tensor {
    const char *name;
    size_t offset, size;
    int decay;
} vkt_param_tensor;

typedef struct vkt_model vkt_model;

/* Vp = V rounded up to a multiple of 64. */
int vkt_padded_vocab(int vocab_size);
/* Fills the 16 tensors in llm.c's order (wte wpe ln1w ln1b qkvw qkvb attprojw attprojb ln2w
 * ln2b fcw fcb fcprojw fcprojb lnfw lnfb); returns the total parameter count. */
size_t vkt_gpt2_param_layout(const vkt_gpt2_shape *s, vkt_param_tensor out[VKT_NUM_PARAM_TENSORS]);
/* Checks a shape before anything is sized from it (checkpoints, llm.c files, configs): every
 * dimension >= 1 and within sane bounds (vocab <= 65536), n_embd divisible by n_head,
 * padded_vocab_size exactly vkt_padded_vocab(vocab_size), the parameter count representable.
 * 0, or 2 with err naming the field ("n_head = 0 is outside [1, 65536]"; the caller prefixes
 * the file). */
int vkt_gpt2_shape_check(const vkt_gpt2_shape *s, char *err, size_t errlen);
/* The first NaN or infinity in params (the layout of s): returns its tensor's index into
 * vkt_gpt2_param_layout (name: layout[i].name) and sets *elem (may be NULL) to the element's
 * index within that tensor; -1 when every value is finite. Works on any buffer of that layout
 * (parameters, gradients, AdamW moments). */
int vkt_params_first_nonfinite(const vkt_gpt2_shape *s, const float *params, size_t *elem);
/* Bytes of device memory the model needs for batches up to B x T (params, grads, moments,
 * activations, activation gradients; with fp16, the fp16 copies precision = fp16 adds). */
double vkt_gpt2_memory_bytes(const vkt_gpt2_shape *s, int B, int T, int fp16);

/* What vkt_model_create allocates, by class. Parameters, gradients and each AdamW moment are
 * one buffer each; every activation tensor is a buffer of its own (per layer), so that no
 * allocation comes near a driver's limit for one (vkt_device_info.max_alloc_bytes). */
typedef enum vkt_mem_class {
    VKT_MEM_PARAMS,
    VKT_MEM_GRADS,
    VKT_MEM_OPTIM,   /* AdamW m and v */
    VKT_MEM_ACTS,    /* the forward's activations, kept for the backward */
    VKT_MEM_SCRATCH, /* the backward's activation gradients, tokens, targets, the loss */
    VKT_MEM_FP16,    /* precision = fp16: fp16 copies of the parameters and matmul inputs */
    VKT_MEM_CLASSES
} vkt_mem_class;
const char *vkt_mem_class_name(vkt_mem_class c); /* "parameters", "gradients", ... */
typedef struct vkt_model_memory {
    uint64_t bytes[VKT_MEM_CLASSES];
    uint64_t total;
    int buffers;                                  /* how many allocations */
    uint64_t largest;     char largest_name[96];  /* e.g. "activations: logits" */
    uint64_t largest_act; char largest_act_name[96];
} vkt_model_memory;
/* The buffers vkt_model_create(s, B, T) allocates, exactly (the same table), summed; fp16:
 * on a backend under precision = fp16 (the fp16 copies). The shape must have passed
 * vkt_gpt2_shape_check. */
void vkt_gpt2_memory_plan(const vkt_gpt2_shape *s, int B, int T, int fp16,
                          vkt_model_memory *out);

/* Allocates everything for batches of up to max_B x max_T tokens. NULL + message on failure,
 * naming the buffer ("activations: fch (layer 3)"), its size and the device's limit for one
 * allocation. */
vkt_model *vkt_model_create(vkt_backend *be, const vkt_gpt2_shape *s, int max_B, int max_T,
                            char *err, size_t errlen);
/* The same allocation without touching the memory (gradients and moments are not zeroed):
 * what --dry-run measures, in seconds, where zeroing would fault in every page. */
vkt_model *vkt_model_alloc(vkt_backend *be, const vkt_gpt2_shape *s, int max_B, int max_T,
                           char *err, size_t errlen);
void vkt_model_destroy(vkt_model *m);

const vkt_gpt2_shape *vkt_model_shape(const vkt_model *m);
size_t vkt_model_num_params(const vkt_model *m);
/* Bytes of device memory the model allocated (what vkt_gpt2_memory_bytes predicts). */
size_t vkt_model_device_bytes(const vkt_model *m);
const vkt_param_tensor *vkt_model_tensors(const vkt_model *m); /* VKT_NUM_PARAM_TENSORS */
vkt_backend *vkt_model_backend(const vkt_model *m);
/* The contiguous device buffers (num_params floats each). */
vkt_buf *vkt_model_params(vkt_model *m);
vkt_buf *vkt_model_grads(vkt_model *m);
vkt_buf *vkt_model_adam_m(vkt_model *m);
vkt_buf *vkt_model_adam_v(vkt_model *m);
/* Under precision = fp16 the parameters' fp16 copy (what AdamW refreshes with the update:
 * vkt_adamw_args.params_half); VKT_NULL_PTR in fp32. */
vkt_ptr vkt_model_params_half(vkt_model *m);

/* GPT-2 initialisation: N(0, 0.02), residual projections (attprojw, fcprojw) scaled by
 * 1/sqrt(2 n_layer), biases 0, LayerNorm weights 1; padded wte rows 0. Deterministic in seed.
 * 0, or -1 when the host has no memory for the parameters' host copy. */
int vkt_model_init_random(vkt_model *m, uint64_t seed);
/* Host copies of the parameters (num_params floats). */
void vkt_model_get_params(vkt_model *m, float *dst);
void vkt_model_set_params(vkt_model *m, const float *src);
/* After anything but AdamW wrote the parameter buffer on the device (AdamW writes the copy
 * with its update: vkt_model_params_half; set_params calls this itself): under precision =
 * fp16, refreshes the parameters' fp16 copy, which the matmuls read. Queued like any op;
 * nothing to do in fp32. */
void vkt_model_params_changed(vkt_model *m);

/* Forward on tokens (B,T) int32 (host). With targets (B,T) (host, may be NULL) computes the
 * per-position losses and adds weight * their mean to loss_acc (one float on the device)
 * without waiting for the device; with want_grad also leaves dlogits (scaled by grad_scale)
 * ready for vkt_model_backward. Positions whose target is < 0 do not count. */
void vkt_model_forward_acc(vkt_model *m, const int32_t *tokens, const int32_t *targets, int B,
                           int T, float grad_scale, int want_grad, vkt_ptr loss_acc,
                           float weight);
/* The same, returning the mean loss (0 when targets is NULL): one host round trip. */
float vkt_model_forward(vkt_model *m, const int32_t *tokens, const int32_t *targets, int B, int T,
                        float grad_scale, int want_grad);
/* Logits of the last forward: (B,T,Vp) floats into dst (host). Only valid without want_grad. */
void vkt_model_get_logits(vkt_model *m, float *dst, int B, int T);
/* Only the Vp logits of position t of sequence b (what sampling needs). */
void vkt_model_get_logits_at(vkt_model *m, float *dst, int B, int T, int b, int t);
/* Adds this micro-batch's parameter gradients into grads (call vkt_model_zero_grad first). */
void vkt_model_backward(vkt_model *m, int B, int T);
void vkt_model_zero_grad(vkt_model *m);

/* ---- generation ---------------------------------------------------------------------------- */

typedef struct vkt_sample_opts {
    float temperature; /* 0 = greedy (argmax) */
    int top_k;         /* 0 = the whole vocabulary */
    uint64_t seed;
} vkt_sample_opts;

/* One token from a row of logits (the first V of Vp entries): softmax at the temperature over
 * the top_k largest. Deterministic given rng_state, which it advances. */
int vkt_sample_logits(const float *logits, int V, const vkt_sample_opts *o, uint64_t *rng_state);

/* Continues tokens[0..n) by n_new tokens written to tokens[n..n+n_new), calling emit after
 * each (for streaming). The context is the last block_size tokens, so the model must have been
 * created for batches of 1 x block_size. Returns the number of tokens generated (0 when n < 1:
 * there must be a token to continue from, e.g. an end-of-text token). */
int vkt_generate(vkt_model *m, int32_t *tokens, int n, int n_new, const vkt_sample_opts *o,
                 void (*emit)(int token, void *user), void *user);

#endif
