/* One OpenCL device's state: context and in-order queue, buffers, the program of every kernel
 * (built once from the embedded cl/ (*.cl) sources, its binary cached on disk), kernel launches
 * and event-based profiling. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/opencl/cl_context.h"
#include "util/fs.h"
#include "util/hash.h"

void vkt_cl_fail(vkt_cl_ctx *c, const char *call, cl_int rc, const char *hint) {
    vkt_backend_fail(c->be, call, vkt_cl_error_name(rc), hint);
}

/* ---- memory ---- */

vkt_buf *vkt_cl_alloc_buf(vkt_cl_ctx *c, size_t bytes, char *err, size_t errlen) {
    if (bytes == 0) bytes = 4;
    if (bytes > c->dev->max_alloc) {
        snprintf(err, errlen,
                 "opencl:%d (%s): cannot allocate %zu bytes: the device's largest allocation "
                 "(CL_DEVICE_MAX_MEM_ALLOC_SIZE) is %llu bytes",
                 c->index, c->dev->info.name, bytes, (unsigned long long)c->dev->max_alloc);
        return NULL;
    }
    cl_int rc = CL_SUCCESS;
    cl_mem m = NULL;
    if (vkt_fault_hit(c->be, VKT_FAULT_ALLOC)) /* VKT_FAULT_INJECT=alloc:N */
        rc = CL_MEM_OBJECT_ALLOCATION_FAILURE;
    else
        m = c->cl->clCreateBuffer(c->context, CL_MEM_READ_WRITE, bytes, NULL, &rc);
    vkt_buf *b = m && rc == CL_SUCCESS ? malloc(sizeof *b) : NULL;
    if (!b) {
        if (m) c->cl->clReleaseMemObject(m);
        snprintf(err, errlen,
                 "opencl:%d (%s): cannot allocate %zu bytes: clCreateBuffer failed: %s; the "
                 "device has %llu bytes of global memory%s. HINT: a smaller batch_size or model",
                 c->index, c->dev->info.name, bytes, vkt_cl_error_name(rc),
                 (unsigned long long)c->dev->info.memory_bytes, vkt_fault_note(c->be));
        return NULL;
    }
    b->mem = m;
    b->size = bytes;
    return b;
}

vkt_buf *vkt_cl_scratch(vkt_cl_ctx *c, vkt_buf **slot, size_t bytes, const char *what) {
    if (*slot && (*slot)->size >= bytes) return *slot;
    char err[512];
    vkt_cl_free_buf(c, *slot); /* queued commands keep it alive until they finish */
    *slot = vkt_cl_alloc_buf(c, bytes, err, sizeof err);
    if (!*slot)
        vkt_backend_failf(c->be, "%s: no device memory for %zu bytes. HINT: a smaller "
                          "batch_size or model", what, bytes);
    return *slot;
}

void vkt_cl_free_buf(vkt_cl_ctx *c, vkt_buf *b) {
    if (!b) return;
    /* releasing is safe while queued commands still use it: OpenCL keeps it alive */
    c->cl->clReleaseMemObject(b->mem);
    free(b);
}

/* ---- the program ---- */

/* -cl-std=CL1.2, plus VKT_OPENCL_BUILD_OPTIONS when set (e.g. -cl-fast-relaxed-math; the
 * tests use it to provoke a build failure). Part of the binary cache's key. */
static const char *build_options(void) {
    static char opts[512];
    const char *extra = getenv("VKT_OPENCL_BUILD_OPTIONS");
    snprintf(opts, sizeof opts, "-cl-std=CL1.2%s%s", extra && *extra ? " " : "",
             extra && *extra ? extra : "");
    return opts;
}

/* cache_dir/opencl/<hash of source, options, device, driver and platform version>.bin */
static void binary_path(vkt_cl_ctx *c, char *buf, size_t len) {
    const vkt_cl_device *d = c->dev;
    uint64_t h = VKT_HASH64_SEED;
    h = vkt_hash64_update(h, vkt_cl_source, strlen(vkt_cl_source));
    h = vkt_hash64_update(h, build_options(), strlen(build_options()));
    h = vkt_hash64_update(h, d->info.name, strlen(d->info.name));
    h = vkt_hash64_update(h, d->driver_version, strlen(d->driver_version));
    h = vkt_hash64_update(h, d->platform_version, strlen(d->platform_version));
    snprintf(buf, len, "%s/opencl/%016llx.bin", c->cache_dir, (unsigned long long)h);
}

