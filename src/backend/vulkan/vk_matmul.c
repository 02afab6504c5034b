/* GEMM tiers of the vulkan backend, the precision option, and the backend's on-disk caches.
 *
 * A tier is a matmul shader variant with the same interface (vkt_matmul_push, bindings C, A, B,
 * bias, all fp32 buffers; 64x64 outputs per workgroup). Two kinds of numerics:
 *   fp32     "fp32" (matmul_f32)
 *   fp16     "fp16" (matmul_f16: fp16 shared-memory tiles) and "coopmat" (matmul_coopmat:
 *            cooperative matrices): A and B rounded to fp16, fp32 accumulation. That is what
 *            precision = fp16 means, so these tiers run only under it (the trainer then scales
 *            the loss so that small gradients survive the rounding).
 * `auto` picks among the tiers of the run's precision; under fp16 that is a timing of every
 * available fp16 tier per shape class, cached per (device, driver version, shape class) in
 * cache_dir/matmul-tiers.ini; with one eligible tier nothing is timed
 * (VKT_MATMUL_TIERS_FORCE_TIMING=1 times it anyway, to test the cache). An explicit
 * matmul = fp32 under precision = fp16 is allowed (exact GEMMs, everything else unchanged).
 * The VkPipelineCache is saved to cache_dir/vulkan-pipelines-<vendor>-<device>-<driver>.bin at
 * shutdown and loaded when cache_dir is set, if its header matches the device. */
#include <math.h>
#include <string.h>
#include <time.h>

#include "backend/vkt_spirv.h"
#include "backend/vulkan/vk_context.h"
#include "util/fs.h"
#include "util/kvlines.h"

typedef struct tier_def {
    const char *name, *shader;
    int fp16; /* rounds A and B to fp16: a tier of precision = fp16 */
} tier_def;

static const tier_def tiers[] = {
    {"fp32", "matmul_f32", 0},
    {"fp16", "matmul_f16", 1},
    {"coopmat", "matmul_coopmat", 1},
    {"fp32_direct", "matmul_f32_direct", 0},
    {"fp16_direct", "matmul_f16_direct", 1},
};
#define NTIERS ((int)(sizeof tiers / sizeof tiers[0]))
enum { TIER_FP32, TIER_FP16, TIER_COOPMAT, TIER_FP32_DIRECT, TIER_FP16_DIRECT };

struct vkt_vk_tier_class {
    char cls[32];
    int tier;
    struct vkt_vk_tier_class *next;
};

/* The coopmat variants' workgroup: subgroup s multiplies tiles s, s + S, s + 2S, s + 3S of
 * the 16 (S subgroups), so it must hold at least 4 subgroups; 128 at least, the shader's
 * default. Our SPIR-V 1.5 modules, created without ALLOW_VARYING_SUBGROUP_SIZE, run with
 * subgroups of exactly subgroupSize lanes. */
static uint32_t coopmat_wg(vkt_vk_ctx *c) {
    uint32_t four = 4 * c->phys->subgroup_size;
    return four > 128 ? four : 128;
}

/* The direct variants' specialization (shaders/matmul.comp, USE_DIRECT): a subgroup owns 8
 * rows and SG*TN columns of the 64x64 block, so TN = min(2, 64/SG) and the workgroup holds
 * (64/8) * 64/(SG*TN) subgroups = 512/TN invocations. */
static uint32_t direct_tn(vkt_vk_ctx *c) {
    return c->phys->subgroup_size >= 64 ? 1 : 2;
}

static int direct_ok(vkt_vk_ctx *c, char *why, size_t len) {
    uint32_t sg = c->phys->subgroup_size, wg = 512 / direct_tn(c);
    if (!c->subgroup_ballot || sg < 1 || sg > 64 || (sg & (sg - 1)) ||
        wg > c->props.limits.maxComputeWorkGroupInvocations ||
        wg > c->props.limits.maxComputeWorkGroupSize[0]) {
        snprintf(why, len, "the direct tiers need subgroupBroadcast in compute shaders, a "
                 "subgroup size that is a power of two up to 64 and workgroups of %u "
                 "invocations (device: subgroup size %u, ballot %s, limit %u)", wg, sg,
                 c->subgroup_ballot ? "yes" : "no",
                 c->props.limits.maxComputeWorkGroupInvocations);
        return 0;
    }
    return 1;
}

