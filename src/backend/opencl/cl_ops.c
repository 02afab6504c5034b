/* The opencl backend's ops: device life, memory transfers, and one kernel launch (or two) per
 * op of include/vktrain/backend.h, from cl/ (*.cl). Everything goes into one in-order queue;
 * download and synchronize are the only waits, so a training step is one round trip. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/opencl/cl_ops.h"

/* Buffer and element offset as two kernel arguments (absent: NULL and 0). */
typedef struct mem_arg {
    cl_mem mem;
    cl_uint off;
} mem_arg;
static mem_arg M(vkt_ptr p) {
    mem_arg m = {p.buf ? p.buf->mem : NULL, (cl_uint)(p.off / 4)};
    return m;
}
#define ARG_MEM(m) {sizeof(cl_mem), &(m).mem}, {sizeof(cl_uint), &(m).off}
#define ARG(v) {sizeof(v), &(v)}
#define NARGS(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void launch1d(vkt_cl_ctx *c, const char *name, size_t n, size_t wg, int nargs,
                     const vkt_cl_arg *args) {
    size_t g[1] = {n}, l[1] = {wg};
    vkt_cl_launch(c, name, 1, g, l, nargs, args);
}

/* ---- device life ---- */

int vkt_cl_op_init(vkt_backend *be, char *err, size_t errlen) {
    const vkt_cl_device *d = vkt_cl_devices_get(be->device);
    const vkt_cl_fns *cl = vkt_cl_loader_open();
    if (!d || !cl) {
        snprintf(err, errlen, "opencl:%d: no such device", be->device);
        return 1;
    }
    vkt_cl_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of host memory");
        return 1;
    }
    c->be = be;
    c->cl = cl;
    c->dev = d;
    c->index = be->device;
    cl_int rc = CL_SUCCESS;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)d->platform,
                                     0};
    c->context = cl->clCreateContext(props, 1, &d->id, NULL, NULL, &rc);
    if (c->context && rc == CL_SUCCESS)
        c->queue = cl->clCreateCommandQueue(c->context, d->id, CL_QUEUE_PROFILING_ENABLE, &rc);
    if (!c->context || !c->queue || rc != CL_SUCCESS) {
        snprintf(err, errlen, "opencl:%d (%s): cannot create a context and queue: %s",
                 be->device, d->info.name, vkt_cl_error_name(rc));
        if (c->context) cl->clReleaseContext(c->context);
        free(c);
        return 1;
    }
    be->ctx = c;
    return 0;
}

void vkt_cl_op_shutdown(vkt_backend *be) {
    vkt_cl_ctx *c = vkt_cl(be);
    if (!c) return;
    c->prof_on = 0;
    vkt_cl_finish(c); /* after a device failure: releases the events, waits for nothing */
    vkt_cl_gemm_shutdown(c);
    vkt_cl_free_buf(c, c->scratch);
    vkt_cl_free_buf(c, c->round_a);
    vkt_cl_free_buf(c, c->round_b);
    for (int i = 0; i < c->nkernels; i++) c->cl->clReleaseKernel(c->kernels[i].k);
    if (c->program) c->cl->clReleaseProgram(c->program);
    c->cl->clReleaseCommandQueue(c->queue);
    c->cl->clReleaseContext(c->context);
    free(c->prof_events);
    free(c->prof_names);
    vkt_profile_table_free(&c->prof);
    free(c);
    be->ctx = NULL;
}

void vkt_cl_op_synchronize(vkt_backend *be) { vkt_cl_finish(vkt_cl(be)); }

int vkt_cl_op_profile_enable(vkt_backend *be, int on) {
    vkt_cl_ctx *c = vkt_cl(be);
    vkt_cl_finish(c); /* what is queued belongs to the period before */
    if (on) vkt_profile_table_clear(&c->prof);
    c->prof_on = on != 0;
    return vkt_cl_failed(c) ? -1 : 0;
}

int vkt_cl_op_profile_read(vkt_backend *be, vkt_profile_entry *out, int max) {
    return vkt_profile_table_report(&vkt_cl(be)->prof, out, max);
}