/* Builds prog for the device; on failure (from source) prints the compiler's log and fails
 * the device. */
static cl_int build(vkt_cl_ctx *c, cl_program prog, int from_binary) {
    cl_int rc = c->cl->clBuildProgram(prog, 1, &c->dev->id, build_options(), NULL, NULL);
    if (rc == CL_SUCCESS || from_binary) return rc;
    size_t n = 0;
    c->cl->clGetProgramBuildInfo(prog, c->dev->id, CL_PROGRAM_BUILD_LOG, 0, NULL, &n);
    char *log = malloc(n + 1);
    if (log) {
        log[0] = 0;
        c->cl->clGetProgramBuildInfo(prog, c->dev->id, CL_PROGRAM_BUILD_LOG, n, log, NULL);
        log[n] = 0;
    }
    fprintf(stderr, "vktrain: opencl:%d (%s): building the kernels (cl/ (*.cl)) failed: %s\n"
            "build log:\n%s\n",
            c->index, c->dev->info.name, vkt_cl_error_name(rc), log ? log : "(none)");
    free(log);
    vkt_cl_fail(c, "clBuildProgram (the kernels of cl/, build log above)", rc, NULL);
    return rc;
}

static cl_program from_cache(vkt_cl_ctx *c, const char *path) {
    unsigned char *data = NULL;
    size_t len = 0;
    char err[256];
    if (!c->cache_dir[0] || !vkt_file_exists(path) ||
        vkt_read_file(path, &data, &len, err, sizeof err))
        return NULL;
    const unsigned char *bins[1] = {data};
    cl_int status = CL_SUCCESS, rc = CL_SUCCESS;
    cl_program p = c->cl->clCreateProgramWithBinary(c->context, 1, &c->dev->id, &len, bins,
                                                    &status, &rc);
    free(data);
    if (!p || rc != CL_SUCCESS || status != CL_SUCCESS) {
        if (p) c->cl->clReleaseProgram(p);
        return NULL;
    }
    if (build(c, p, 1) != CL_SUCCESS) { /* a stale or corrupt binary: rebuild from source */
        c->cl->clReleaseProgram(p);
        return NULL;
    }
    return p;
}

static void to_cache(vkt_cl_ctx *c, cl_program p, const char *path) {
    size_t len = 0;
    if (!c->cache_dir[0] ||
        c->cl->clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof len, &len, NULL) !=
            CL_SUCCESS ||
        len == 0)
        return;
    unsigned char *data = malloc(len);
    unsigned char *ptrs[1] = {data};
    char dir[1100], err[256];
    snprintf(dir, sizeof dir, "%s/opencl", c->cache_dir);
    if (data && c->cl->clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof ptrs, ptrs, NULL) ==
                    CL_SUCCESS &&
        vkt_mkdirs(dir, err, sizeof err) == 0)
        vkt_write_file_atomic(path, data, len, err, sizeof err); /* a cache: failure is fine */
    free(data);
}

static void ensure_program(vkt_cl_ctx *c) {
    if (c->program) return;
    char path[1200];
    binary_path(c, path, sizeof path);
    c->program = from_cache(c, path);
    if (c->program) return;
    const char *src[1] = {vkt_cl_source};
    cl_int rc = CL_SUCCESS;
    cl_program p = c->cl->clCreateProgramWithSource(c->context, 1, src, NULL, &rc);
    if (!p || rc != CL_SUCCESS) {
        if (p) c->cl->clReleaseProgram(p);
        vkt_cl_fail(c, "clCreateProgramWithSource", rc, NULL);
        return;
    }
    if (build(c, p, 0) != CL_SUCCESS) {
        c->cl->clReleaseProgram(p);
        return;
    }
    c->program = p;
    to_cache(c, p, path);
}

cl_kernel vkt_cl_kernel_get(vkt_cl_ctx *c, const char *name) {
    for (int i = 0; i < c->nkernels; i++)
        if (!strcmp(c->kernels[i].name, name)) return c->kernels[i].k;
    if (vkt_cl_failed(c)) return NULL;
    ensure_program(c);
    if (!c->program) return NULL;
    cl_int rc = CL_SUCCESS;
    cl_kernel k = c->cl->clCreateKernel(c->program, name, &rc);
    if (!k || rc != CL_SUCCESS) {
        char call[96];
        snprintf(call, sizeof call, "clCreateKernel(%s)", name);
        vkt_cl_fail(c, call, rc, NULL);
        return NULL;
    }
    /* an invariant: the table is sized for the kernels of cl/ */
    if (c->nkernels == (int)(sizeof c->kernels / sizeof c->kernels[0])) {
        fprintf(stderr, "vktrain: internal error at %s:%d: more kernels than the table holds\n",
                __FILE__, __LINE__);
        abort();
    }
    c->kernels[c->nkernels++] = (vkt_cl_kernel){name, k};
    return k;
}

