/* Internal to the opencl backend: one device's state (context, in-order queue, the program of
 * every kernel in cl/ (*.cl), buffers) and the helpers the ops are written with. */
#ifndef VKT_CL_CONTEXT_H
#define VKT_CL_CONTEXT_H

#include <stdint.h>

#include "backend/backend_impl.h"
#include "backend/opencl/cl_device.h"

struct vkt_buf {
    cl_mem mem;
    size_t size;
};

typedef struct vkt_cl_kernel {
    const char *name;
    cl_kernel k;
} vkt_cl_kernel;

typedef struct vkt_cl_ctx {
    vkt_backend *be; /* its sticky error (vkt_cl_fail) and fault injection */
    const vkt_cl_fns *cl;
    const vkt_cl_device *dev;
    int index; /* within the opencl backend: the N of opencl:N */
    cl_context context;
    cl_command_queue queue;
    cl_program program; /* built on first use (after cache_dir is known) */
    vkt_cl_kernel kernels[48];
    int nkernels;
    char cache_dir[1024];
    vkt_buf *scratch;       /* attention backward's row dots; grows */
    vkt_buf *round_a, *round_b; /* fp16-rounded matmul operands (precision = fp16) */
    int precision_f16;
    /* profiling: one event per enqueued command while on, read back at synchronize */
    int prof_on;
    cl_event *prof_events;
    const char **prof_names;
    int prof_n, prof_cap;
    vkt_profile_table prof;
    char tune_note[512]; /* what the GEMM tuning decided, printed once */
    int gemm_ready;   /* the tuning decision is made (cl_gemm.c) */
    int tune_request; /* option "gemm_tune": 0 auto, 1 force, -1 off */
} vkt_cl_ctx;

static inline vkt_cl_ctx *vkt_cl(vkt_backend *be) { return (vkt_cl_ctx *)be->ctx; }

/* A device failure inside an op (ops return nothing): records "<call> failed: <CL error>"
 * as the backend's sticky error (backend.h, vkt_backend_error); the op then stops, and every
 * later one is a no-op. hint may be NULL. */
void vkt_cl_fail(vkt_cl_ctx *c, const char *call, cl_int rc, const char *hint);
static inline int vkt_cl_failed(const vkt_cl_ctx *c) { return c->be->failed; }

/* The kernel named `name` of the program (built from the embedded sources or the on-disk
 * binary cache on first use; a build failure prints the build log and fails the device);
 * NULL once the device has failed. */
cl_kernel vkt_cl_kernel_get(vkt_cl_ctx *c, const char *name);

/* Kernel arguments: a buffer (its cl_mem; NULL when absent) with its element offset, or a
 * plain value. */
typedef struct vkt_cl_arg {
    size_t size;
    const void *ptr;
} vkt_cl_arg;
#define CL_VAL(v) ((vkt_cl_arg){sizeof(v), &(v)})

/* Enqueues kernel `name` over `global` work-items (rounded up to multiples of `local`) in
 * `dims` dimensions with the given arguments; profiled under `name` when profiling is on. */
void vkt_cl_launch(vkt_cl_ctx *c, const char *name, int dims, const size_t *global,
                   const size_t *local, int nargs, const vkt_cl_arg *args);

/* The event slot for one more profiled command named `name` (NULL when profiling is off). */
cl_event *vkt_cl_prof_event(vkt_cl_ctx *c, const char *name);
/* Waits for the queue and adds the profiled commands' device times to the table (waits for
 * nothing once the device has failed). */
void vkt_cl_finish(vkt_cl_ctx *c);

vkt_buf *vkt_cl_alloc_buf(vkt_cl_ctx *c, size_t bytes, char *err, size_t errlen);
void vkt_cl_free_buf(vkt_cl_ctx *c, vkt_buf *b);
/* *slot, grown to at least `bytes` first (the old buffer released; queued commands keep it
 * alive); NULL when out of memory, after failing the device with a message naming `what`. */
vkt_buf *vkt_cl_scratch(vkt_cl_ctx *c, vkt_buf **slot, size_t bytes, const char *what);

void vkt_cl_gemm_shutdown(vkt_cl_ctx *c);

/* The embedded kernel sources (generated from cl/ (*.cl) at build time). */
extern const char vkt_cl_source[];

#endif
