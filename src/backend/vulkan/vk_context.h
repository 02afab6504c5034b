/* Internal to the vulkan backend: the per-device state (VkDevice, queue, the one command
 * buffer being recorded, the memory sub-allocator, the pipeline registry) shared by
 * vk_context.c, vk_memory.c, vk_pipeline.c and vk_ops.c. */
#ifndef VKT_VK_CONTEXT_H
#define VKT_VK_CONTEXT_H

#include <stdio.h>
#include <stdlib.h>

#include "backend/backend_impl.h"
#include "backend/vkt_spirv.h"
#include "backend/vulkan/vk_device.h"

/* A Vulkan call that can fail at run time (what a driver may return: a lost device, memory):
 * a failure becomes the backend's sticky error (backend.h, vkt_backend_error), naming the
 * call and the result, and the expression is nonzero. The caller then stops issuing work:
 *     if (VKT_VK_TRY(c, vkEndCommandBuffer, (c->cmd))) return;                          */
#define VKT_VK_TRY(c, fn, args) vkt_vk_check((c), #fn, (c)->d.fn args)
/* Program invariants (a bug in vktrain, never a driver's answer) stop with file:line. */
#define VKT_VK_ASSERT(cond)                                                                   \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond);      \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

#define VKT_VK_ALIGN 256

/* A free or used range inside a block (a doubly linked list in address order). */
typedef struct vkt_vk_range vkt_vk_range;

typedef struct vkt_vk_block {
    VkDeviceMemory mem;
    VkBuffer buffer; /* covers the whole block */
    VkDeviceSize size;
    vkt_vk_range *ranges; /* address order; free ones coalesced */
} vkt_vk_block;

struct vkt_buf {
    int block;
    VkDeviceSize off, size;
    vkt_buf *next_dead; /* freed while queued work may still use it */
};

typedef struct vkt_vk_pipeline vkt_vk_pipeline; /* vk_pipeline.c */

/* A byte range of one VkBuffer that a command reads or writes (vkt_vk_order). */
typedef struct vkt_vk_span {
    VkBuffer buf;
    VkDeviceSize lo, hi; /* [lo, hi) */
    int write;
} vkt_vk_span;
#define VKT_VK_MAX_SPANS 128 /* kept since the last barrier; a full list forces one */

/* Census mode: per dispatch, what it would launch and touch (tests of the launch sizes at
 * model sizes lavapipe cannot run). */
typedef struct vkt_vk_census_entry {
    const char *name;  /* the shader variant */
    uint32_t groups;   /* workgroups */
    uint64_t bytes;    /* bytes its bindings cover */
    int barrier;       /* a barrier was recorded before it */
} vkt_vk_census_entry;
typedef struct vkt_vk_census {
    vkt_vk_census_entry *e;
    int n, cap;
} vkt_vk_census;

