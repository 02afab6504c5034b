/* The opencl backend's GEMM: every vkt_matmul goes to CLBlast (CLBlastSgemm, row-major), with
 * the bias added by a small kernel after it. Under precision = fp16 the operands are first
 * rounded to fp16 values (kept in fp32 scratch buffers) by the round_f16 kernel, so the GEMM
 * multiplies exactly the fp16 operands and accumulates in fp32: the rules of every backend
 * (CLBlastHgemm would also accumulate in fp16). fp16 tensors (vkt_to_half's copies) are
 * decoded into the same scratch buffers by from_half. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/opencl/cl_ops.h"
#include "util/fs.h"
#include "util/kvlines.h"

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

/* p's n elements as fp32 in *slot through kernel `name` (round_f16: fp32 rounded to fp16
 * values; from_half: an fp16 tensor decoded); returns where they are. */
static vkt_ptr to_scratch(vkt_cl_ctx *c, vkt_buf **slot, vkt_ptr p, size_t n, const char *name) {
    vkt_buf *s = vkt_cl_scratch(c, slot, n * sizeof(float), "matmul: fp16 operands");
    if (!s) return VKT_NULL_PTR; /* the device has failed */
    cl_mem dst = s->mem, src = p.buf->mem;
    cl_uint o_dst = 0, o_src = (cl_uint)(p.off / vkt_elem_bytes(p)), nn = (cl_uint)n;
    vkt_cl_arg a[] = {CL_VAL(dst), CL_VAL(o_dst), CL_VAL(src), CL_VAL(o_src), CL_VAL(nn)};
    size_t g[1] = {n}, l[1] = {256};
    vkt_cl_launch(c, name, 1, g, l, 5, a);
    return vkt_at(s, 0);
}

/* An operand for CLBlast's SGEMM: an fp16 tensor decoded, an fp32 one rounded to fp16 values
 * under precision = fp16, as it is otherwise. */
static vkt_ptr operand(vkt_backend *be, vkt_buf **slot, vkt_ptr p, size_t n) {
    vkt_cl_ctx *c = vkt_cl(be);
    if (p.half) return to_scratch(c, slot, p, n, "from_half");
    return be->fp16_matmul ? to_scratch(c, slot, p, n, "round_f16") : p;
}

void vkt_cl_op_to_half(vkt_backend *be, vkt_ptr dst, vkt_ptr src, size_t n) {
    vkt_cl_ctx *c = vkt_cl(be);
    if (!n) return;
    cl_mem d = dst.buf->mem, s = src.buf->mem;
    cl_uint o_dst = (cl_uint)(dst.off / 2), o_src = (cl_uint)(src.off / 4), nn = (cl_uint)n;
    vkt_cl_arg a[] = {CL_VAL(d), CL_VAL(o_dst), CL_VAL(s), CL_VAL(o_src), CL_VAL(nn)};
    size_t g[1] = {n}, l[1] = {256};
    vkt_cl_launch(c, "to_half", 1, g, l, 5, a);
}

/* ---- the first-use tuning pass ----
 * CLBlast ships tuned Xgemm parameters for the devices in its database and generic ones for
 * the rest (PoCL here: about 11 GFLOP/s at 1024^3, where a tuned kernel does more than twice
 * that). So on first use on a device, with a cache_dir, vktrain times CLBlast as it comes and
 * a short list of Xgemm parameter sets (CLBlastOverrideParameters) on the first GEMM shape the
 * run needs (a model's first linear layer), then two values of CLBlast's switch between
 * Xgemm and its direct kernel, keeps the result if it beats the untuned time by 5%, and records
 * the decision in cache_dir/opencl-gemm.ini per (device, driver, platform);
 * later runs apply it without timing. VKT_OPENCL_GEMM_TUNE=off skips all of it, =force tunes
 * even when a decision is cached (and without a cache_dir); the backend option "gemm_tune"
 * (auto | force | off) does the same and wins over the variable. */

#define NPARAMS 16
static const char *const xgemm_names[NPARAMS] = {"GEMMK", "KREG", "KWG",  "KWI",  "MDIMA", "MDIMC",
                                                 "MWG",   "NDIMB", "NDIMC", "NWG", "SA",    "SB",
                                                 "STRM",  "STRN", "VWM",  "VWN"};