int vkt_cl_set_option(vkt_backend *be, const char *key, const char *value, char *err,
                      size_t errlen) {
    vkt_cl_ctx *c = vkt_cl(be);
    if (!strcmp(key, "cache_dir")) {
        if (strlen(value) >= sizeof c->cache_dir) {
            snprintf(err, errlen, "opencl:%d: cache_dir is too long", be->device);
            return 1;
        }
        snprintf(c->cache_dir, sizeof c->cache_dir, "%s", value);
        return 0;
    }
    if (!strcmp(key, "gemm_tune")) { /* auto | force | off: see cl_gemm.c */
        if (strcmp(value, "auto") && strcmp(value, "force") && strcmp(value, "off")) {
            snprintf(err, errlen, "opencl:%d: gemm_tune must be auto, force or off (not %s)",
                     be->device, value);
            return 1;
        }
        c->tune_request = !strcmp(value, "force") ? 1 : !strcmp(value, "off") ? -1 : 0;
        c->gemm_ready = 0;
        return 0;
    }
    if (!strcmp(key, "precision")) {
        int want = !strcmp(value, "fp16");
        const char *force = getenv("VKT_OPENCL_FORCE_FP16");
        if (want && !c->dev->fp16 && !(force && !strcmp(force, "1"))) {
            snprintf(err, errlen,
                     "opencl:%d (%s): precision = fp16 is not available: the device lacks the "
                     "cl_khr_fp16 extension. HINT: precision = fp32",
                     be->device, c->dev->info.name);
            return 1;
        }
        c->precision_f16 = want;
        return 0;
    }
    return 0; /* not ours */
}

/* ---- memory ---- */

vkt_buf *vkt_cl_op_alloc(vkt_backend *be, size_t bytes, char *err, size_t errlen) {
    return vkt_cl_alloc_buf(vkt_cl(be), bytes, err, errlen);
}
void vkt_cl_op_free(vkt_backend *be, vkt_buf *b) { vkt_cl_free_buf(vkt_cl(be), b); }
uint64_t vkt_cl_op_own_bytes(vkt_backend *be) {
    vkt_cl_ctx *c = vkt_cl(be);
    if (!c) return 0;
    const vkt_buf *own[] = {c->scratch, c->round_a, c->round_b};
    uint64_t n = 0;
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) n += own[i] ? own[i]->size : 0;
    return n;
}

void vkt_cl_op_upload(vkt_backend *be, vkt_ptr dst, const void *src, size_t bytes) {
    if (!bytes) return;
    vkt_cl_ctx *c = vkt_cl(be);
    /* blocking: the caller's bytes are copied before this returns (backend.h) */
    cl_int rc = c->cl->clEnqueueWriteBuffer(c->queue, dst.buf->mem, CL_TRUE, dst.off, bytes,
                                            src, 0, NULL, vkt_cl_prof_event(c, "upload"));
    if (rc != CL_SUCCESS) vkt_cl_fail(c, "clEnqueueWriteBuffer", rc, NULL);
}

void vkt_cl_op_download(vkt_backend *be, void *dst, vkt_ptr src, size_t bytes) {
    vkt_cl_ctx *c = vkt_cl(be);
    /* VKT_FAULT_INJECT=download:N: the Nth read fails as a device out of resources would */
    int inject = vkt_fault_hit(be, VKT_FAULT_DOWNLOAD);
    if (!bytes && !inject) {
        vkt_cl_finish(c); /* still a round trip: it reports what the queue did */
        return;
    }
    cl_int rc = inject ? CL_OUT_OF_RESOURCES
                       : c->cl->clEnqueueReadBuffer(c->queue, src.buf->mem, CL_FALSE, src.off,
                                                    bytes, dst, 0, NULL,
                                                    vkt_cl_prof_event(c, "download"));
    if (rc != CL_SUCCESS) {
        vkt_cl_fail(c, "clEnqueueReadBuffer", rc, NULL);
        return;
    }
    vkt_cl_finish(c);
}

void vkt_cl_op_fill(vkt_backend *be, vkt_ptr dst, float value, size_t n) {
    if (!n) return;
    vkt_cl_ctx *c = vkt_cl(be);
    cl_int rc = c->cl->clEnqueueFillBuffer(c->queue, dst.buf->mem, &value, sizeof value,
                                           dst.off, n * sizeof(float), 0, NULL,
                                           vkt_cl_prof_event(c, "fill"));
    if (rc != CL_SUCCESS) vkt_cl_fail(c, "clEnqueueFillBuffer", rc, NULL);
}

