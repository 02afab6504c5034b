/* The op interface: the only way the trainer touches a device. Every backend (cpu, vulkan,
 * opencl) fills the same ops table behind these functions; buffers are opaque handles. */
#ifndef VKTRAIN_BACKEND_H
#define VKTRAIN_BACKEND_H

#include <stddef.h>
#include <stdint.h>

typedef struct vkt_backend vkt_backend; /* an initialised device of some backend */
typedef struct vkt_buf vkt_buf;         /* device memory, opaque */

/* A place inside a buffer: ops take tensors as (buffer, byte offset) so that the one
 * contiguous parameter buffer can be addressed tensor by tensor. The elements are fp32
 * unless `half` says fp16 (IEEE binary16, 2 bytes each): only vkt_to_half's output and
 * vkt_matmul's A and B take fp16 tensors, the operand copies of precision = fp16 (the model
 * keeps them; docs/backends.md, "fp16 operands"). */
typedef struct vkt_ptr {
    vkt_buf *buf;
    size_t off; /* bytes */
    int half;   /* 1: fp16 elements */
} vkt_ptr;

static inline vkt_ptr vkt_at(vkt_buf *buf, size_t off) { vkt_ptr p = {buf, off, 0}; return p; }
/* An fp16 tensor at byte offset off (even). */
static inline vkt_ptr vkt_half_at(vkt_buf *buf, size_t off) {
    vkt_ptr p = {buf, off, 1};
    return p;
}
/* Bytes per element of p: 2 (fp16) or 4. */
static inline size_t vkt_elem_bytes(vkt_ptr p) { return p.half ? 2 : 4; }
/* p advanced by n elements of its type (floats, or halves for an fp16 tensor) */
static inline vkt_ptr vkt_ptr_addf(vkt_ptr p, size_t n) { p.off += n * vkt_elem_bytes(p); return p; }
static const vkt_ptr VKT_NULL_PTR = {0, 0, 0};

typedef struct vkt_device_info {
    char backend[16];         /* "cpu", "vulkan", "opencl" */
    int backend_index;        /* index within its backend: the N of "cpu:N" */
    char vendor[64];
    char name[128];
    char driver[128];
    uint64_t memory_bytes;    /* usable device memory (host RAM for the cpu backend) */
    uint64_t max_alloc_bytes; /* the largest single vkt_alloc the device allows; 0 = no limit
                               * beyond memory_bytes (vulkan: min(maxMemoryAllocationSize,
                               * maintenance4's maxBufferSize); opencl: CL_DEVICE_MAX_MEM_ALLOC_SIZE) */
    int fp16;                 /* native fp16 arithmetic (vulkan: shaderFloat16) */
    int coopmat;              /* cooperative-matrix (tensor core) matmul */
    char coopmat_shapes[128]; /* e.g. "16x16x16 f16->f32", empty when none */
    double peak_flops;        /* fp32 estimate, FLOP/s; 0 when unknown */
    int can_train;            /* its backend implements the ops (set by the registry) */
    int is_gpu;               /* a GPU or accelerator, not a CPU driver (lavapipe, PoCL) or
                               * the cpu backend: what MPI's default device list takes */
    char details[1024];       /* extra lines for --list-devices, '\n'-separated; may be "" */
} vkt_device_info;

/* ---- devices ---- */

/* Number of devices over every compiled backend; a backend without a driver adds none. */
int vkt_device_count(void);
/* Info of global device index i (the number --list-devices prints). 0 on success. */
int vkt_device_info_get(int i, vkt_device_info *out);
/* Parses "N" or "backend:N" into a global index; -1 and a message when no such device. */
int vkt_device_resolve(const char *spec, char *err, size_t errlen);
/* Human-readable notes from backends that found no driver ("vulkan: no loader"), may be "". */
const char *vkt_device_notes(void);