typedef struct vkt_vk_ctx {
    vkt_backend *be; /* its sticky error (vkt_vk_check) and fault injection */
    const vkt_vk_physdev *phys;
    vkt_vk_device_fns d;
    VkDevice dev;
    VkQueue queue;
    uint32_t queue_family;
    VkCommandPool pool;
    VkCommandBuffer cmd;
    VkFence fence;
    int recording;  /* cmd has begun */
    int pending;    /* commands recorded since the last flush */
    int fail_wait;  /* VKT_FAULT_INJECT=download:N: the next fence wait reports a lost device */
    int fp64;       /* shaderFloat64 enabled: the *_f64 shader variants are used */
    int shader_f16; /* shaderFloat16 enabled: the fp16 matmul tiers may run */
    int subgroup_ballot; /* subgroupBroadcast in compute: the direct matmul tiers may run */
    int coopmat_on; /* VK_KHR_cooperative_matrix and the memory model enabled */
    int cm2_on;     /* VK_NV_cooperative_matrix2 enabled (the coopmat2 tier) */
    int storage16;  /* storageBuffer16BitAccess enabled: fp16 tensors read as fp16 (the
                     * *_s16 matmul variants, coopmat2) */
    int size_control; /* pipelines may require a subgroup size (full subgroups) */
    int precision_f16; /* option precision = fp16: only tiers that round to fp16 are auto */
    int attention_exact; /* option attention = exact: attention.comp instead of flash */
    int attention_noted; /* the fallback from flash attention has been said */
    uint64_t submits, dispatches, barriers; /* printed at shutdown (VKT_VULKAN_STATS=1) */
    /* ordering (vkt_vk_order): what the commands since the last barrier read and wrote */
    vkt_vk_span spans[VKT_VK_MAX_SPANS];
    int nspans;
    int since_barrier;  /* commands recorded since the last barrier */
    int all_barriers;   /* VKT_VULKAN_BARRIERS=all: a barrier between any two commands */
    int no_barriers;    /* VKT_VULKAN_BARRIERS=none: none at all (wrong: a test knob) */
    int push_desc;      /* VK_KHR_push_descriptor enabled: no descriptor sets are allocated */
    PFN_vkCmdPushDescriptorSetKHR push_set;
    /* census mode (tests, vkt_vk_census_begin): commands are checked, ordered and counted
     * but not recorded, and downloads read zeros; nothing reaches the device */
    int census;
    vkt_vk_census *census_log;
    VkDeviceSize census_saved_range;
    VkDeviceSize max_range; /* bytes one descriptor may cover (maxStorageBufferRange, or
                             * VKT_VULKAN_MAX_RANGE to test the ops' splitting) */
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties memprops;

    /* memory (vk_memory.c) */
    vkt_vk_block *blocks; /* grown as needed: a model in many buffers takes many blocks */
    int nblocks, cap_blocks;
    uint32_t device_type; /* memory type index of the blocks */
    VkDeviceSize block_size, heap_size, max_alloc;
    vkt_buf *dead; /* frees deferred to the next flush */
    VkBuffer staging;
    VkDeviceMemory staging_mem;
    void *staging_map;
    VkDeviceSize staging_size, staging_used;
    int staging_coherent;
    /* downloads: a host-cached buffer where the device has such memory (reading the ring's
     * write-combined memory is slow on discrete GPUs), made at the first download; without
     * one (or when it cannot be made) downloads use the ring */
    int readback_tried, readback_coherent;
    VkBuffer readback;
    VkDeviceMemory readback_mem;
    void *readback_map;
    VkDeviceSize readback_size;

    /* pipelines (vk_pipeline.c) */
    vkt_vk_pipeline *pipelines;
    VkPipelineCache cache;
    /* descriptor pools without push descriptors: a step that spends one takes the next
     * (made on demand), so recording never has to submit; all are reset after each flush */
    VkDescriptorPool *dpools;
    int ndpools, cap_dpools, dpool_at;

    vkt_buf *scratch; /* attention backward's row dots; grows */
    vkt_buf *partials; /* the two-stage reductions' partial sums (vk_ops.c); grows */

    /* matmul tiers and the on-disk caches (vk_matmul.c) */
    char cache_dir[4096];   /* "" = no caches written or read */
    int matmul_request;     /* VKT_VK_TIER_AUTO (0) or 1 + a tier index */
    int matmul_reported;    /* the choice has been printed */
    struct vkt_vk_tier_class *tier_classes; /* decided shape classes (auto) */
    uint32_t verified, rejected; /* tiers (bits) whose probe matched the fp32 tier, or not */
    vkt_buf *splitk;             /* split-K partial products; grows */
    /* profiling (vk_profile.c): timestamp pairs around each command of a submission */
    uint32_t prof_valid_bits; /* the queue family's timestampValidBits; 0 = no timestamps */
    uint64_t prof_mask;       /* of those bits */
    int prof_on, prof_open;   /* profiling; a begin is written without its end */
    int prof_depth;           /* begins without their end, nested ones included */
    VkQueryPool prof_pool;
    uint32_t prof_cap, prof_used, prof_want; /* queries: in the pool, written, wanted next */
    const char **prof_names;  /* per pair: the command's name */
    uint32_t *prof_groups;    /* per pair: its workgroups (dispatches; 0 for other commands) */
    vkt_profile_table prof;   /* totals since enabling */
} vkt_vk_ctx;