/* MWG NWG KWG MDIMC NDIMC VWM VWN SA SB; MDIMA = MDIMC, NDIMB = NDIMC, KWI 2, no strides,
 * GEMMK 0, KREG 1. The first is CLBlast's generic default (its database's entry for unknown
 * devices), so the search can always fall back to what an untuned device gets. All satisfy
 * the kernel's divisibility rules; sets beyond the device's work-group or local memory are
 * skipped. */
static const int candidates[][9] = {
    {32, 32, 32, 8, 16, 4, 2, 1, 1},    {64, 64, 32, 8, 8, 4, 4, 1, 1},
    {64, 64, 32, 8, 8, 4, 4, 0, 0},     {64, 64, 16, 8, 8, 4, 4, 1, 1},
    {128, 64, 32, 16, 8, 4, 4, 1, 1},   {64, 128, 32, 8, 16, 4, 4, 1, 1},
    {64, 64, 32, 16, 16, 4, 4, 1, 1},   {128, 128, 32, 16, 16, 4, 4, 1, 1},
    {64, 64, 32, 8, 8, 8, 8, 1, 1},     {32, 64, 32, 8, 8, 4, 8, 1, 1},
    {64, 32, 32, 8, 8, 8, 4, 1, 1},     {128, 128, 16, 16, 16, 8, 8, 0, 0},
};
#define NCAND ((int)(sizeof candidates / sizeof candidates[0]))

static void params_of(const int *cand, size_t *v) {
    size_t p[NPARAMS] = {0,        1,       (size_t)cand[2], 2,        (size_t)cand[3],
                         (size_t)cand[3], (size_t)cand[0], (size_t)cand[4], (size_t)cand[4],
                         (size_t)cand[1], (size_t)cand[7], (size_t)cand[8], 0,
                         0,        (size_t)cand[5], (size_t)cand[6]};
    memcpy(v, p, sizeof p);
}

static int fits(vkt_cl_ctx *c, const int *cand) {
    size_t wg = (size_t)cand[3] * (size_t)cand[4];
    size_t local = ((size_t)cand[7] * cand[2] * cand[0] + (size_t)cand[8] * cand[2] * cand[1]) *
                   sizeof(float);
    return wg <= c->dev->max_wg && local <= c->dev->local_mem;
}

static int apply(vkt_cl_ctx *c, const size_t *v) {
    return c->cl->CLBlastOverrideParameters(c->dev->id, "Xgemm", CLBlastPrecisionSingle,
                                            NPARAMS, (const char **)xgemm_names, v) ==
                   CLBlastSuccess
               ? 0
               : -1;
}

/* CLBlast's XGEMM_MIN_INDIRECT_SIZE chooses between its one-kernel "direct" GEMM (small
 * problems; Xgemm's parameters do not touch it) and Xgemm with pre/post-processing kernels.
 * The pass times 1 (Xgemm at every size) against 512^3, the value of CLBlast's generic
 * database entry, and keeps the faster for the run's shape. */
#define INDIRECT_GENERIC ((size_t)512 * 512 * 512)
static int apply_threshold(vkt_cl_ctx *c, size_t min_indirect) {
    const char *name[1] = {"XGEMM_MIN_INDIRECT_SIZE"};
    return c->cl->CLBlastOverrideParameters(c->dev->id, "GemmRoutine", CLBlastPrecisionSingle, 1,
                                            name, &min_indirect) == CLBlastSuccess
               ? 0
               : -1;
}

static double host_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

typedef struct gemm_shape {
    int M, N, K, ta, tb;
} gemm_shape;

static CLBlastStatusCode sgemm(vkt_cl_ctx *c, const gemm_shape *s, cl_mem a, cl_mem b, cl_mem cc,
                               float beta) {
    cl_command_queue q = c->queue;
    return c->cl->CLBlastSgemm(CLBlastLayoutRowMajor,
                               s->ta ? CLBlastTransposeYes : CLBlastTransposeNo,
                               s->tb ? CLBlastTransposeYes : CLBlastTransposeNo, (size_t)s->M,
                               (size_t)s->N, (size_t)s->K, 1.0f, a, 0,
                               s->ta ? (size_t)s->M : (size_t)s->K, b, 0,
                               s->tb ? (size_t)s->K : (size_t)s->N, beta, cc, 0, (size_t)s->N,
                               &q, NULL);
}