vkt_backend *vkt_backend_create(int device_index, char *err, size_t errlen);
void vkt_backend_destroy(vkt_backend *be);
const vkt_device_info *vkt_backend_info(const vkt_backend *be);
/* Sets a backend-specific option by name, after vkt_backend_create and before the first op.
 * A backend ignores options it does not have (returns 0). 0 = ok; otherwise err holds why
 * (an invalid value, or a request the device cannot meet). Options of the vulkan backend:
 *   "matmul"    "auto" | "fp32" | "fp32_direct" | "fp16" | "fp16_direct" | "coopmat": the GEMM
 *               tier (docs/backends.md, The Vulkan backend)
 *   "attention" "flash" (default: FlashAttention-2 tiles) | "exact" (the thread-per-row
 *               kernel, a diagnostic)
 *   "cache_dir" directory for its caches (pipeline cache, matmul tier timings); "" = none
 * of the opencl backend:
 *   "cache_dir" directory for its caches (program binaries, GEMM tuning); "" = none
 *   "gemm_tune" "auto" (tune CLBlast's GEMM on first use when a cache_dir is set) | "force" |
 *               "off" (docs/backends.md, The OpenCL backend)
 * and of every backend (handled by backend.c, which asks the backend whether it can):
 *   "precision" "fp32" (default) | "fp16": under fp16, vkt_matmul rounds op(A) and op(B) to
 *               fp16 (round to nearest even; magnitudes that do not fit become +-inf, so an
 *               overflow shows up as a non-finite result) and accumulates in fp32. Every other
 *               op, C, the bias and the optimizer stay fp32. A device that cannot is refused
 *               with the missing feature named. */
int vkt_backend_set_option(vkt_backend *be, const char *key, const char *value, char *err,
                           size_t errlen);
/* 1 when the backend's option precision is fp16 (the model then keeps fp16 copies of the
 * matmul operands: vkt_to_half). */
int vkt_backend_precision_fp16(const vkt_backend *be);
/* Waits until all queued work is done. 0, or -1 once the device has failed (below). */
int vkt_synchronize(vkt_backend *be);
/* ---- device failures ----
 * A backend never aborts or exits on what a driver returns. The first failed device call (a
 * lost device, an out-of-resources launch, a kernel build failure, an allocation inside an
 * op) is recorded as the backend's sticky error; from then on every op is a no-op (nothing
 * more reaches the driver), vkt_alloc fails with the same message, and the next and every
 * later vkt_synchronize or vkt_download returns -1. Returns 0 while the device is healthy;
 * otherwise -1 with err (may be NULL) holding "<backend>:<N> (<device name>): <call> failed:
 * <result>", e.g. "vulkan:0 (llvmpipe ...): vkQueueSubmit failed: VK_ERROR_DEVICE_LOST".
 * Test knob: VKT_FAULT_INJECT=<kind>:<N>, read at vkt_backend_create, makes the Nth device
 * call of that kind fail as the driver would (vulkan VK_ERROR_DEVICE_LOST or
 * VK_ERROR_OUT_OF_DEVICE_MEMORY, opencl CL_OUT_OF_RESOURCES or
 * CL_MEM_OBJECT_ALLOCATION_FAILURE), through the path a real failure takes. Kinds:
 *   submit    vulkan: vkQueueSubmit; opencl: clEnqueueNDRangeKernel; cpu: a host round trip
 *             (download or synchronize)
 *   alloc     vulkan: vkAllocateMemory (1 = the staging buffer at creation, then each
 *             256 MiB block; a refused block is retried once at the size asked for, so
 *             alloc:2 alone is survived); opencl: clCreateBuffer; cpu: vkt_alloc
 *   download  the Nth download (vulkan: its fence wait; opencl: clEnqueueReadBuffer)
 * A malformed value makes vkt_backend_create fail. */
int vkt_backend_error(const vkt_backend *be, char *err, size_t errlen);
/* Milliseconds on the device's clock after all queued work is done. */
double vkt_time_ms(vkt_backend *be);
/* How many host round trips (download, synchronize, time_ms) this backend has made: tests
 * check that a training step makes exactly one. */
uint64_t vkt_sync_count(const vkt_backend *be);