void vkt_cl_op_copy(vkt_backend *be, vkt_ptr dst, vkt_ptr src, size_t bytes) {
    if (!bytes || (dst.buf == src.buf && dst.off == src.off)) return;
    vkt_cl_ctx *c = vkt_cl(be);
    if (dst.buf == src.buf && dst.off < src.off + bytes && src.off < dst.off + bytes) {
        /* OpenCL refuses overlapping copies (CL_MEM_COPY_OVERLAP): go through a temporary */
        char err[256];
        vkt_buf *tmp = vkt_cl_alloc_buf(c, bytes, err, sizeof err);
        if (!tmp) {
            vkt_backend_failf(be, "copy: no device memory for a temporary buffer of %zu bytes",
                              bytes);
            return;
        }
        vkt_cl_op_copy(be, vkt_at(tmp, 0), src, bytes);
        vkt_cl_op_copy(be, dst, vkt_at(tmp, 0), bytes);
        vkt_cl_free_buf(c, tmp);
        return;
    }
    cl_int rc = c->cl->clEnqueueCopyBuffer(c->queue, src.buf->mem, dst.buf->mem, src.off,
                                           dst.off, bytes, 0, NULL,
                                           vkt_cl_prof_event(c, "copy"));
    if (rc != CL_SUCCESS) vkt_cl_fail(c, "clEnqueueCopyBuffer", rc, NULL);
}

/* ---- ops ---- */

void vkt_cl_op_encoder_forward(vkt_backend *be, vkt_ptr out, vkt_ptr tokens, vkt_ptr wte,
                               vkt_ptr wpe, int B, int T, int C) {
    mem_arg o = M(out), tk = M(tokens), e = M(wte), p = M(wpe);
    cl_uint b = (cl_uint)B, t = (cl_uint)T, ch = (cl_uint)C;
    vkt_cl_arg a[] = {ARG_MEM(o), ARG_MEM(tk), ARG_MEM(e), ARG_MEM(p), ARG(b), ARG(t), ARG(ch)};
    launch1d(vkt_cl(be), "encoder_forward", (size_t)B * T * C, 64, NARGS(a), a);
}

void vkt_cl_op_encoder_backward(vkt_backend *be, vkt_ptr dwte, vkt_ptr dwpe, vkt_ptr dout,
                                vkt_ptr tokens, int B, int T, int C) {
    mem_arg e = M(dwte), p = M(dwpe), d = M(dout), tk = M(tokens);
    cl_uint b = (cl_uint)B, t = (cl_uint)T, ch = (cl_uint)C;
    vkt_cl_arg a[] = {ARG_MEM(e), ARG_MEM(p), ARG_MEM(d), ARG_MEM(tk), ARG(b), ARG(t), ARG(ch)};
    launch1d(vkt_cl(be), "encoder_backward", (size_t)C, 64, NARGS(a), a);
}

void vkt_cl_op_layernorm_forward(vkt_backend *be, vkt_ptr out, vkt_ptr mean, vkt_ptr rstd,
                                 vkt_ptr inp, vkt_ptr weight, vkt_ptr bias, int N, int C,
                                 vkt_ptr out_half) {
    mem_arg o = M(out), m = M(mean), r = M(rstd), x = M(inp), w = M(weight), b = M(bias);
    cl_uint n = (cl_uint)N, ch = (cl_uint)C;
    vkt_cl_arg a[] = {ARG_MEM(o), ARG_MEM(m), ARG_MEM(r), ARG_MEM(x),
                      ARG_MEM(w), ARG_MEM(b), ARG(n),     ARG(ch)};
    launch1d(vkt_cl(be), "layernorm_forward", (size_t)N, 64, NARGS(a), a);
    if (out_half.buf) vkt_cl_op_to_half(be, out_half, out, (size_t)N * C); /* the fp16 copy */
}

void vkt_cl_op_layernorm_backward(vkt_backend *be, vkt_ptr dinp, vkt_ptr dweight,
                                  vkt_ptr dbias, vkt_ptr dout, vkt_ptr inp, vkt_ptr weight,
                                  vkt_ptr mean, vkt_ptr rstd, int N, int C) {
    mem_arg di = M(dinp), dw = M(dweight), db = M(dbias), d = M(dout), x = M(inp),
            w = M(weight), m = M(mean), r = M(rstd);
    cl_uint n = (cl_uint)N, ch = (cl_uint)C;
    vkt_cl_arg rows[] = {ARG_MEM(di), ARG_MEM(d), ARG_MEM(x), ARG_MEM(w),
                         ARG_MEM(m),  ARG_MEM(r), ARG(n),     ARG(ch)};
    launch1d(vkt_cl(be), "layernorm_backward_rows", (size_t)N, 64, NARGS(rows), rows);
    vkt_cl_arg params[] = {ARG_MEM(dw), ARG_MEM(db), ARG_MEM(d), ARG_MEM(x),
                           ARG_MEM(m),  ARG_MEM(r),  ARG(n),     ARG(ch)};
    launch1d(vkt_cl(be), "layernorm_backward_params", (size_t)C, 64, NARGS(params), params);
}