/* ---- launches and profiling ---- */

cl_event *vkt_cl_prof_event(vkt_cl_ctx *c, const char *name) {
    if (!c->prof_on) return NULL;
    if (c->prof_n == c->prof_cap) {
        int cap = c->prof_cap ? 2 * c->prof_cap : 256;
        cl_event *e = realloc(c->prof_events, (size_t)cap * sizeof *e);
        if (e) c->prof_events = e;
        const char **n = realloc(c->prof_names, (size_t)cap * sizeof *n);
        if (n) c->prof_names = n;
        if (!e || !n) return NULL; /* out of host memory: this command goes untimed */
        c->prof_cap = cap;
    }
    c->prof_names[c->prof_n] = name;
    c->prof_events[c->prof_n] = NULL; /* stays NULL when the enqueue fails */
    return &c->prof_events[c->prof_n++];
}

void vkt_cl_finish(vkt_cl_ctx *c) {
    /* after a failure nothing is waited for (a broken queue may never drain); the profiling
     * events are still released */
    if (!vkt_cl_failed(c)) {
        cl_int rc = c->cl->clFinish(c->queue);
        if (rc != CL_SUCCESS) vkt_cl_fail(c, "clFinish", rc, NULL);
    }
    for (int i = 0; i < c->prof_n; i++) {
        cl_ulong t0 = 0, t1 = 0;
        if (!c->prof_events[i]) continue;
        if (!vkt_cl_failed(c) &&
            c->cl->clGetEventProfilingInfo(c->prof_events[i], CL_PROFILING_COMMAND_START,
                                           sizeof t0, &t0, NULL) == CL_SUCCESS &&
            c->cl->clGetEventProfilingInfo(c->prof_events[i], CL_PROFILING_COMMAND_END,
                                           sizeof t1, &t1, NULL) == CL_SUCCESS)
            vkt_profile_table_add(&c->prof, c->prof_names[i], (double)(t1 - t0) * 1e-6);
        c->cl->clReleaseEvent(c->prof_events[i]);
    }
    c->prof_n = 0;
}

void vkt_cl_launch(vkt_cl_ctx *c, const char *name, int dims, const size_t *global,
                   const size_t *local, int nargs, const vkt_cl_arg *args) {
    cl_kernel k = vkt_cl_kernel_get(c, name); /* NULL once the device has failed */
    if (!k) return;
    for (int i = 0; i < nargs; i++) {
        cl_int rc = c->cl->clSetKernelArg(k, (cl_uint)i, args[i].size, args[i].ptr);
        if (rc != CL_SUCCESS) {
            char what[96];
            snprintf(what, sizeof what, "clSetKernelArg(%s, %d)", name, i);
            vkt_cl_fail(c, what, rc, NULL);
            return;
        }
    }
    size_t g[2];
    for (int d = 0; d < dims; d++) {
        if (global[d] == 0) return; /* an empty launch */
        g[d] = (global[d] + local[d] - 1) / local[d] * local[d];
    }
    /* VKT_FAULT_INJECT=submit:N: the Nth launch fails as a device out of resources would */
    cl_int rc = vkt_fault_hit(c->be, VKT_FAULT_SUBMIT)
                    ? CL_OUT_OF_RESOURCES
                    : c->cl->clEnqueueNDRangeKernel(c->queue, k, (cl_uint)dims, NULL, g, local,
                                                    0, NULL, vkt_cl_prof_event(c, name));
    if (rc != CL_SUCCESS) {
        char call[96];
        snprintf(call, sizeof call, "clEnqueueNDRangeKernel(%s)", name);
        vkt_cl_fail(c, call, rc,
                    rc == CL_MEM_OBJECT_ALLOCATION_FAILURE || rc == CL_OUT_OF_RESOURCES
                        ? "the device ran out of memory or resources: a smaller batch_size, "
                          "seq_len or model"
                        : NULL);
    }
}
