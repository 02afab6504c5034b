/* The cpu backend's device side: one device (the host), memory as aligned host allocations.
 * Its kernels live in cpu_ops.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend_impl.h"
#include "backend/cpu/cpu_ops.h"

struct vkt_buf {
    float *data;
    size_t bytes;
};

void *vkt_cpu_addr(vkt_ptr p) {
    return p.buf ? (char *)p.buf->data + p.off : NULL;
}

static int cpu_device_count(void) { return 1; }

/* Reads "key : value" from /proc/cpuinfo's first processor block. */
static void cpuinfo_field(const char *key, char *out, size_t len) {
    out[0] = 0;
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[4096];
    size_t klen = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) == 0 && (line[klen] == ' ' || line[klen] == '\t' ||
                                              line[klen] == ':')) {
            char *v = strchr(line, ':');
            if (!v) break;
            v++;
            while (*v == ' ') v++;
            v[strcspn(v, "\n")] = 0;
            snprintf(out, len, "%s", v);
            break;
        }
    }
    fclose(f);
}

/* Peak fp32 FLOP/s estimate: cores x clock x FLOPs per cycle of the widest vector unit. */
static double cpu_peak_flops(void) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    char mhz[64], flags[4096];
    cpuinfo_field("cpu MHz", mhz, sizeof mhz);
    cpuinfo_field("flags", flags, sizeof flags);
    double hz = mhz[0] ? atof(mhz) * 1e6 : 2e9;
    double per_cycle = 8; /* SSE: 4-wide mul + add */
    if (strstr(flags, " avx ")) per_cycle = 16;
    if (strstr(flags, " avx2 ") && strstr(flags, " fma ")) per_cycle = 32;
    if (strstr(flags, " avx512f ")) per_cycle = 64;
    return (double)(cores > 0 ? cores : 1) * hz * per_cycle;
}

static int cpu_device_info(int index, vkt_device_info *out) {
    if (index != 0) return -1;
    cpuinfo_field("vendor_id", out->vendor, sizeof out->vendor);
    cpuinfo_field("model name", out->name, sizeof out->name);
    if (!out->vendor[0]) snprintf(out->vendor, sizeof out->vendor, "unknown");
    if (!out->name[0]) snprintf(out->name, sizeof out->name, "host CPU");
    snprintf(out->driver, sizeof out->driver, "matmul: %s; %ld threads", vkt_cpu_gemm_name(),
             vkt_cpu_num_threads());
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    out->memory_bytes = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    out->fp16 = 0;
    out->coopmat = 0;
    out->peak_flops = cpu_peak_flops();
    return 0;
}

/* The backend's one setting: which kernels run (see vkt_cpu_reference). */
typedef struct cpu_ctx {
    int reference;
} cpu_ctx;

int vkt_cpu_reference(const vkt_backend *be) {
    return be->ctx && ((const cpu_ctx *)be->ctx)->reference;
}

static int cpu_init(vkt_backend *be, char *err, size_t errlen) {
    cpu_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "cpu:%d: out of host memory", be->device);
        return 1;
    }
    const char *k = getenv("VKT_CPU_KERNELS");
    c->reference = k && !strcmp(k, "reference");
    be->ctx = c;
    return 0;
}
static void cpu_shutdown(vkt_backend *be) {
    free(be->ctx);
    be->ctx = NULL;
}

/* "kernels": "fast" (default: CBLAS matmul where built with one) | "reference" (the oracle's
 * kernels only). Other options are not the cpu backend's. */
static int cpu_set_option(vkt_backend *be, const char *key, const char *value, char *err,
                          size_t errlen) {
    if (strcmp(key, "kernels")) return 0;
    if (strcmp(value, "fast") && strcmp(value, "reference")) {
        snprintf(err, errlen, "cpu:%d: kernels must be fast or reference (not %s)", be->device,
                 value);
        return 1;
    }
    ((cpu_ctx *)be->ctx)->reference = !strcmp(value, "reference");
    return 0;
}
/* Ops run synchronously, so a round trip only matters to VKT_FAULT_INJECT (backend.h):
 * "submit" counts round trips, "download" downloads, as a GPU backend submits once per trip. */