static inline vkt_vk_ctx *vkt_vk(vkt_backend *be) { return (vkt_vk_ctx *)be->ctx; }

/* vk_context.c */
int vkt_vk_context_init(vkt_backend *be, char *err, size_t errlen);
void vkt_vk_context_shutdown(vkt_backend *be);
/* 1 when r is a failure, after recording "<call> failed: <VK_ERROR_...>" as the sticky error */
int vkt_vk_check(vkt_vk_ctx *c, const char *call, VkResult r);
/* The device has failed: record nothing more, issue nothing more. */
static inline int vkt_vk_failed(const vkt_vk_ctx *c) { return c->be->failed; }
/* The open command buffer (begun if needed); VK_NULL_HANDLE once the device has failed (the
 * caller then records nothing). */
VkCommandBuffer vkt_vk_cmd(vkt_vk_ctx *c);
void vkt_vk_barrier(vkt_vk_ctx *c);           /* orders everything before against after */
/* Called before recording a command that accesses spans s[0..n-1]: records a barrier first
 * when the command depends on one recorded since the last barrier (it reads what one wrote,
 * or writes what one read or wrote), then adds its spans. Independent commands (the three
 * GEMMs of a linear layer's backward) are left free to overlap. With profiling on, or under
 * VKT_VULKAN_BARRIERS=all, every command is ordered after the one before it. */
void vkt_vk_order(vkt_vk_ctx *c, const vkt_vk_span *s, int n);
/* The span of bytes [off, off + bytes) of buffer b (bytes 0: to the end of b). */
vkt_vk_span vkt_vk_span_of(vkt_vk_ctx *c, vkt_ptr p, size_t bytes, int write);
void vkt_vk_flush(vkt_vk_ctx *c);             /* submit, wait, recycle (submits nothing
                                               * once the device has failed) */

/* Census mode (tests): from begin, commands are checked, ordered and logged into *log
 * instead of recorded; downloads read zeros. Queued work is flushed first. range, when not
 * 0, stands in for the device's storage-buffer range until end (the ops split what one
 * descriptor cannot cover, so a CPU driver's 128 MiB would census splits a GPU never makes).
 * end leaves census mode. */
void vkt_vk_census_begin(vkt_vk_ctx *c, vkt_vk_census *log, VkDeviceSize range);
void vkt_vk_census_end(vkt_vk_ctx *c);

/* vk_memory.c */
int vkt_vk_memory_init(vkt_vk_ctx *c, char *err, size_t errlen);
void vkt_vk_memory_shutdown(vkt_vk_ctx *c);
vkt_buf *vkt_vk_alloc(vkt_vk_ctx *c, size_t bytes, char *err, size_t errlen);
void vkt_vk_free(vkt_vk_ctx *c, vkt_buf *b);  /* deferred until the next flush */
void vkt_vk_free_dead(vkt_vk_ctx *c);         /* after a flush: release deferred frees */
void vkt_vk_upload(vkt_vk_ctx *c, vkt_ptr dst, const void *src, size_t bytes);
void vkt_vk_download(vkt_vk_ctx *c, void *dst, vkt_ptr src, size_t bytes);
VkBuffer vkt_vk_buffer_of(vkt_vk_ctx *c, const vkt_buf *b);
VkDeviceSize vkt_vk_offset_of(const vkt_buf *b); /* of the buffer's start in its VkBuffer */