/* Whether tier t can run on this device; why (when not) names the missing piece. */
static int tier_available(vkt_vk_ctx *c, int t, char *why, size_t len) {
    if (!vkt_spirv_find(tiers[t].shader)) {
        snprintf(why, len, "shader variant %s is not built into this binary (glslang without "
                 "GL_KHR_cooperative_matrix)", tiers[t].shader);
        return 0;
    }
    if ((t == TIER_FP32_DIRECT || t == TIER_FP16_DIRECT) && !direct_ok(c, why, len)) return 0;
    if (t == TIER_FP32 || t == TIER_FP32_DIRECT) return 1;
    if (!c->shader_f16) {
        snprintf(why, len, "the device lacks shaderFloat16 (VkPhysicalDeviceShaderFloat16Int8"
                 "Features), which fp16 tiles need");
        return 0;
    }
    if (t == TIER_FP16 || t == TIER_FP16_DIRECT) return 1;
    const vkt_device_info *info = &c->phys->info;
    if (!c->coopmat_on ||
        !strstr(info->coopmat_shapes, "16x16x16 f16*f16+f32 (KHR, subgroup)")) {
        snprintf(why, len, "no cooperative matrix: needs VK_KHR_cooperative_matrix with a "
                 "16x16x16 f16*f16+f32 subgroup configuration and vulkanMemoryModel (device "
                 "has: %s)", info->coopmat_shapes[0] ? info->coopmat_shapes : "none");
        return 0;
    }
    /* the workgroup is specialized to hold 4 subgroups (vkt_vk_matmul_variant) */
    uint32_t wg = coopmat_wg(c);
    if (!c->phys->subgroup_size || wg > c->props.limits.maxComputeWorkGroupInvocations ||
        wg > c->props.limits.maxComputeWorkGroupSize[0]) {
        snprintf(why, len, "the cooperative matrix tier needs a workgroup of 4 subgroups "
                 "(subgroup size %u; device limit %u invocations)", c->phys->subgroup_size,
                 c->props.limits.maxComputeWorkGroupInvocations);
        return 0;
    }
    return 1;
}

static void free_classes(vkt_vk_ctx *c) {
    for (struct vkt_vk_tier_class *k = c->tier_classes, *n; k; k = n) {
        n = k->next;
        free(k);
    }
    c->tier_classes = NULL;
}

vkt_vk_shader vkt_vk_matmul_variant(vkt_vk_ctx *c, const char *shader) {
    vkt_vk_shader sh = {shader, {16, 16, 1}, 0, {{0, 0}}}; /* the tiled default: 16x16 */
    if (strstr(shader, "coopmat")) { /* local_size_x_id = 0 */
        sh.local[0] = coopmat_wg(c);
        sh.local[1] = 1;
        sh.nspec = 1;
        sh.spec[0] = (vkt_spec_const){0, sh.local[0]};
    }
    if (strstr(shader, "direct")) {
        const char *e = getenv("XWG");
        sh.local[0] = e ? (uint32_t)atoi(e) : 256;
        sh.local[1] = 1;
        sh.nspec = 1;
        sh.spec[0] = (vkt_spec_const){0, sh.local[0]};
    }
    if (strstr(shader, "direct")) { /* ids 0: workgroup, 1: SG, 2: TN (direct_ok) */
        uint32_t tn = direct_tn(c);
        sh.local[0] = 512 / tn;
        sh.local[1] = 1;
        sh.nspec = 3;
        sh.spec[0] = (vkt_spec_const){0, sh.local[0]};
        sh.spec[1] = (vkt_spec_const){1, c->phys->subgroup_size};
        sh.spec[2] = (vkt_spec_const){2, tn};
    }
    return sh;
}

/* mkdir -p for the cache dir; 0 when it exists afterwards. */
static int mkdir_p(const char *dir) {
    char err[256];
    return vkt_mkdirs(dir, err, sizeof err) ? -1 : 0;
}

/* ---- the pipeline cache ---- */

static void pipeline_cache_path(vkt_vk_ctx *c, char *buf, size_t len) {
    snprintf(buf, len, "%s/vulkan-pipelines-%04x-%04x-%08x.bin", c->cache_dir,
             c->props.vendorID, c->props.deviceID, c->props.driverVersion);
}

/* A file whose header (VkPipelineCacheHeaderVersionOne) names this device replaces the empty
 * cache made at init; anything else is ignored (and overwritten at shutdown). */