static void cpu_synchronize(vkt_backend *be) {
    if (vkt_fault_hit(be, VKT_FAULT_SUBMIT))
        vkt_backend_fail(be, "synchronize", "a simulated device error", NULL);
}

static vkt_buf *cpu_alloc(vkt_backend *be, size_t bytes, char *err, size_t errlen) {
    /* more than the machine has would only "succeed" through overcommit and die later */
    vkt_buf *b = bytes <= be->info.memory_bytes && !vkt_fault_hit(be, VKT_FAULT_ALLOC)
                     ? calloc(1, sizeof *b)
                     : NULL;
    size_t rounded = (bytes + 63) / 64 * 64;
    if (b) b->data = aligned_alloc(64, rounded ? rounded : 64);
    if (!b || !b->data) {
        free(b);
        snprintf(err, errlen, "cpu:%d: out of memory allocating %.1f MiB (host RAM %.1f GiB)%s",
                 be->device, bytes / 1048576.0, be->info.memory_bytes / 1073741824.0,
                 vkt_fault_note(be));
        return NULL;
    }
    b->bytes = bytes;
    return b;
}
static void cpu_free(vkt_backend *be, vkt_buf *buf) {
    (void)be;
    free(buf->data);
    free(buf);
}
static void cpu_upload(vkt_backend *be, vkt_ptr dst, const void *src, size_t bytes) {
    (void)be;
    VKT_CPU_ASSERT(dst.off + bytes <= dst.buf->bytes);
    memcpy(vkt_cpu_addr(dst), src, bytes);
}
static void cpu_download(vkt_backend *be, void *dst, vkt_ptr src, size_t bytes) {
    VKT_CPU_ASSERT(src.off + bytes <= src.buf->bytes);
    if (vkt_fault_hit(be, VKT_FAULT_SUBMIT) | vkt_fault_hit(be, VKT_FAULT_DOWNLOAD)) {
        vkt_backend_fail(be, "download", "a simulated device error", NULL);
        return;
    }
    memcpy(dst, vkt_cpu_addr(src), bytes);
}
static void cpu_fill(vkt_backend *be, vkt_ptr dst, float value, size_t n) {
    (void)be;
    VKT_CPU_ASSERT(dst.off + n * sizeof(float) <= dst.buf->bytes);
    float *p = vkt_cpu_addr(dst);
    for (size_t i = 0; i < n; i++) p[i] = value;
}
static void cpu_copy(vkt_backend *be, vkt_ptr dst, vkt_ptr src, size_t bytes) {
    (void)be;
    VKT_CPU_ASSERT(dst.off + bytes <= dst.buf->bytes && src.off + bytes <= src.buf->bytes);
    memmove(vkt_cpu_addr(dst), vkt_cpu_addr(src), bytes);
}

const vkt_backend_ops vkt_cpu_backend_ops = {
    .name = "cpu",
    .device_count = cpu_device_count,
    .device_info = cpu_device_info,
    .init = cpu_init,
    .shutdown = cpu_shutdown,
    .set_option = cpu_set_option,
    .synchronize = cpu_synchronize,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_upload,
    .download = cpu_download,
    .fill = cpu_fill,
    .copy = cpu_copy,
    .encoder_forward = vkt_cpu_encoder_forward,
    .encoder_backward = vkt_cpu_encoder_backward,
    .layernorm_forward = vkt_cpu_layernorm_forward,
    .layernorm_backward = vkt_cpu_layernorm_backward,
    .matmul = vkt_cpu_fast_matmul,
    .matmul_gelu = vkt_cpu_matmul_gelu,
    .to_half = vkt_cpu_to_half,
    .bias_backward = vkt_cpu_bias_backward,
    .attention_forward = vkt_cpu_attention_forward,
    .attention_backward = vkt_cpu_attention_backward,
    .gelu_forward = vkt_cpu_gelu_forward,
    .gelu_backward = vkt_cpu_gelu_backward,
    .residual_forward = vkt_cpu_residual_forward,
    .residual_layernorm_forward = vkt_cpu_residual_layernorm_forward,
    .softmax_xent = vkt_cpu_fast_softmax_xent,
    .adamw = vkt_cpu_adamw,
    .sumsq = vkt_cpu_sumsq,
    .sum_into = vkt_cpu_sum_into,
    .scale = vkt_cpu_scale,
};