/* ---- profiling ----
 * Per-op time totals, for finding where a step's time goes. Off by default, and free when off.
 * A backend with device timers (vulkan: timestamp queries around every dispatch, copy and
 * fill; opencl: events) reports device time under the shader's or kernel's name (matmul_f32, layernorm_forward, ...) and
 * "upload"/"download"/"copy"/"fill"; the others (cpu, synchronous) are timed on the host around
 * each public call, under its name without the vkt_ prefix. Device times count once the work
 * has finished: call vkt_synchronize (or download) before reading the report. */
typedef struct vkt_profile_entry {
    char name[48];
    uint64_t calls;  /* dispatches (device timers) or calls (host timing) */
    double total_ms;
    /* workgroups per dispatch, the smallest and the median over the calls (vulkan's compute
     * dispatches: how well each op would fill a GPU); 0 where not known (copies, fills, host
     * timing, other backends) */
    uint64_t min_groups, median_groups;
} vkt_profile_entry;
/* on: clears the totals and starts counting; off: stops counting, the totals stay readable.
 * Returns 0, or -1 when this device cannot time its work (the report then stays empty). */
int vkt_profile_enable(vkt_backend *be, int on);
/* Copies up to max entries, largest total_ms first, into out; returns how many entries there
 * are in all (may exceed max; 0 when profiling was never enabled). */
int vkt_profile_report(vkt_backend *be, vkt_profile_entry *out, int max);

/* ---- memory ---- (sizes and offsets in bytes) */
vkt_buf *vkt_alloc(vkt_backend *be, size_t bytes, char *err, size_t errlen);
void vkt_free(vkt_backend *be, vkt_buf *buf);
/* Device memory the backend holds for itself, beside the vkt_alloc buffers: its staging ring
 * (vulkan: 32 MiB) and the op scratch allocated so far (attention backward's row dots, grown
 * on first use; opencl under fp16: the rounded matmul operands). 0 for the cpu backend. */
uint64_t vkt_backend_own_bytes(vkt_backend *be);
void vkt_upload(vkt_backend *be, vkt_ptr dst, const void *src, size_t bytes);
/* 0, or -1 after a device failure (vkt_backend_error), when dst is zero-filled. */
int vkt_download(vkt_backend *be, void *dst, vkt_ptr src, size_t bytes);
void vkt_fill(vkt_backend *be, vkt_ptr dst, float value, size_t nfloats);
void vkt_copy(vkt_backend *be, vkt_ptr dst, vkt_ptr src, size_t bytes);

/* ---- ops ----
 * Ordering: uploads, fills, copies and ops run in call order, as on one stream; a backend may
 * queue them (a GPU backend records a whole training step into one submission). upload copies
 * src before it returns. download, synchronize and time_ms wait for everything queued before
 * them: they are the only host round trips, and the trainer makes one per optimizer step.
 * Shapes are row-major; N = rows (B*T positions). Conventions, as in llm.c:
 * outputs first, then inputs, then weights, then dimensions. Forward ops overwrite their
 * outputs. Backward ops ADD (+=) into parameter gradients (so micro-batches accumulate);
 * for activation gradients each op says whether it adds or overwrites.
 * out_half (layernorm, attention and GELU forward): VKT_NULL_PTR, or an fp16 tensor
 * (vkt_half_at) that also receives out rounded to fp16, bit for bit what vkt_to_half(out_half,
 * out, n) writes: the copy precision = fp16's matmuls read, written by the producer itself
 * where the backend can (no separate pass over out). */

/* out(B,T,C) = wte[tokens[b,t]] + wpe[t]; tokens are int32. */
void vkt_encoder_forward(vkt_backend *be, vkt_ptr out, vkt_ptr tokens, vkt_ptr wte, vkt_ptr wpe,
                         int B, int T, int C);
/* dwte[tokens[b,t]] += dout[b,t]; dwpe[t] += dout[b,t]. */
void vkt_encoder_backward(vkt_backend *be, vkt_ptr dwte, vkt_ptr dwpe, vkt_ptr dout,
                          vkt_ptr tokens, int B, int T, int C);