static void pipeline_cache_load(vkt_vk_ctx *c) {
    char path[4200];
    pipeline_cache_path(c, path, sizeof path);
    size_t n = 0;
    unsigned char *data = NULL;
    char err[256];
    if (!vkt_file_exists(path) || vkt_read_file(path, &data, &n, err, sizeof err)) return;
    uint32_t h[4];
    if (n >= 32) memcpy(h, data, sizeof h);
    if (n < 32 || h[0] < 32 || h[1] != VK_PIPELINE_CACHE_HEADER_VERSION_ONE ||
        h[2] != c->props.vendorID || h[3] != c->props.deviceID ||
        memcmp(data + 16, c->props.pipelineCacheUUID, VK_UUID_SIZE) != 0 || c->pipelines) {
        free(data);
        return;
    }
    VkPipelineCacheCreateInfo cci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
                                     .initialDataSize = n,
                                     .pInitialData = data};
    VkPipelineCache pc;
    if (c->d.vkCreatePipelineCache(c->dev, &cci, NULL, &pc) == VK_SUCCESS) {
        c->d.vkDestroyPipelineCache(c->dev, c->cache, NULL);
        c->cache = pc;
    }
    free(data);
}

static void pipeline_cache_save(vkt_vk_ctx *c) {
    /* nothing from a device that has failed: its cache may be what broke */
    if (!c->cache_dir[0] || !c->cache || vkt_vk_failed(c)) return;
    size_t n = 0;
    if (c->d.vkGetPipelineCacheData(c->dev, c->cache, &n, NULL) != VK_SUCCESS || n == 0) return;
    void *data = malloc(n);
    if (!data) return;
    if (c->d.vkGetPipelineCacheData(c->dev, c->cache, &n, data) == VK_SUCCESS) {
        char path[4200];
        pipeline_cache_path(c, path, sizeof path);
        char err[256];
        if (mkdir_p(c->cache_dir) == 0) vkt_write_file_atomic(path, data, n, err, sizeof err);
    }
    free(data);
}

/* ---- options ---- */

/* precision = fp16 needs a tier that rounds to fp16 (all of them need shaderFloat16). */
static int set_precision(vkt_backend *be, const char *value, char *err, size_t errlen) {
    vkt_vk_ctx *c = vkt_vk(be);
    int want = !strcmp(value, "fp16");
    if (want) {
        char why[400] = "";
        int any = 0;
        for (int t = 0; t < NTIERS && !any; t++)
            if (tiers[t].fp16) any = tier_available(c, t, why, sizeof why);
        if (!any) {
            /* the fp16 tier's reason is the basic one (coopmat's would add to it) */
            tier_available(c, TIER_FP16, why, sizeof why);
            snprintf(err, errlen,
                     "vulkan:%d (%s): precision = fp16 is not available: %s. HINT: precision = "
                     "fp32",
                     be->device, c->phys->info.name, why);
            return 1;
        }
    }
    if (want != c->precision_f16) { /* decisions made for the other precision do not hold */
        c->precision_f16 = want;
        c->matmul_reported = 0;
        free_classes(c);
        if (!want && c->matmul_request != VKT_VK_TIER_AUTO && tiers[c->matmul_request - 1].fp16)
            c->matmul_request = VKT_VK_TIER_AUTO; /* an fp16 tier needs precision = fp16 */
    }
    return 0;
}

int vkt_vk_set_option(vkt_backend *be, const char *key, const char *value, char *err,
                      size_t errlen) {
    vkt_vk_ctx *c = vkt_vk(be);
    if (!strcmp(key, "cache_dir")) {
        if (strlen(value) >= sizeof c->cache_dir) {
            snprintf(err, errlen, "vulkan:%d: cache_dir is too long", be->device);
            return 1;
        }
        snprintf(c->cache_dir, sizeof c->cache_dir, "%s", value);
        if (c->cache_dir[0]) pipeline_cache_load(c);
        return 0;
    }
    if (!strcmp(key, "precision")) return set_precision(be, value, err, errlen);
    if (strcmp(key, "matmul")) return 0; /* not ours */
    if (!strcmp(value, "auto")) {
        c->matmul_request = VKT_VK_TIER_AUTO;
        return 0;
    }
    for (int t = 0; t < NTIERS; t++) {
        if (strcmp(value, tiers[t].name)) continue;
        char why[400];
        if (!tier_available(c, t, why, sizeof why)) {
            snprintf(err, errlen,
                     "vulkan:%d (%s): matmul = %s is not available: %s. HINT: matmul = auto",
                     be->device, c->phys->info.name, value, why);
            return 1;
        }
        if (tiers[t].fp16 && !c->precision_f16) {
            snprintf(err, errlen,
                     "vulkan:%d: matmul = %s rounds the operands to fp16, which only precision "
                     "= fp16 does (with loss scaling). HINT: set [train] precision = fp16, or "
                     "matmul = auto",
                     be->device, value);
            return 1;
        }
        c->matmul_request = t + 1;
        return 0;
    }
    char names[128] = "auto";
    for (int t = 0; t < NTIERS; t++)
        snprintf(names + strlen(names), sizeof names - strlen(names), ", %s", tiers[t].name);
    snprintf(err, errlen, "vulkan:%d: unknown matmul tier \"%s\" (%s)", be->device, value,
             names);
    return 1;
}