/* Best milliseconds per GEMM of shape s with the parameters in force (-1: CLBlast failed). */
static double time_gemm(vkt_cl_ctx *c, const gemm_shape *s, cl_mem a, cl_mem b, cl_mem cc) {
    if (vkt_cl_failed(c)) return -1; /* nothing more reaches a failed device */
    if (sgemm(c, s, a, b, cc, 0.0f) != CLBlastSuccess) return -1; /* compiles, warms up */
    vkt_cl_finish(c);
    if (vkt_cl_failed(c)) return -1;
    double best = -1;
    for (int round = 0; round < 3; round++) {
        int reps = 0;
        double t0 = host_ms(), t;
        do { /* at least 20 ms a round, so a fast GEMM is not timed by the clock's grain */
            if (sgemm(c, s, a, b, cc, 0.0f) != CLBlastSuccess) return -1;
            reps++;
            vkt_cl_finish(c);
            if (vkt_cl_failed(c)) return -1;
            t = host_ms() - t0;
        } while (t < 20.0 && reps < 50);
        if (best < 0 || t / reps < best) best = t / reps;
    }
    return best;
}

static void cache_key(vkt_cl_ctx *c, char *buf, size_t len) {
    snprintf(buf, len, "%s | %s | %s", c->dev->info.name, c->dev->driver_version,
             c->dev->platform_version);
    for (char *p = buf; *p; p++)
        if (*p == '=' || *p == '\n') *p = ' ';
}

/* The cached decision: 1 with v and *thr filled (tuned), 0 for "untuned", -1 when none is
 * cached. */
static int cache_read(vkt_cl_ctx *c, const char *path, size_t *v, size_t *thr) {
    char key[512], val[1024] = " ";
    cache_key(c, key, sizeof key);
    if (vkt_kvlines_get(path, key, val + 1, sizeof val - 1)) return -1;
    if (!strncmp(val + 1, "untuned", 7)) return 0;
    size_t got[NPARAMS];
    for (int i = 0; i < NPARAMS; i++) { /* " NAME=value" pairs, in any order */
        char pat[16];
        snprintf(pat, sizeof pat, " %s=", xgemm_names[i]);
        const char *at = strstr(val, pat);
        if (!at) return -1;
        got[i] = (size_t)strtoul(at + strlen(pat), NULL, 10);
    }
    const char *t = strstr(val, " XGEMM_MIN_INDIRECT_SIZE=");
    if (!t) return -1;
    memcpy(v, got, sizeof got);
    *thr = (size_t)strtoull(t + strlen(" XGEMM_MIN_INDIRECT_SIZE="), NULL, 10);
    return 1;
}

/* Records the decision (v NULL: untuned) with the timings in `note`. */
static void cache_write(vkt_cl_ctx *c, const char *path, const size_t *v, size_t thr,
                        const char *note) {
    char key[512], val[1024], err[256];
    if (!path[0] || vkt_mkdirs(c->cache_dir, err, sizeof err)) return; /* forced, no cache */
    cache_key(c, key, sizeof key);
    size_t used = 0;
    if (v) {
        for (int i = 0; i < NPARAMS; i++)
            used += (size_t)snprintf(val + used, sizeof val - used, "%s%s=%zu", i ? " " : "",
                                     xgemm_names[i], v[i]);
        used += (size_t)snprintf(val + used, sizeof val - used, " XGEMM_MIN_INDIRECT_SIZE=%zu",
                                 thr);
    } else {
        used += (size_t)snprintf(val, sizeof val, "untuned");
    }
    snprintf(val + used, sizeof val - used, "  # %s", note);
    vkt_kvlines_put(path, "vktrain: CLBlast Xgemm parameters per device | driver | platform (see "
                    "src/backend/opencl/cl_gemm.c)", key, val); /* a cache: failure is fine */
}

/* Times the candidates on shape s (M capped to keep each GEMM under ~1 GFLOP) and applies the
 * winner; describes the outcome in c->tune_note. */