/* vk_pipeline.c */
int vkt_vk_pipelines_init(vkt_vk_ctx *c);   /* 0, or -1 with the sticky error */
void vkt_vk_pipelines_shutdown(vkt_vk_ctx *c);
void vkt_vk_pipelines_reset_sets(vkt_vk_ctx *c); /* after a flush */
int vkt_vk_pipelines_count(const vkt_vk_ctx *c);  /* created so far (tests) */
/* Records one dispatch of shader `name` with bufs bound at bindings 0..nbind-1 (a NULL buf is
 * replaced by bufs[0]). Each binding's window starts at its pointer rounded down to the
 * device's offset alignment; elem_off[i] receives the pointer's element offset in
 * that window, for the push constants: in floats, or in halves for an fp16 tensor. Call vkt_vk_bind first, then vkt_vk_dispatch. */
#define VKT_VK_MAX_BINDINGS 10 /* a fused op's most (residual + LayerNorm + fp16 copy: 9) */
typedef struct vkt_vk_bindings {
    int n;
    vkt_ptr ptr[VKT_VK_MAX_BINDINGS];
    size_t bytes[VKT_VK_MAX_BINDINGS]; /* what the shader may touch from ptr on; 0 = to the
                                         * end of its buffer */
    uint32_t elem_off[VKT_VK_MAX_BINDINGS];
} vkt_vk_bindings;
/* bytes[i]: the extent binding i may access from its pointer on (its descriptor covers that
 * much, and the ordering of commands is decided on it); bytes NULL, or an entry 0: to the
 * end of the allocation. */
void vkt_vk_bind(vkt_vk_ctx *c, vkt_vk_bindings *b, int n, const vkt_ptr *ptrs,
                 const size_t *bytes);
/* Bytes a binding at p can see: what its window (see vkt_vk_dispatch) covers past p. */
size_t vkt_vk_visible(vkt_vk_ctx *c, vkt_ptr p);
/* What a dispatch asks of its pipeline: the embedded shader variant, its specialization
 * constants (a pipeline per distinct set), and the workgroup size the caller computed its
 * grid for, which the registry checks against the shader's (read from its SPIR-V with the
 * constants applied) and the device's limits. */
#define VKT_VK_MAX_SPEC 12
typedef struct vkt_vk_shader {
    const char *name;
    uint32_t local[3];
    int nspec;
    vkt_spec_const spec[VKT_VK_MAX_SPEC];
    /* nonzero: the kernel is laid out for subgroups of exactly this many invocations, all
     * full; the pipeline requires it (subgroup size control) or it must be the only size the
     * device has (vkt_vk_subgroup_fixed) */
    uint32_t subgroup;
} vkt_vk_shader;
/* A shader without specialization, run in workgroups of (x, 1, 1). */
static inline vkt_vk_shader vkt_vk_shader_1d(const char *name, uint32_t x) {
    vkt_vk_shader s = {name, {x, 1, 1}, 0, {{0, 0}}, 0};
    return s;
}
/* A 1-D launch of `threads` threads in workgroups of `wg`, spread over x and y (x at most
 * 65535 workgroups; shaders use flat_index(), common.glsl). */
static inline void vkt_vk_grid1d(size_t threads, uint32_t wg, uint32_t *gx, uint32_t *gy) {
    size_t groups = (threads + wg - 1) / wg;
    if (groups == 0) {
        *gx = *gy = 0;
        return;
    }
    *gx = groups < 65535u ? (uint32_t)groups : 65535u;
    *gy = (uint32_t)((groups + *gx - 1) / *gx);
}
/* Whether a pipeline can get subgroups of exactly `size` full invocations on this device:
 * by requiring it (subgroup size control), or because it is the device's only size. */
int vkt_vk_subgroup_fixed(const vkt_vk_ctx *c, uint32_t size);
void vkt_vk_dispatch(vkt_vk_ctx *c, const vkt_vk_shader *sh, const vkt_vk_bindings *b,
                     const void *push, uint32_t push_size, uint32_t gx, uint32_t gy,
                     uint32_t gz);