/* out(N,C) = (inp - mean) * rstd * weight + bias, eps 1e-5; saves mean(N), rstd(N). */
void vkt_layernorm_forward(vkt_backend *be, vkt_ptr out, vkt_ptr mean, vkt_ptr rstd,
                           vkt_ptr inp, vkt_ptr weight, vkt_ptr bias, int N, int C,
                           vkt_ptr out_half);
/* dinp += ..., dweight += ..., dbias += ... */
void vkt_layernorm_backward(vkt_backend *be, vkt_ptr dinp, vkt_ptr dweight, vkt_ptr dbias,
                            vkt_ptr dout, vkt_ptr inp, vkt_ptr weight, vkt_ptr mean,
                            vkt_ptr rstd, int N, int C);

/* The single GEMM entry point. Row-major, packed:
 *   C(M,N) = alpha * op(A) * op(B) + beta * C + bias
 * (op(A) and op(B) rounded to fp16 first under precision fp16: see vkt_backend_set_option)
 * A and B may each be fp16 tensors (vkt_half_at, written by vkt_to_half): their values are
 * used as they are (already fp16, so rounding them again changes nothing), and a GPU's
 * staging reads half the bytes. C and the bias are fp32.
 * op(A) is (M,K): A is stored (M,K), or (K,M) when trans_a. op(B) is (K,N): B is stored
 * (K,N), or (N,K) when trans_b. bias (N floats, broadcast over rows) is optional: pass
 * VKT_NULL_PTR. beta = 0 overwrites C (its old contents are never read). */
void vkt_matmul(vkt_backend *be, vkt_ptr c, vkt_ptr a, vkt_ptr b, vkt_ptr bias, int M, int N,
                int K, int trans_a, int trans_b, float alpha, float beta);
/* A matmul with GELU fused into its epilogue, the MLP's first layer: pre(M,N) = op(A) op(B)
 * + bias (vkt_matmul with alpha 1, beta 0), out(M,N) = gelu(pre) (vkt_gelu_forward) and its
 * fp16 copy out_half where given. The backend writes out while pre is still in registers
 * where it can (vulkan); elsewhere it is the two ops. */
void vkt_matmul_gelu(vkt_backend *be, vkt_ptr pre, vkt_ptr out, vkt_ptr a, vkt_ptr b,
                     vkt_ptr bias, int M, int N, int K, int trans_a, int trans_b,
                     vkt_ptr out_half);
/* dst(n, fp16) = src(n, fp32) rounded to fp16 as precision = fp16 rounds matmul operands
 * (nearest even; beyond fp16's range +-inf): the fp16 copies of weights and activations that
 * vkt_matmul then reads. dst is an fp16 tensor (vkt_half_at), src an fp32 one. */
void vkt_to_half(vkt_backend *be, vkt_ptr dst, vkt_ptr src, size_t n);
/* dbias(N) += column sums of dout(M,N): the bias half of a linear layer's backward. */
void vkt_bias_backward(vkt_backend *be, vkt_ptr dbias, vkt_ptr dout, int M, int N);

/* Causal multi-head self-attention, scale 1/sqrt(C/NH). qkv(B,T,3C) holds q, k, v; out(B,T,C).
 * lse(B,NH,T) receives each query row's log-sum-exp of its scaled scores (natural log): all
 * the backward needs to recompute the softmax probabilities p = exp(s - lse), so no T x T
 * matrix is ever stored (FlashAttention's bookkeeping). */
void vkt_attention_forward(vkt_backend *be, vkt_ptr out, vkt_ptr lse, vkt_ptr qkv, int B, int T,
                           int C, int NH, vkt_ptr out_half);
/* dqkv(B,T,3C) = gradient of the inputs (overwritten), from the forward's qkv, lse and output
 * out(B,T,C) (the softmax backward's row sums D = rowsum(dout o out), as FlashAttention-2
 * forms them; a backend may instead sum them from the probabilities). */
