/* Internal: the ops table each backend fills, and the backend instance. Only src/backend/
 * includes this; the rest of the program sees the opaque handles of vktrain/backend.h. */
#ifndef VKTRAIN_BACKEND_IMPL_H
#define VKTRAIN_BACKEND_IMPL_H

#include "vktrain/backend.h"

/* Per-name totals: host timing in backend.c, device timing in a backend (vulkan). Names are
 * kept by pointer: they must outlive the table (string literals, the shader table). */
typedef struct vkt_profile_table {
    struct vkt_profile_slot {
        const char *name;
        uint64_t calls;
        double total_ms;
        uint32_t *groups; /* workgroups of each call that reported them */
        uint32_t ngroups, capgroups;
    } *slots;
    int n, cap;
} vkt_profile_table;
void vkt_profile_table_add(vkt_profile_table *t, const char *name, double ms);
/* The same, with the call's workgroup count (0: none known): reported as min and median. */
void vkt_profile_table_add_groups(vkt_profile_table *t, const char *name, double ms,
                                  uint32_t groups);
void vkt_profile_table_clear(vkt_profile_table *t);
void vkt_profile_table_free(vkt_profile_table *t);
/* Copies up to max entries, largest total first; returns t->n. */
int vkt_profile_table_report(const vkt_profile_table *t, vkt_profile_entry *out, int max);

/* "(a, b)" -> "a, b": a parenthesized list from ops.def spliced into another */
#define VKT_UNPAREN(...) __VA_ARGS__
/* The function type of each compute op (ops.def): vkt_op_matmul_fn and so on. A backend
 * declares its entry points with them: `vkt_op_matmul_fn vkt_vk_op_matmul;`. */
#define VKT_OP(name, params, args) typedef void vkt_op_##name##_fn(vkt_backend *be, VKT_UNPAREN params);
#include "backend/ops.def"

typedef struct vkt_backend_ops {
    const char *name; /* "cpu" */

    /* device enumeration; note() may write why a backend has no devices (no driver) */
    int (*device_count)(void);
    int (*device_info)(int index, vkt_device_info *out);
    void (*note)(char *buf, size_t len);

    /* fills be->ctx; 0 = ok. NULL: the backend lists devices but cannot train yet (then every
     * entry below may be NULL too; vkt_backend_create refuses such a device). */
    int (*init)(vkt_backend *be, char *err, size_t errlen);
    void (*shutdown)(vkt_backend *be);
    void (*synchronize)(vkt_backend *be);
    double (*time_ms)(vkt_backend *be); /* optional: default host clock after synchronize */
    /* optional: vkt_backend_set_option; NULL = the backend has no options. It also sees
     * "precision" (already validated) and may refuse "fp16"; be->fp16_matmul is set after. */
    int (*set_option)(vkt_backend *be, const char *key, const char *value, char *err,
                      size_t errlen);
    /* optional, together: device-side op timing (vkt_profile_enable/report). Without them,
     * backend.c times each public call on the host, which is right only for a backend whose
     * ops finish before they return (cpu). profile_enable returns 0 or -1 (cannot time). */
    int (*profile_enable)(vkt_backend *be, int on);
    int (*profile_read)(vkt_backend *be, vkt_profile_entry *out, int max);

    vkt_buf *(*alloc)(vkt_backend *be, size_t bytes, char *err, size_t errlen);
    void (*free)(vkt_backend *be, vkt_buf *buf);
    uint64_t (*own_bytes)(vkt_backend *be); /* optional: vkt_backend_own_bytes; NULL = 0 */
    void (*upload)(vkt_backend *be, vkt_ptr dst, const void *src, size_t bytes);
    void (*download)(vkt_backend *be, void *dst, vkt_ptr src, size_t bytes);
    void (*fill)(vkt_backend *be, vkt_ptr dst, float value, size_t nfloats);
    void (*copy)(vkt_backend *be, vkt_ptr dst, vkt_ptr src, size_t bytes);

    /* the compute ops: one field per line of ops.def, vkt_op_<name>_fn *<name> */
#define VKT_OP(name, params, args) vkt_op_##name##_fn *name;
#include "backend/ops.def"
} vkt_backend_ops;

/* Test knob VKT_FAULT_INJECT=<kind>:<N> (docs/reliability.md): the Nth call of that kind on a
 * backend fails as the driver would, through the same path a real failure takes. */
typedef enum vkt_fault_kind {
    VKT_FAULT_NONE,
    VKT_FAULT_SUBMIT,   /* vulkan: vkQueueSubmit; opencl: clEnqueueNDRangeKernel; cpu: round trip */
    VKT_FAULT_ALLOC,    /* vulkan: vkAllocateMemory; opencl: clCreateBuffer; cpu: vkt_alloc */
    VKT_FAULT_DOWNLOAD, /* vulkan: the fence wait of a download; opencl: clEnqueueReadBuffer */
    VKT_FAULT_KINDS
} vkt_fault_kind;

struct vkt_backend {
    const vkt_backend_ops *ops;
    vkt_device_info info;
    int device;  /* index within the backend */
    uint64_t syncs; /* host round trips so far (vkt_sync_count) */
    int fp16_matmul; /* option precision = fp16: matmul operands are rounded to fp16 */
    void *ctx;   /* the backend's own state */
    int host_timing;             /* time each call on the host (backends without profile_*) */
    vkt_profile_table host_prof; /* its totals */
    /* the sticky device error (first failure wins): once set, backend.c turns every op into
     * a no-op and synchronize/download return -1 */
    int failed;
    char error[768];
    vkt_fault_kind fault_kind; /* VKT_FAULT_INJECT, read at vkt_backend_create */
    uint64_t fault_at, fault_seen[VKT_FAULT_KINDS];
    int fault_fired;
    char fault_spec[48];
};

/* The name of the first compute op (ops.def order) that ops leaves empty, or NULL when it
 * fills them all: vkt_backend_create refuses such a backend by that name. */
const char *vkt_backend_missing_op(const vkt_backend_ops *ops);

/* Records a device failure as the backend's sticky error, unless one is already recorded:
 * "<backend>:<N> (<device name>): <call> failed: <result>[. HINT: <hint>]", e.g. call
 * "vkQueueSubmit", result "VK_ERROR_DEVICE_LOST". hint may be NULL. */
void vkt_backend_fail(vkt_backend *be, const char *call, const char *result, const char *hint);
/* The same with a message of its own after the device prefix. */
void vkt_backend_failf(vkt_backend *be, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* 1 when this call is the one VKT_FAULT_INJECT names (the Nth of its kind): the caller then
 * fails it with a realistic result code. Counts every call of the kind. */
int vkt_fault_hit(vkt_backend *be, vkt_fault_kind kind);
/* " (injected: VKT_FAULT_INJECT=...)" once the fault has fired, else "": for messages that
 * report a failure without recording it (an allocation's err). */
const char *vkt_fault_note(const vkt_backend *be);

/* The compiled-in backends, in --list-devices order. */
extern const vkt_backend_ops vkt_cpu_backend_ops;
#ifdef VKT_USE_VULKAN
extern const vkt_backend_ops vkt_vulkan_backend_ops;
#endif
#ifdef VKT_USE_OPENCL
extern const vkt_backend_ops vkt_opencl_backend_ops;
#endif

#endif