/* ---- auto: timing and the tier cache ---- */

/* Shapes within a factor of 4 of work (M*N*K) share a class; each precision has its own. */
static void shape_class(const vkt_vk_ctx *c, int M, int N, int K, char *buf, size_t len) {
    double w = (double)M * N * K;
    int e = w > 1 ? (int)floor(log2(w)) : 0;
    snprintf(buf, len, "%s mnk2^%d", c->precision_f16 ? "fp16" : "fp32", e & ~1);
}

static void tiers_path(vkt_vk_ctx *c, char *buf, size_t len) {
    snprintf(buf, len, "%s/matmul-tiers.ini", c->cache_dir);
}

/* The key of one line of matmul-tiers.ini: "device name | driver 0x... (driver info) | class".
 * The driver's own version string matters: Mesa's lavapipe reports driverVersion 0.0.1 in
 * every release, and a new release may well rank the tiers differently. */
static void cache_key(vkt_vk_ctx *c, const char *cls, char *buf, size_t len) {
    snprintf(buf, len, "%s | driver 0x%08x (%s) | %s", c->phys->info.name,
             c->props.driverVersion, c->phys->info.driver, cls);
}

static int cache_lookup(vkt_vk_ctx *c, const char *cls) {
    if (!c->cache_dir[0]) return -1;
    char path[4200], key[512], v[256];
    tiers_path(c, path, sizeof path);
    cache_key(c, cls, key, sizeof key);
    if (vkt_kvlines_get(path, key, v, sizeof v)) return -1;
    for (int t = 0; t < NTIERS; t++) {
        size_t tl = strlen(tiers[t].name);
        if (!strncmp(v, tiers[t].name, tl) && (v[tl] == 0 || v[tl] == ' ') &&
            tiers[t].fp16 == c->precision_f16) /* a hand-edited line must fit too */
            return t;
    }
    return -1;
}