/* vk_profile.c: with profiling off these return at once. Bracket a command with begin/end;
 * call reserve first where a flush between it and begin would invalidate recorded state. */
void vkt_vk_prof_reserve(vkt_vk_ctx *c);
void vkt_vk_prof_begin(vkt_vk_ctx *c, const char *name);
void vkt_vk_prof_end(vkt_vk_ctx *c);
/* The workgroups of the dispatch just begun (its profile entry reports min and median). */
void vkt_vk_prof_groups(vkt_vk_ctx *c, uint32_t groups);
void vkt_vk_prof_collect(vkt_vk_ctx *c); /* flush, after the fence */
void vkt_vk_prof_shutdown(vkt_vk_ctx *c);
int vkt_vk_op_profile_enable(vkt_backend *be, int on);
int vkt_vk_op_profile_read(vkt_backend *be, vkt_profile_entry *out, int max);

/* vk_matmul.c: GEMM tiers ("fp32", "fp16", "coopmat", "coopmat2", the direct ones), how a
 * matmul is dispatched, precision, the caches under cache_dir */
#define VKT_VK_TIER_AUTO 0 /* matmul_request: 0 = auto, else 1 + a tier index */
int vkt_vk_set_option(vkt_backend *be, const char *key, const char *value, char *err,
                      size_t errlen);
/* A tier's index by name, -1 when there is none. */
int vkt_vk_matmul_tier_index(const char *name);
/* The tier for a matmul of this shape (decides, checks, times and caches under auto). */
int vkt_vk_matmul_tier(vkt_backend *be, int M, int N, int K);
/* How one matmul runs with tier t: the variant and its specialization, the block of C each
 * workgroup covers, and the K split (splits workgroups along z, k_split deep each; 1 and K
 * when not split). -1 when no block of the tier fits the device. */
typedef struct vkt_vk_gemm_plan {
    vkt_vk_shader sh;
    uint32_t bm, bn, bk, splits, k_split; /* block of C, K tile, K split */
} vkt_vk_gemm_plan;
int vkt_vk_matmul_plan_tier(vkt_backend *be, int t, int M, int N, int K, vkt_vk_gemm_plan *p);
/* The fused GELU epilogue of vkt_matmul_gelu: out = gelu(C), out_half its fp16 copy (or
 * VKT_NULL_PTR). */
typedef struct vkt_vk_gelu_out {
    vkt_ptr out, out_half;
} vkt_vk_gelu_out;
#define VKT_VK_FUSED_GELU 1      /* the matmul wrote gelu->out */
#define VKT_VK_FUSED_GELU_HALF 2 /* and gelu->out_half */
/* Records C = alpha op(A) op(B) + beta C + bias with tier t (-1: vkt_vk_matmul_tier's
 * choice), split-K and its reduction included; every tensor within one descriptor's range.
 * With gelu (else NULL) the epilogue also writes what the tier's kernels can of it and
 * returns which (VKT_VK_FUSED_*: the coopmat2 tier none, a split matmul or a variant without
 * 16-bit storage not the fp16 copy); the caller runs the rest. 0 without gelu. */
int vkt_vk_matmul_record(vkt_backend *be, int t, vkt_ptr c, vkt_ptr a, vkt_ptr b, vkt_ptr bias,
                         int M, int N, int K, int trans_a, int trans_b, float alpha, float beta,
                         const vkt_vk_gelu_out *gelu);
/* The device's f16*f16+f32 subgroup fragment the coopmat tier (and flash attention's
 * cooperative-matrix variant) use; NULL when there is none. */
const vkt_vk_mma_shape *vkt_vk_mma_shape_of(const vkt_vk_ctx *c);
/* At shutdown, before the pipelines go: frees the tier state, saves the pipeline cache. */
void vkt_vk_matmul_shutdown(vkt_vk_ctx *c);

#endif