static void tune(vkt_cl_ctx *c, gemm_shape s, const char *path) {
    while (2.0 * s.M * s.N * s.K > 1e9 && s.M > 64) s.M /= 2;
    char err[256];
    vkt_buf *a = vkt_cl_alloc_buf(c, (size_t)s.M * s.K * 4, err, sizeof err);
    vkt_buf *b = vkt_cl_alloc_buf(c, (size_t)s.K * s.N * 4, err, sizeof err);
    vkt_buf *cc = vkt_cl_alloc_buf(c, (size_t)s.M * s.N * 4, err, sizeof err);
    if (!a || !b || !cc) {
        snprintf(c->tune_note, sizeof c->tune_note, "GEMM tuning skipped: %s", err);
    } else if (vkt_cl_failed(c)) {
        snprintf(c->tune_note, sizeof c->tune_note, "GEMM tuning skipped: the device failed");
    } else {
        float x = 0.01f;
        c->cl->clEnqueueFillBuffer(c->queue, a->mem, &x, 4, 0, a->size, 0, NULL, NULL);
        c->cl->clEnqueueFillBuffer(c->queue, b->mem, &x, 4, 0, b->size, 0, NULL, NULL);
        double flop = 2.0 * s.M * s.N * s.K;
        double t_untuned = time_gemm(c, &s, a->mem, b->mem, cc->mem), best_t = -1;
        int best = -1;
        size_t v[NPARAMS], thr = 1;
        apply_threshold(c, 1); /* every candidate through Xgemm, whatever the shape */
        for (int i = 0; i < NCAND; i++) {
            if (!fits(c, candidates[i])) continue;
            params_of(candidates[i], v);
            if (apply(c, v)) continue;
            double t = time_gemm(c, &s, a->mem, b->mem, cc->mem);
            if (t > 0 && (best_t < 0 || t < best_t)) best_t = t, best = i;
        }
        if (best >= 0) { /* the best set, or the direct path below the generic threshold */
            params_of(candidates[best], v);
            apply(c, v);
            apply_threshold(c, INDIRECT_GENERIC);
            double t = time_gemm(c, &s, a->mem, b->mem, cc->mem);
            if (t > 0 && t < best_t) best_t = t, thr = INDIRECT_GENERIC;
        }
        char note[200];
        if (vkt_cl_failed(c)) { /* no decision from timings a failure cut short */
            vkt_cl_free_buf(c, a);
            vkt_cl_free_buf(c, b);
            vkt_cl_free_buf(c, cc);
            snprintf(c->tune_note, sizeof c->tune_note, "GEMM tuning stopped: the device failed");
            return;
        }
        snprintf(note, sizeof note, "%dx%dx%d%s%s: untuned %.1f GFLOP/s, tuned %.1f", s.M, s.N,
                 s.K, s.ta ? " ta" : "", s.tb ? " tb" : "",
                 t_untuned > 0 ? flop / t_untuned / 1e6 : 0, best_t > 0 ? flop / best_t / 1e6 : 0);
        if (best >= 0 && (t_untuned <= 0 || best_t < 0.95 * t_untuned)) {
            params_of(candidates[best], v);
            apply(c, v);
            apply_threshold(c, thr);
            cache_write(c, path, v, thr, note);
            snprintf(c->tune_note, sizeof c->tune_note, "CLBlast GEMM tuned (%s, %.2fx): MWG %d "
                     "NWG %d KWG %d MDIMC %d NDIMC %d VWM %d VWN %d SA %d SB %d, %s",
                     note, t_untuned > 0 ? t_untuned / best_t : 0, candidates[best][0],
                     candidates[best][1], candidates[best][2], candidates[best][3],
                     candidates[best][4], candidates[best][5], candidates[best][6],
                     candidates[best][7], candidates[best][8],
                     thr == 1 ? "XGEMM_MIN_INDIRECT_SIZE 1" : "XGEMM_MIN_INDIRECT_SIZE 512^3");
        } else {
            /* back to CLBlast's generic sets, which an untuned unknown device runs */
            params_of(candidates[0], v);
            apply(c, v);
            apply_threshold(c, INDIRECT_GENERIC);
            cache_write(c, path, NULL, 0, note);
            snprintf(c->tune_note, sizeof c->tune_note,
                     "CLBlast GEMM parameters kept (%s: nothing 5%% faster)", note);
        }
    }
    vkt_cl_free_buf(c, a);
    vkt_cl_free_buf(c, b);
    vkt_cl_free_buf(c, cc);
}

