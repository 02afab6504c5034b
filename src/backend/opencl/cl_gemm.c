/* The opencl backend's GEMM: every vkt_matmul goes to CLBlast (CLBlastSgemm, row-major), with
 * the bias added by a small kernel after it. Under precision = fp16 the operands are first
 * rounded to fp16 values (kept in fp32 scratch buffers) by the round_f16 kernel, so the GEMM
 * multiplies exactly the fp16 operands and accumulates in fp32: the rules of every backend
 * (CLBlastHgemm would also accumulate in fp16). */
#include <stdio.h>
#include <stdlib.h>

#include "backend/opencl/cl_ops.h"

static const char *blast_status(CLBlastStatusCode s) {
    switch (s) {
    case CLBlastSuccess: return "success";
    case CLBlastOpenCLCompilerNotAvailable: return "no OpenCL compiler";
    case CLBlastTempBufferAllocFailure: return "temporary buffer allocation failed";
    case CLBlastOpenCLOutOfResources: return "CL_OUT_OF_RESOURCES";
    case CLBlastOpenCLOutOfHostMemory: return "CL_OUT_OF_HOST_MEMORY";
    case CLBlastOpenCLBuildProgramFailure: return "its kernels failed to build";
    case CLBlastInvalidValue: return "invalid value";
    case CLBlastInvalidCommandQueue: return "invalid command queue";
    case CLBlastInvalidMemObject: return "invalid memory object";
    case CLBlastInvalidBinary: return "invalid binary";
    case CLBlastInvalidBuildOptions: return "invalid build options";
    case CLBlastInvalidProgram: return "invalid program";
    case CLBlastInvalidProgramExecutable: return "invalid program executable";
    case CLBlastInvalidKernelName: return "invalid kernel name";
    case CLBlastInvalidKernelDefinition: return "invalid kernel definition";
    case CLBlastInvalidKernel: return "invalid kernel";
    case CLBlastInvalidArgIndex: return "invalid argument index";
    case CLBlastInvalidArgValue: return "invalid argument value";
    case CLBlastInvalidArgSize: return "invalid argument size";
    case CLBlastInvalidKernelArgs: return "invalid kernel arguments";
    case CLBlastInvalidLocalNumDimensions: return "invalid local dimensions";
    case CLBlastInvalidLocalThreadsTotal: return "too many local threads";
    case CLBlastInvalidLocalThreadsDim: return "invalid local threads";
    case CLBlastInvalidGlobalOffset: return "invalid global offset";
    case CLBlastInvalidEventWaitList: return "invalid event wait list";
    case CLBlastInvalidEvent: return "invalid event";
    case CLBlastInvalidOperation: return "invalid operation";
    case CLBlastInvalidBufferSize: return "invalid buffer size";
    case CLBlastInvalidGlobalWorkSize: return "invalid global work size";
    case CLBlastInsufficientMemoryA: return "matrix A too small";
    case CLBlastInsufficientMemoryB: return "matrix B too small";
    case CLBlastInsufficientMemoryC: return "matrix C too small";
    case CLBlastInsufficientMemoryTemp: return "temporary buffer too small";
    case CLBlastInvalidLocalMemUsage: return "the kernel needs more local memory than the "
                                             "device has";
    case CLBlastNoHalfPrecision: return "no half precision";
    case CLBlastNoDoublePrecision: return "no double precision";
    case CLBlastDatabaseError: return "tuning database error";
    case CLBlastUnknownError: return "unknown error";
    case CLBlastUnexpectedError: return "unexpected error";
    default: return "unlisted status";
    }
}

/* A scratch buffer of at least n floats (the old one is released: queued commands keep it
 * alive until they finish). */
static vkt_buf *scratch(vkt_cl_ctx *c, vkt_buf **slot, size_t n) {
    if (*slot && (*slot)->size >= n * sizeof(float)) return *slot;
    char err[256];
    vkt_cl_free_buf(c, *slot);
    *slot = vkt_cl_alloc_buf(c, n * sizeof(float), err, sizeof err);
    if (!*slot) {
        fprintf(stderr, "vktrain: fp16 matmul operands: %s\n", err);
        exit(1);
    }
    return *slot;
}

/* p's n floats rounded to fp16 values into *slot; returns where they are. */
static vkt_ptr rounded(vkt_cl_ctx *c, vkt_buf **slot, vkt_ptr p, size_t n) {
    vkt_buf *s = scratch(c, slot, n);
    cl_mem dst = s->mem, src = p.buf->mem;
    cl_uint o_dst = 0, o_src = (cl_uint)(p.off / 4), nn = (cl_uint)n;
    vkt_cl_arg a[] = {CL_VAL(dst), CL_VAL(o_dst), CL_VAL(src), CL_VAL(o_src), CL_VAL(nn)};
    size_t g[1] = {n}, l[1] = {256};
    vkt_cl_launch(c, "round_f16", 1, g, l, 5, a);
    return vkt_at(s, 0);
}

void vkt_cl_op_matmul(vkt_backend *be, vkt_ptr c_, vkt_ptr a, vkt_ptr b, vkt_ptr bias, int M,
                      int N, int K, int trans_a, int trans_b, float alpha, float beta) {
    vkt_cl_ctx *c = vkt_cl(be);
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || beta == 0.0f) {
        /* beta = 0 must never read C (it may hold NaNs, and NaN * 0 is NaN) */
        if (beta == 0.0f) vkt_cl_op_fill(be, c_, 0.0f, (size_t)M * N);
        else if (beta != 1.0f) vkt_cl_op_scale(be, c_, beta, (size_t)M * N);
        beta = K <= 0 ? 1.0f : 0.0f;
    }
    if (K > 0) {
        if (be->fp16_matmul) {
            a = rounded(c, &c->round_a, a, (size_t)M * K);
            b = rounded(c, &c->round_b, b, (size_t)K * N);
        }
        cl_command_queue q = c->queue;
        CLBlastStatusCode s = c->cl->CLBlastSgemm(
            CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
            trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, (size_t)M, (size_t)N,
            (size_t)K, alpha, a.buf->mem, a.off / 4, trans_a ? (size_t)M : (size_t)K,
            b.buf->mem, b.off / 4, trans_b ? (size_t)K : (size_t)N, beta, c_.buf->mem,
            c_.off / 4, (size_t)N, &q, vkt_cl_prof_event(c, "matmul (CLBlast)"));
        if (s != CLBlastSuccess) {
            fprintf(stderr, "vktrain: opencl:%d (%s): CLBlastSgemm %dx%dx%d failed: %s (%d)\n",
                    c->index, c->dev->info.name, M, N, K, blast_status(s), (int)s);
            exit(1);
        }
    }
    if (bias.buf) {
        cl_mem cm = c_.buf->mem, bm = bias.buf->mem;
        cl_uint oc = (cl_uint)(c_.off / 4), ob = (cl_uint)(bias.off / 4), m = (cl_uint)M,
                n = (cl_uint)N;
        vkt_cl_arg args[] = {CL_VAL(cm), CL_VAL(oc), CL_VAL(bm), CL_VAL(ob), CL_VAL(m),
                             CL_VAL(n)};
        size_t g[1] = {(size_t)M * N}, l[1] = {256};
        vkt_cl_launch(c, "add_bias", 1, g, l, 6, args);
    }
}

void vkt_cl_gemm_shutdown(vkt_cl_ctx *c) { (void)c; }