void vkt_cl_op_bias_backward(vkt_backend *be, vkt_ptr dbias, vkt_ptr dout, int Mr, int N) {
    mem_arg b = M(dbias), d = M(dout);
    cl_uint m = (cl_uint)Mr, n = (cl_uint)N;
    vkt_cl_arg a[] = {ARG_MEM(b), ARG_MEM(d), ARG(m), ARG(n)};
    launch1d(vkt_cl(be), "bias_backward", (size_t)N, 64, NARGS(a), a);
}

void vkt_cl_op_attention_forward(vkt_backend *be, vkt_ptr out, vkt_ptr lse, vkt_ptr qkv, int B,
                                 int T, int C, int NH, vkt_ptr out_half) {
    mem_arg o = M(out), l = M(lse), q = M(qkv);
    cl_uint b = (cl_uint)B, t = (cl_uint)T, ch = (cl_uint)C, nh = (cl_uint)NH;
    float scale = 1.0f / sqrtf((float)(C / NH));
    vkt_cl_arg a[] = {ARG_MEM(o), ARG_MEM(l), ARG_MEM(q), ARG(b),
                      ARG(t),     ARG(ch),    ARG(nh),    ARG(scale)};
    launch1d(vkt_cl(be), "attention_forward", (size_t)B * NH * T, 64, NARGS(a), a);
    if (out_half.buf) vkt_cl_op_to_half(be, out_half, out, (size_t)B * T * C);
}

void vkt_cl_op_attention_backward(vkt_backend *be, vkt_ptr dqkv, vkt_ptr dout, vkt_ptr qkv,
                                  vkt_ptr lse, vkt_ptr out, int B, int T, int C, int NH) {
    (void)out; /* the kernel sums D from the probabilities (cl/attention.cl) */
    vkt_cl_ctx *c = vkt_cl(be);
    if (!vkt_cl_scratch(c, &c->scratch, (size_t)B * NH * T * sizeof(float),
                        "attention_backward: its scratch buffer"))
        return;
    mem_arg dq = M(dqkv), d = M(dout), q = M(qkv), l = M(lse), s = M(vkt_at(c->scratch, 0));
    cl_uint b = (cl_uint)B, t = (cl_uint)T, ch = (cl_uint)C, nh = (cl_uint)NH;
    float scale = 1.0f / sqrtf((float)(C / NH));
    vkt_cl_arg a[] = {ARG_MEM(dq), ARG_MEM(d), ARG_MEM(q), ARG_MEM(l), ARG_MEM(s),
                      ARG(b),      ARG(t),     ARG(ch),    ARG(nh),    ARG(scale)};
    launch1d(c, "attention_backward_q", (size_t)B * NH * T, 64, NARGS(a), a);
    launch1d(c, "attention_backward_kv", (size_t)B * NH * T, 64, NARGS(a), a);
}

void vkt_cl_op_gelu_forward(vkt_backend *be, vkt_ptr out, vkt_ptr inp, size_t n, vkt_ptr out_half) {
    mem_arg o = M(out), x = M(inp);
    cl_uint nn = (cl_uint)n;
    vkt_cl_arg a[] = {ARG_MEM(o), ARG_MEM(x), ARG(nn)};
    launch1d(vkt_cl(be), "gelu_forward", n, 256, NARGS(a), a);
    if (out_half.buf) vkt_cl_op_to_half(be, out_half, out, n);
}

/* The two ops (CLBlast's GEMM has no epilogue to fuse it into). */
void vkt_cl_op_matmul_gelu(vkt_backend *be, vkt_ptr pre, vkt_ptr out, vkt_ptr a, vkt_ptr b,
                           vkt_ptr bias, int M, int N, int K, int trans_a, int trans_b,
                           vkt_ptr out_half) {
    vkt_cl_op_matmul(be, pre, a, b, bias, M, N, K, trans_a, trans_b, 1.0f, 0.0f);
    vkt_cl_op_gelu_forward(be, out, pre, (size_t)M * N, out_half);
}

void vkt_cl_op_gelu_backward(vkt_backend *be, vkt_ptr dinp, vkt_ptr inp, vkt_ptr dout,
                             size_t n) {
    mem_arg di = M(dinp), x = M(inp), d = M(dout);
    cl_uint nn = (cl_uint)n;
    vkt_cl_arg a[] = {ARG_MEM(di), ARG_MEM(x), ARG_MEM(d), ARG(nn)};
    launch1d(vkt_cl(be), "gelu_backward", n, 256, NARGS(a), a);
}