/* Before the first GEMM: apply the cached decision, or tune (see above). */
static void gemm_prepare(vkt_cl_ctx *c, const gemm_shape *s) {
    c->gemm_ready = 1;
    const char *mode = getenv("VKT_OPENCL_GEMM_TUNE");
    int force = mode && !strcmp(mode, "force"), off = mode && !strcmp(mode, "off");
    if (c->tune_request) { /* the option wins over the environment */
        force = c->tune_request == 1;
        off = c->tune_request == -1;
    }
    if (off || (!c->cache_dir[0] && !force)) return;
    char path[1200] = ""; /* "" (forced without a cache_dir): nothing is read or written */
    if (c->cache_dir[0]) snprintf(path, sizeof path, "%s/opencl-gemm.ini", c->cache_dir);
    size_t v[NPARAMS], thr = INDIRECT_GENERIC;
    int cached = force || !path[0] ? -1 : cache_read(c, path, v, &thr);
    if (cached == 1 && apply(c, v) == 0 && apply_threshold(c, thr) == 0) {
        snprintf(c->tune_note, sizeof c->tune_note, "CLBlast GEMM parameters from %.400s", path);
    } else if (cached == 0) {
        snprintf(c->tune_note, sizeof c->tune_note,
                 "CLBlast GEMM parameters as shipped (%.400s)", path);
    } else {
        fprintf(stderr, "opencl:%d: tuning CLBlast's GEMM for this device (once; cached in "
                "%s)\n", c->index, path[0] ? path : "nowhere: no cache_dir");
        tune(c, *s, path);
    }
    fprintf(stderr, "opencl:%d: %s\n", c->index, c->tune_note);
}

void vkt_cl_op_matmul(vkt_backend *be, vkt_ptr c_, vkt_ptr a, vkt_ptr b, vkt_ptr bias, int M,
                      int N, int K, int trans_a, int trans_b, float alpha, float beta) {
    vkt_cl_ctx *c = vkt_cl(be);
    if (M <= 0 || N <= 0) return;
    if (!c->gemm_ready && K > 0) {
        gemm_shape s = {M, N, K, trans_a, trans_b};
        gemm_prepare(c, &s);
    }
    if (K <= 0 || beta == 0.0f) {
        /* beta = 0 must never read C (it may hold NaNs, and NaN * 0 is NaN) */
        if (beta == 0.0f) vkt_cl_op_fill(be, c_, 0.0f, (size_t)M * N);
        else if (beta != 1.0f) vkt_cl_op_scale(be, c_, beta, (size_t)M * N);
        beta = K <= 0 ? 1.0f : 0.0f;
    }
    if (K > 0) {
        a = operand(be, &c->round_a, a, (size_t)M * K);
        b = operand(be, &c->round_b, b, (size_t)K * N);
        if (vkt_cl_failed(c)) return; /* a fill, a scale or the rounding failed */
        cl_command_queue q = c->queue;
        CLBlastStatusCode s = c->cl->CLBlastSgemm(
            CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
            trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, (size_t)M, (size_t)N,
            (size_t)K, alpha, a.buf->mem, a.off / 4, trans_a ? (size_t)M : (size_t)K,
            b.buf->mem, b.off / 4, trans_b ? (size_t)K : (size_t)N, beta, c_.buf->mem,
            c_.off / 4, (size_t)N, &q, vkt_cl_prof_event(c, "matmul (CLBlast)"));
        if (s != CLBlastSuccess) {
            char call[80], result[96];
            snprintf(call, sizeof call, "CLBlastSgemm %dx%dx%d", M, N, K);
            snprintf(result, sizeof result, "%s (%d)", blast_status(s), (int)s);
            vkt_backend_fail(be, call, result, NULL);
            return;
        }
    }
    if (bias.buf && !vkt_cl_failed(c)) {
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