void vkt_attention_backward(vkt_backend *be, vkt_ptr dqkv, vkt_ptr dout, vkt_ptr qkv,
                            vkt_ptr lse, vkt_ptr out, int B, int T, int C, int NH);

/* GELU, tanh approximation. Backward overwrites dinp = dout * gelu'(inp); dinp may be dout. */
void vkt_gelu_forward(vkt_backend *be, vkt_ptr out, vkt_ptr inp, size_t n, vkt_ptr out_half);
void vkt_gelu_backward(vkt_backend *be, vkt_ptr dinp, vkt_ptr inp, vkt_ptr dout, size_t n);

/* out = a + b. Its backward is the identity on both inputs, so the model needs no op for it:
 * the residual stream's gradient buffer is passed through unchanged. */
void vkt_residual_forward(vkt_backend *be, vkt_ptr out, vkt_ptr a, vkt_ptr b, size_t n);
/* The residual addition and the LayerNorm that follows it, in one op: res(N,C) = a + b, then
 * vkt_layernorm_forward(out, mean, rstd, res, weight, bias, N, C, out_half); bit for bit the
 * two ops in sequence (the Vulkan backend runs them as one kernel: one pass fewer over res). */
void vkt_residual_layernorm_forward(vkt_backend *be, vkt_ptr res, vkt_ptr out, vkt_ptr mean,
                                    vkt_ptr rstd, vkt_ptr a, vkt_ptr b, vkt_ptr weight,
                                    vkt_ptr bias, int N, int C, vkt_ptr out_half);

/* Fused softmax + cross-entropy over logits(N,Vp), of which the first V columns are real
 * (padded columns are ignored). losses(N) = -log softmax(logits)[target]. When want_grad,
 * logits are overwritten in place by dlogits = (softmax - onehot(target)) * grad_scale, with
 * padded columns set to 0. A target < 0 is ignored: loss 0, gradient 0. targets are int32. */
void vkt_softmax_xent(vkt_backend *be, vkt_ptr losses, vkt_ptr logits, vkt_ptr targets, int N,
                      int V, int Vp, float grad_scale, int want_grad);

/* AdamW on n floats (llm.c's form, decoupled weight decay):
 *   g = grads * grad_scale * clip; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *   p -= lr * ( (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) + weight_decay * p )
 * t is the 1-based update count. Clipping is decided on the device, with no host round trip:
 * norm_sq (optional; one float on the device) holds the global sum of squares of the raw
 * gradients; with norm = sqrt(norm_sq) * grad_scale, clip = vkt_clip_factor(norm, max_norm).
 * A non-finite norm_sq skips the update: params, m and v stay as they were. */
typedef struct vkt_adamw_args {
    float lr, beta1, beta2, eps, weight_decay, grad_scale;
    int t;
    vkt_ptr norm_sq; /* VKT_NULL_PTR: no clipping, no skipping */
    float max_norm;  /* 0: no clipping */
    /* VKT_NULL_PTR, or an fp16 tensor (vkt_half_at) that also receives the updated params
     * rounded as vkt_to_half rounds: the weights' copy precision = fp16's matmuls read */
    vkt_ptr params_half;
} vkt_adamw_args;
/* The multiplier that clips a gradient of global L2 norm `norm` to max_norm (0 = never). */
static inline float vkt_clip_factor(float norm, float max_norm) {
    return max_norm > 0 && norm > max_norm ? max_norm / norm : 1.0f;
}
void vkt_adamw(vkt_backend *be, vkt_ptr params, vkt_ptr grads, vkt_ptr m, vkt_ptr v, size_t n,
               const vkt_adamw_args *args);

/* out[0] (one float) = sum of squares of x(n): the building block of the global grad norm. */
void vkt_sumsq(vkt_backend *be, vkt_ptr out, vkt_ptr x, size_t n);
/* out[0] (one float) += scale * sum of x(n): losses accumulate on the device. */
void vkt_sum_into(vkt_backend *be, vkt_ptr out, vkt_ptr x, size_t n, float scale);
/* x *= s */
void vkt_scale(vkt_backend *be, vkt_ptr x, float s, size_t n);

#endif