static void cache_store(vkt_vk_ctx *c, const char *cls, int tier, const char *times) {
    if (!c->cache_dir[0] || mkdir_p(c->cache_dir)) return;
    char path[4200], key[512], v[512];
    tiers_path(c, path, sizeof path);
    cache_key(c, cls, key, sizeof key);
    snprintf(v, sizeof v, "%s  # %s", tiers[tier].name, times);
    vkt_kvlines_put(path, "vktrain matmul tiers: device | driver | shape class = tier  # timings",
                    key, v); /* a cache: failure is fine */
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Milliseconds of one M x N x K matmul with shader `sh`, on scratch buffers (queued work is
 * flushed first: this runs once per shape class). */
static double time_tier(vkt_backend *be, const char *sh, int M, int N, int K) {
    vkt_vk_ctx *c = vkt_vk(be);
    size_t lim = (size_t)(c->max_range - 256) / 4;
    while ((size_t)M * K > lim || (size_t)M * N > lim) M = M / 2 > 0 ? M / 2 : 1;
    if ((size_t)K * N > lim) return -1;
    /* at most ~2 GFLOP per repetition: a slow driver (lavapipe) must not spend minutes here;
     * the ranking of tiers does not hinge on the last factors of M */
    while (2.0 * M * N * K > 2e9 && M > 64) M /= 2;
    char err[256];
    vkt_buf *a = vkt_vk_alloc(c, (size_t)M * K * 4, err, sizeof err);
    vkt_buf *b = vkt_vk_alloc(c, (size_t)K * N * 4, err, sizeof err);
    vkt_buf *cc = vkt_vk_alloc(c, (size_t)M * N * 4, err, sizeof err);
    double best = -1;
    VkCommandBuffer cmd = VK_NULL_HANDLE;
    if (a && b && cc) {
        vkt_vk_flush(c);
        cmd = vkt_vk_cmd(c);
    }
    if (cmd) { /* NULL: the device has failed; the caller's dispatch will be a no-op */
        c->d.vkCmdFillBuffer(cmd, vkt_vk_buffer_of(c, a), a->off, a->size, 0);
        c->d.vkCmdFillBuffer(cmd, vkt_vk_buffer_of(c, b), b->off, b->size, 0);
        vkt_vk_barrier(c);
        for (int rep = 0; rep < 4; rep++) { /* the first compiles and warms up */
            vkt_matmul_push pc = {.M = (uint32_t)M, .N = (uint32_t)N, .K = (uint32_t)K,
                                  .alpha = 1.0f};
            vkt_ptr p[4] = {vkt_at(cc, 0), vkt_at(a, 0), vkt_at(b, 0), VKT_NULL_PTR};
            vkt_vk_bindings bd;
            vkt_vk_bind(c, &bd, 4, p);
            pc.off_c = bd.elem_off[0];
            pc.off_a = bd.elem_off[1];
            pc.off_b = bd.elem_off[2];
            double t0 = now_ms();
            vkt_vk_shader v = vkt_vk_matmul_variant(c, sh);
            vkt_vk_dispatch(c, &v, &bd, &pc, sizeof pc, (uint32_t)(N + 63) / 64,
                            (uint32_t)(M + 63) / 64, 1);
            vkt_vk_flush(c);
            double t = now_ms() - t0;
            if (rep > 0 && (best < 0 || t < best)) best = t;
        }
    }
    if (a) vkt_vk_free(c, a);
    if (b) vkt_vk_free(c, b);
    if (cc) vkt_vk_free(c, cc);
    return best;
}

static int decide(vkt_backend *be, int M, int N, int K, const char *cls) {
    vkt_vk_ctx *c = vkt_vk(be);
    int elig[NTIERS], ne = 0;
    char why[400];
    for (int t = 0; t < NTIERS; t++)
        if (tiers[t].fp16 == c->precision_f16 && tier_available(c, t, why, sizeof why))
            elig[ne++] = t;
    const char *force = getenv("VKT_MATMUL_TIERS_FORCE_TIMING");
    int forced = force && !strcmp(force, "1");
    if (ne == 0) return 0;
    if (ne == 1 && !forced) {
        if (!c->matmul_reported)
            fprintf(stderr, "vulkan:%d: matmul tier %s (the only %s tier on this device; "
                    "not timed)\n", be->device, tiers[elig[0]].name,
                    c->precision_f16 ? "fp16" : "fp32");
        c->matmul_reported = 1;
        return elig[0];
    }
    char path[4200];
    tiers_path(c, path, sizeof path);
    int t = cache_lookup(c, cls);
    if (t >= 0) {
        fprintf(stderr, "vulkan:%d: matmul tier %s for %s (cached in %s)\n", be->device,
                tiers[t].name, cls, path);
        return t;
    }
    char times[256] = "";
    size_t used = 0;
    int best = elig[0];
    double best_ms = -1;
    for (int i = 0; i < ne; i++) {
        double ms = time_tier(be, tiers[elig[i]].shader, M, N, K);
        used += (size_t)snprintf(times + used, sizeof times - used, "%s%s %.3g ms",
                                 i ? ", " : "", tiers[elig[i]].name, ms);
        if (ms >= 0 && (best_ms < 0 || ms < best_ms)) {
            best_ms = ms;
            best = elig[i];
        }
        if (used >= sizeof times) used = sizeof times - 1;
    }
    cache_store(c, cls, best, times);
    fprintf(stderr, "vulkan:%d: matmul tier %s for %s (timed: %s%s%s)\n", be->device,
            tiers[best].name, cls, times, c->cache_dir[0] ? "; saved in " : "",
            c->cache_dir[0] ? path : "");
    return best;
}

const char *vkt_vk_matmul_shader(vkt_backend *be, int M, int N, int K) {
    vkt_vk_ctx *c = vkt_vk(be);
    if (c->matmul_request != VKT_VK_TIER_AUTO) {
        if (!c->matmul_reported)
            fprintf(stderr, "vulkan:%d: matmul tier %s (set by matmul = %s)\n", be->device,
                    tiers[c->matmul_request - 1].name, tiers[c->matmul_request - 1].name);
        c->matmul_reported = 1;
        return tiers[c->matmul_request - 1].shader;
    }
    char cls[32];
    shape_class(c, M, N, K, cls, sizeof cls);
    for (struct vkt_vk_tier_class *k = c->tier_classes; k; k = k->next)
        if (!strcmp(k->cls, cls)) return tiers[k->tier].shader;
    int t = decide(be, M, N, K, cls);
    struct vkt_vk_tier_class *k = calloc(1, sizeof *k);
    VKT_VK_ASSERT(k != NULL);
    snprintf(k->cls, sizeof k->cls, "%s", cls);
    k->tier = t;
    k->next = c->tier_classes;
    c->tier_classes = k;
    return tiers[t].shader;
}

void vkt_vk_matmul_shutdown(vkt_vk_ctx *c) {
    free_classes(c);
    pipeline_cache_save(c);
}