void vkt_cl_op_residual_forward(vkt_backend *be, vkt_ptr out, vkt_ptr a_, vkt_ptr b_,
                                size_t n) {
    mem_arg o = M(out), x = M(a_), y = M(b_);
    cl_uint nn = (cl_uint)n;
    vkt_cl_arg a[] = {ARG_MEM(o), ARG_MEM(x), ARG_MEM(y), ARG(nn)};
    launch1d(vkt_cl(be), "residual_forward", n, 256, NARGS(a), a);
}

void vkt_cl_op_softmax_xent(vkt_backend *be, vkt_ptr losses, vkt_ptr logits, vkt_ptr targets,
                            int N, int V, int Vp, float grad_scale, int want_grad) {
    mem_arg l = M(losses), x = M(logits), t = M(targets);
    cl_uint n = (cl_uint)N, v = (cl_uint)V, vp = (cl_uint)Vp, wg = want_grad ? 1u : 0u;
    vkt_cl_arg a[] = {ARG_MEM(l), ARG_MEM(x), ARG_MEM(t), ARG(n),
                      ARG(v),     ARG(vp),    ARG(wg),    ARG(grad_scale)};
    /* one work-group of 64 per row */
    launch1d(vkt_cl(be), "softmax_xent", (size_t)N * 64, 64, NARGS(a), a);
}

void vkt_cl_op_adamw(vkt_backend *be, vkt_ptr params, vkt_ptr grads, vkt_ptr m_, vkt_ptr v_,
                     size_t n, const vkt_adamw_args *args) {
    mem_arg p = M(params), g = M(grads), m = M(m_), v = M(v_), ns = M(args->norm_sq);
    cl_uint has_norm = args->norm_sq.buf ? 1u : 0u, nn = (cl_uint)n;
    float lr = args->lr, b1 = args->beta1, b2 = args->beta2, eps = args->eps,
          wd = args->weight_decay, gs = args->grad_scale,
          bc1 = (float)(1.0 - pow(args->beta1, args->t)),
          bc2 = (float)(1.0 - pow(args->beta2, args->t)), mx = args->max_norm;
    vkt_cl_arg a[] = {ARG_MEM(p), ARG_MEM(g), ARG_MEM(m), ARG_MEM(v), ARG_MEM(ns),
                      ARG(has_norm), ARG(nn), ARG(lr), ARG(b1), ARG(b2), ARG(eps), ARG(wd),
                      ARG(gs), ARG(bc1), ARG(bc2), ARG(mx)};
    launch1d(vkt_cl(be), "adamw", n, 256, NARGS(a), a);
    if (args->params_half.buf) vkt_cl_op_to_half(be, args->params_half, params, n);
}

void vkt_cl_op_sumsq(vkt_backend *be, vkt_ptr out, vkt_ptr x_, size_t n) {
    mem_arg o = M(out), x = M(x_);
    cl_uint nn = (cl_uint)n, acc = 0;
    vkt_cl_arg a[] = {ARG_MEM(o), ARG_MEM(x), ARG(nn), ARG(acc)};
    launch1d(vkt_cl(be), "sumsq", 256, 256, NARGS(a), a); /* one work-group */
}

void vkt_cl_op_sum_into(vkt_backend *be, vkt_ptr out, vkt_ptr x_, size_t n, float s) {
    mem_arg o = M(out), x = M(x_);
    cl_uint nn = (cl_uint)n;
    vkt_cl_arg a[] = {ARG_MEM(o), ARG_MEM(x), ARG(nn), ARG(s)};
    launch1d(vkt_cl(be), "sum_into", 256, 256, NARGS(a), a); /* one work-group */
}

void vkt_cl_op_scale(vkt_backend *be, vkt_ptr x_, float s, size_t n) {
    mem_arg x = M(x_);
    cl_uint nn = (cl_uint)n;
    vkt_cl_arg a[] = {ARG_MEM(x), ARG(s), ARG(nn)};
    launch1d(vkt_cl(be), "scale", n, 256, NARGS(a), a);
}

/* The two kernels in sequence. */
void vkt_cl_op_residual_layernorm_forward(vkt_backend *be, vkt_ptr res, vkt_ptr out,
                                          vkt_ptr mean, vkt_ptr rstd, vkt_ptr a, vkt_ptr b,
                                          vkt_ptr weight, vkt_ptr bias, int N, int C,
                                          vkt_ptr out_half) {
    vkt_cl_op_residual_forward(be, res, a, b, (size_t)N * C);
    vkt_cl_op_layernorm_forward(be, out, mean, rstd, res, weight, bias, N, C, out_half);
}
