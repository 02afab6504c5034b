/* GEMM tiers of the vulkan backend, how each dispatch is planned, the precision option, and
 * the backend's on-disk caches.
 *
 * A tier is a family of matmul shader variants with one interface (shaders/matmul_common.glsl:
 * vkt_matmul_push, bindings C, A, B, bias and the fused GELU's two outputs). Two kinds of
 * numerics:
 *   fp32     "fp32" (matmul_f32), "fp32_direct"
 *   fp16     "fp16" (matmul_f16: fp16 shared-memory tiles), "fp16_direct", "coopmat"
 *            (matmul_coopmat: KHR cooperative matrices) and "coopmat2" (matmul_coopmat2:
 *            NV cooperative matrix 2): A and B rounded to fp16, fp32 accumulation. That is
 *            what precision = fp16 means, so these tiers run only under it (the trainer then
 *            scales the loss so that small gradients survive the rounding).
 * Each dispatch is planned (vkt_vk_matmul_plan): the tier's block size from a small table
 * keyed by the shape and checked against the device's limits (shared memory, workgroup
 * size), the cooperative-matrix fragment shape from the device's own configurations, and a
 * K split for shapes whose blocks alone would leave the GPU idle (the weight gradients,
 * K = B*T), all passed as specialization constants.
 * `auto` picks among the tiers of the run's precision; under fp16 that is a timing of every
 * available tier per shape class on the device's clock, each candidate first checked against
 * the fp32 tier on a probe (a tier this driver computes wrongly is dropped with a warning),
 * cached per (device, driver version, shape class) in cache_dir/matmul-tiers.ini; with one
 * eligible tier nothing is timed (VKT_MATMUL_TIERS_FORCE_TIMING=1 times it anyway, to test
 * the cache). An explicit matmul = fp32 under precision = fp16 is allowed (exact GEMMs,
 * everything else unchanged).
 * The VkPipelineCache is saved to cache_dir/vulkan-pipelines-<vendor>-<device>-<driver>.bin at
 * shutdown and loaded when cache_dir is set, if its header matches the device. */
#include <math.h>
#include <string.h>
#include <time.h>

#include "backend/vkt_spirv.h"
#include "backend/vulkan/vk_context.h"
#include "util/fs.h"
#include "util/kvlines.h"

typedef enum { K_TILED, K_DIRECT, K_COOPMAT, K_COOPMAT2 } kernel_kind;

typedef struct tier_def {
    const char *name, *shader;
    int fp16;         /* rounds A and B to fp16: a tier of precision = fp16 */
    kernel_kind kind;
    const char *shader_s16; /* the variant reading fp16 tensors through 16-bit storage, used
                             * where the device has storageBuffer16BitAccess; NULL: none */
} tier_def;

static const tier_def tiers[] = {
    {"fp32", "matmul_f32", 0, K_TILED, NULL},
    {"fp16", "matmul_f16", 1, K_TILED, "matmul_f16_s16"},
    {"coopmat", "matmul_coopmat", 1, K_COOPMAT, "matmul_coopmat_s16"},
    {"fp32_direct", "matmul_f32_direct", 0, K_DIRECT, NULL},
    {"fp16_direct", "matmul_f16_direct", 1, K_DIRECT, NULL},
    {"coopmat2", "matmul_coopmat2", 1, K_COOPMAT2, NULL},
};
#define NTIERS ((int)(sizeof tiers / sizeof tiers[0]))
enum { TIER_FP32, TIER_FP16, TIER_COOPMAT, TIER_FP32_DIRECT, TIER_FP16_DIRECT, TIER_COOPMAT2 };

struct vkt_vk_tier_class {
    char cls[32];
    int tier;
    struct vkt_vk_tier_class *next;
};

/* Enough workgroups to fill a large GPU (an H200 has 132 SMs, each running several blocks):
 * below this a shape gets smaller blocks, or a K split. */
#define TARGET_WORKGROUPS 256u
/* A K split leaves each slice at least this deep, and splits at most MAX_SPLITS ways. */
#define MIN_SPLIT_K 1024u
#define MAX_SPLITS 8u

/* Block sizes, largest first; the planner takes the first that fills the GPU. */
typedef enum { BLOCK_LARGE, BLOCK_MEDIUM, BLOCK_SMALL, NBLOCKS } block_size;
static const char *const block_names[NBLOCKS] = {"large", "medium", "small"};

/* VKT_MATMUL_BLOCK=large|medium|small and VKT_MATMUL_SPLIT_K=N force a block size and a
 * split (tests cover every configuration on small shapes; benchmarks compare them). */
static int forced_block(void) {
    const char *e = getenv("VKT_MATMUL_BLOCK");
    for (int b = 0; e && b < NBLOCKS; b++)
        if (!strcmp(e, block_names[b])) return b;
    return -1;
}
static int forced_splits(void) {
    const char *e = getenv("VKT_MATMUL_SPLIT_K");
    int n = e ? atoi(e) : 0;
    return n >= 1 && n <= 64 ? n : 0;
}

/* ---- the cooperative-matrix shape (KHR) ---- */

/* The device's f16*f16+f32 subgroup configuration the coopmat tier uses: the largest (the
 * most work per instruction), its K a divisor of the 32-deep K tile or 32 a multiple of it,
 * rows and columns at most 32. NULL when there is none. */
const vkt_vk_mma_shape *vkt_vk_mma_shape_of(const vkt_vk_ctx *c) {
    const vkt_vk_mma_shape *best = NULL;
    for (int i = 0; i < c->phys->n_mma; i++) {
        const vkt_vk_mma_shape *s = &c->phys->mma[i];
        if (s->m < 1 || s->n < 1 || s->k < 1 || s->m > 32 || s->n > 32 || s->k > 64 ||
            (32 % s->k && s->k % 32) || s->m % 4 || s->n % 4 || s->k % 4)
            continue;
        if (!best || s->m * s->n * s->k > best->m * best->n * best->k) best = s;
    }
    return best;
}

/* ---- planning one dispatch ---- */

/* Shared memory of a tiled block: two k-major tiles with one element of padding per row. */
static uint32_t tiled_shared(uint32_t bm, uint32_t bn, uint32_t bk, uint32_t elem) {
    return bk * (bm + 1) * elem + bk * (bn + 1) * elem;
}

static int plan_tiled(const vkt_vk_ctx *c, int fp16, int b, vkt_vk_shader *sh, uint32_t *bm,
                      uint32_t *bn, uint32_t *bk_out) {
    static const uint32_t outs[NBLOCKS] = {8, 4, 2}; /* per thread: 128, 64, 32 wide blocks */
    uint32_t t = outs[b], bk = fp16 ? 32 : 16;
    *bm = *bn = 16 * t;
    if (tiled_shared(*bm, *bn, bk, fp16 ? 2 : 4) > c->props.limits.maxComputeSharedMemorySize ||
        256 > c->props.limits.maxComputeWorkGroupInvocations)
        return 0;
    sh->local[0] = sh->local[1] = 16;
    sh->local[2] = 1;
    sh->nspec = 5;
    sh->spec[0] = (vkt_spec_const){0, 16};
    sh->spec[1] = (vkt_spec_const){1, 16};
    sh->spec[2] = (vkt_spec_const){2, t};
    sh->spec[3] = (vkt_spec_const){3, t};
    sh->spec[4] = (vkt_spec_const){4, bk};
    *bk_out = bk;
    return 1;
}

/* The direct variants (shaders/matmul.comp, USE_DIRECT): a subgroup owns 8 rows and SG*TN
 * columns of the 64x64 block, so TN = min(2, 64/SG) and the workgroup holds
 * (64/8) * 64/(SG*TN) subgroups = 512/TN invocations, of exactly SG lanes each. */
static uint32_t direct_tn(const vkt_vk_ctx *c) { return c->phys->subgroup_size >= 64 ? 1 : 2; }

static void plan_direct(const vkt_vk_ctx *c, vkt_vk_shader *sh, uint32_t *bm, uint32_t *bn) {
    uint32_t tn = direct_tn(c);
    sh->local[0] = 512 / tn;
    sh->local[1] = sh->local[2] = 1;
    sh->nspec = 3;
    sh->spec[0] = (vkt_spec_const){0, sh->local[0]};
    sh->spec[1] = (vkt_spec_const){1, c->phys->subgroup_size};
    sh->spec[2] = (vkt_spec_const){2, tn};
    sh->subgroup = c->phys->subgroup_size;
    *bm = *bn = 64;
}

/* Halves of one padded fp16 tile of the coopmat kernel: rows x bk stored either way. */
static uint32_t coopmat_tile(uint32_t rows, uint32_t bk) {
    uint32_t a = rows * (bk + 8), b = bk * (rows + 8);
    return a > b ? a : b;
}

/* KHR coopmat: 2 x 2 warps, each FM x FN fragments of the device's shape (4, 2 or 1 per side,
 * a warp tile at most 64 wide), a K tile of 32 (or one fragment deep), one subgroup size
 * (the device's default) required of the pipeline. */
static int plan_coopmat(const vkt_vk_ctx *c, int b, vkt_vk_shader *sh, uint32_t *bm,
                        uint32_t *bn, uint32_t *bk_out) {
    const vkt_vk_mma_shape *s = vkt_vk_mma_shape_of(c);
    uint32_t sg = c->phys->subgroup_size;
    if (!s || !sg) return 0;
    static const uint32_t frags[NBLOCKS] = {4, 2, 1};
    uint32_t fm = frags[b], fn = frags[b];
    while (fm > 1 && fm * s->m > 64) fm /= 2;
    while (fn > 1 && fn * s->n > 64) fn /= 2;
    uint32_t wm = fm * s->m, wn = fn * s->n, bk = s->k > 32 ? s->k : 32;
    *bm = 2 * wm;
    *bn = 2 * wn;
    uint32_t wg = 4 * sg;
    /* as matmul_coopmat.comp sizes it: both fp16 tiles in either stored layout, 8 halves of
     * padding per row, and each of the 4 warps' fp32 epilogue slice */
    uint32_t shared = (coopmat_tile(*bm, bk) + coopmat_tile(*bn, bk)) * 2 + 4 * s->m * s->n * 4;
    if (shared > c->props.limits.maxComputeSharedMemorySize ||
        wg > c->props.limits.maxComputeWorkGroupInvocations ||
        wg > c->props.limits.maxComputeWorkGroupSize[0])
        return 0;
    sh->local[0] = wg;
    sh->local[1] = sh->local[2] = 1;
    sh->nspec = 9;
    const uint32_t v[9] = {wg, *bm, *bn, bk, wm, wn, s->m, s->n, s->k};
    for (int i = 0; i < 9; i++) sh->spec[i] = (vkt_spec_const){(uint32_t)i, v[i]};
    sh->subgroup = sg;
    *bk_out = bk;
    return 1;
}

/* NV coopmat2: one workgroup-scope accumulator of 128, 64 or 32 squared (multiples of the
 * configuration's granularities, within its largest dimension), K tiles of 32 (or the
 * granularity), the configuration's workgroup size. */
static int plan_coopmat2(const vkt_vk_ctx *c, int b, vkt_vk_shader *sh, uint32_t *bm,
                         uint32_t *bn, uint32_t *bk_out) {
    const vkt_vk_physdev *d = c->phys;
    static const uint32_t sizes[NBLOCKS] = {128, 64, 32};
    uint32_t m = sizes[b], n = sizes[b], k = 32;
    m = (m + d->cm2_gm - 1) / d->cm2_gm * d->cm2_gm;
    n = (n + d->cm2_gn - 1) / d->cm2_gn * d->cm2_gn;
    k = (k + d->cm2_gk - 1) / d->cm2_gk * d->cm2_gk;
    if ((d->cm2_max_dim && (m > d->cm2_max_dim || n > d->cm2_max_dim || k > d->cm2_max_dim)) ||
        d->cm2_wg > c->props.limits.maxComputeWorkGroupInvocations ||
        d->cm2_wg > c->props.limits.maxComputeWorkGroupSize[0])
        return 0;
    *bm = m;
    *bn = n;
    sh->local[0] = d->cm2_wg;
    sh->local[1] = sh->local[2] = 1;
    sh->nspec = 4;
    const uint32_t v[4] = {d->cm2_wg, m, n, k};
    for (int i = 0; i < 4; i++) sh->spec[i] = (vkt_spec_const){(uint32_t)i, v[i]};
    *bk_out = k;
    return 1;
}

/* One block size b of tier t: the shader with its specialization, the block of C (bm x bn)
 * and the depth of its K tile (bk; a K split cuts K into whole tiles). */
static int plan_block(const vkt_vk_ctx *c, int t, int b, vkt_vk_shader *sh, uint32_t *bm,
                      uint32_t *bn, uint32_t *bk) {
    memset(sh, 0, sizeof *sh);
    sh->name = tiers[t].shader_s16 && c->storage16 && vkt_spirv_find(tiers[t].shader_s16)
                   ? tiers[t].shader_s16
                   : tiers[t].shader;
    switch (tiers[t].kind) {
    case K_TILED: return plan_tiled(c, tiers[t].fp16, b, sh, bm, bn, bk);
    case K_DIRECT:
        if (b != BLOCK_MEDIUM) return 0; /* one block: 64x64 */
        plan_direct(c, sh, bm, bn);
        *bk = c->phys->subgroup_size;
        return 1;
    case K_COOPMAT: return plan_coopmat(c, b, sh, bm, bn, bk);
    case K_COOPMAT2: return plan_coopmat2(c, b, sh, bm, bn, bk);
    }
    return 0;
}

static uint32_t blocks_of(int M, int N, uint32_t bm, uint32_t bn) {
    return ((uint32_t)M + bm - 1) / bm * (((uint32_t)N + bn - 1) / bn);
}

/* The K split that brings `blocks` workgroups up to the target, keeping every slice at least
 * MIN_SPLIT_K deep and the partial products within one descriptor's range. */
static uint32_t split_for(const vkt_vk_ctx *c, int M, int N, int K, uint32_t blocks) {
    if (blocks >= TARGET_WORKGROUPS || (uint32_t)K < 2 * MIN_SPLIT_K) return 1;
    uint32_t s = (TARGET_WORKGROUPS + blocks - 1) / blocks;
    if (s > MAX_SPLITS) s = MAX_SPLITS;
    if (s > (uint32_t)K / MIN_SPLIT_K) s = (uint32_t)K / MIN_SPLIT_K;
    while (s > 1 && (VkDeviceSize)M * N * s * 4 > c->max_range) s--;
    return s;
}

int vkt_vk_matmul_plan_tier(vkt_backend *be, int t, int M, int N, int K, vkt_vk_gemm_plan *p) {
    vkt_vk_ctx *c = vkt_vk(be);
    int fb = forced_block(), fs = forced_splits();
    int found = 0;
    for (int b = 0; b < NBLOCKS; b++) {
        vkt_vk_shader sh;
        uint32_t bm, bn, bk;
        if ((fb >= 0 && b != fb && tiers[t].kind != K_DIRECT) ||
            !plan_block(c, t, b, &sh, &bm, &bn, &bk))
            continue;
        uint32_t blocks = blocks_of(M, N, bm, bn);
        /* the direct kernels (for CPU drivers) have no K split */
        uint32_t s = tiers[t].kind == K_DIRECT ? 1 : split_for(c, M, N, K, blocks);
        p->sh = sh;
        p->bm = bm;
        p->bn = bn;
        p->splits = s;
        p->bk = bk;
        found = 1;
        if (fb >= 0 || blocks * s >= TARGET_WORKGROUPS) break; /* else try a smaller block */
    }
    if (!found) return -1;
    if (fs && tiers[t].kind != K_DIRECT) p->splits = (uint32_t)fs;
    /* every slice a whole number of K tiles, none empty */
    if (p->splits > 1) {
        uint32_t kt = p->bk;
        uint32_t per = ((uint32_t)K + p->splits - 1) / p->splits;
        per = (per + kt - 1) / kt * kt;
        p->k_split = per;
        p->splits = ((uint32_t)K + per - 1) / per;
    }
    if (p->splits <= 1) {
        p->splits = 1;
        p->k_split = (uint32_t)K;
    }
    return 0;
}

/* Whether the device can get subgroups of exactly its default size for a kernel laid out
 * for them (the direct and coopmat tiers). */
static int subgroup_ok(vkt_vk_ctx *c, char *why, size_t len, const char *what) {
    uint32_t sg = c->phys->subgroup_size;
    if (sg && vkt_vk_subgroup_fixed(c, sg)) return 1;
    snprintf(why, len, "%s are laid out for subgroups of one size, which this device can "
             "neither guarantee nor be asked for (subgroup size %u, sizes %u..%u, subgroup "
             "size control %s)", what, sg, c->phys->min_subgroup, c->phys->max_subgroup,
             c->phys->size_control ? "yes" : "no");
    return 0;
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
    return subgroup_ok(c, why, len, "the direct tiers");
}

static int coopmat_ok(vkt_vk_ctx *c, char *why, size_t len) {
    const vkt_device_info *info = &c->phys->info;
    if (!c->coopmat_on || !vkt_vk_mma_shape_of(c)) {
        snprintf(why, len, "no cooperative matrix: needs VK_KHR_cooperative_matrix with a "
                 "subgroup-scope f16*f16+f32 configuration (rows and columns a multiple of 4 "
                 "up to 32) and vulkanMemoryModel (device has: %s)",
                 info->coopmat_shapes[0] ? info->coopmat_shapes : "none");
        return 0;
    }
    if (!subgroup_ok(c, why, len, "the cooperative-matrix warp tiles")) return 0;
    vkt_vk_shader sh;
    uint32_t bm, bn, bk;
    if (!plan_coopmat(c, BLOCK_SMALL, &sh, &bm, &bn, &bk)) {
        snprintf(why, len, "the cooperative matrix tier's smallest block does not fit the "
                 "device's limits (workgroup of 4 subgroups of %u; %u invocations, %u bytes of "
                 "shared memory)", c->phys->subgroup_size,
                 c->props.limits.maxComputeWorkGroupInvocations,
                 c->props.limits.maxComputeSharedMemorySize);
        return 0;
    }
    return 1;
}

static int coopmat2_ok(vkt_vk_ctx *c, char *why, size_t len) {
    if (!c->cm2_on || !c->storage16 || c->phys->api_version < VK_API_VERSION_1_3) {
        snprintf(why, len, "needs VK_NV_cooperative_matrix2 (workgroup scope, flexible "
                 "dimensions, conversions, per-element operations, tensor addressing, an "
                 "f16*f16+f32 workgroup configuration) and storageBuffer16BitAccess on a "
                 "Vulkan 1.3 device");
        return 0;
    }
    vkt_vk_shader sh;
    uint32_t bm, bn, bk;
    if (!plan_coopmat2(c, BLOCK_SMALL, &sh, &bm, &bn, &bk)) {
        snprintf(why, len, "the coopmat2 configuration (workgroup %u, granularity %ux%ux%u) "
                 "does not fit the device's limits", c->phys->cm2_wg, c->phys->cm2_gm,
                 c->phys->cm2_gn, c->phys->cm2_gk);
        return 0;
    }
    return 1;
}

/* Whether tier t can run on this device; why (when not) names the missing piece. */
static int tier_available(vkt_vk_ctx *c, int t, char *why, size_t len) {
    if (!vkt_spirv_find(tiers[t].shader)) {
        snprintf(why, len, "shader variant %s is not built into this binary (glslang without "
                 "%s)", tiers[t].shader,
                 t == TIER_COOPMAT2 ? "GL_NV_cooperative_matrix2" : "GL_KHR_cooperative_matrix");
        return 0;
    }
    if (tiers[t].kind == K_DIRECT && !direct_ok(c, why, len)) return 0;
    if (!tiers[t].fp16) return 1;
    if (!c->shader_f16) {
        snprintf(why, len, "the device lacks shaderFloat16 (VkPhysicalDeviceShaderFloat16Int8"
                 "Features), which fp16 tiles need");
        return 0;
    }
    if (tiers[t].kind == K_COOPMAT) return coopmat_ok(c, why, len);
    if (tiers[t].kind == K_COOPMAT2) return coopmat2_ok(c, why, len);
    return 1;
}

static void free_classes(vkt_vk_ctx *c) {
    for (struct vkt_vk_tier_class *k = c->tier_classes, *n; k; k = n) {
        n = k->next;
        free(k);
    }
    c->tier_classes = NULL;
}

int vkt_vk_matmul_tier_index(const char *name) {
    for (int t = 0; t < NTIERS; t++)
        if (!strcmp(tiers[t].name, name)) return t;
    return -1;
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
    if (!strcmp(key, "attention")) { /* vk_ops.c: flash (default) or the exact diagnostic */
        if (strcmp(value, "flash") && strcmp(value, "exact")) {
            snprintf(err, errlen, "vulkan:%d: unknown attention kernel \"%s\" (flash, exact)",
                     be->device, value);
            return 1;
        }
        c->attention_exact = !strcmp(value, "exact");
        return 0;
    }
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

/* ---- recording one matmul ---- */

/* The split-K partial products: scratch that grows to the largest split so far. NULL when
 * the device has no memory for it (the caller then does not split). */
static vkt_buf *splitk_scratch(vkt_vk_ctx *c, size_t bytes) {
    if (c->splitk && c->splitk->size >= bytes) return c->splitk;
    char err[256];
    vkt_buf *n = vkt_vk_alloc(c, bytes, err, sizeof err);
    if (!n) return NULL;
    if (c->splitk) vkt_vk_free(c, c->splitk); /* deferred while queued work may use it */
    c->splitk = n;
    return n;
}

/* Rows of 4 elements start aligned for one vector load: 16 bytes, 8 for fp16 tensors. */
static int aligned16(vkt_ptr p) {
    return ((p.buf->off + p.off) & (p.half ? 7u : 15u)) == 0;
}

int vkt_vk_matmul_record(vkt_backend *be, int t, vkt_ptr c_, vkt_ptr a, vkt_ptr b,
                         vkt_ptr bias, int M, int N, int K, int trans_a, int trans_b,
                         float alpha, float beta, const vkt_vk_gelu_out *gelu) {
    vkt_vk_ctx *c = vkt_vk(be);
    if (vkt_vk_failed(c)) return 0;
    if (t < 0) t = vkt_vk_matmul_tier(be, M, N, K);
    vkt_vk_gemm_plan p;
    if (vkt_vk_matmul_plan_tier(be, t, M, N, K, &p)) {
        vkt_backend_failf(be, "matmul tier %s: no block size fits this device's limits "
                          "(shared memory %u bytes, %u invocations). HINT: matmul = fp32",
                          tiers[t].name, c->props.limits.maxComputeSharedMemorySize,
                          c->props.limits.maxComputeWorkGroupInvocations);
        return 0;
    }
    vkt_buf *part = p.splits > 1 ? splitk_scratch(c, (size_t)M * N * p.splits * 4) : NULL;
    if (p.splits > 1 && !part) { /* no room for the partials: one pass over K instead */
        p.splits = 1;
        p.k_split = (uint32_t)K;
    }
    /* the fused GELU: in the tier's epilogue, or in the split's reduction (no fp16 copy
     * there); coopmat2's epilogue is a per-element operation that cannot store elsewhere */
    int fused = gelu && tiers[t].kind != K_COOPMAT2 ? VKT_VK_FUSED_GELU : 0;
    if (fused && !part && gelu->out_half.buf && tiers[t].shader_s16 &&
        !strcmp(p.sh.name, tiers[t].shader_s16))
        fused |= VKT_VK_FUSED_GELU_HALF;
    vkt_ptr out = part ? vkt_at(part, 0) : c_;
    vkt_matmul_push pc = {
        .M = (uint32_t)M, .N = (uint32_t)N, .K = (uint32_t)K,
        .flags = (trans_a ? VKT_MATMUL_TRANS_A : 0u) | (trans_b ? VKT_MATMUL_TRANS_B : 0u) |
                 (bias.buf && !part ? VKT_MATMUL_BIAS : 0u) | (a.half ? VKT_MATMUL_A_HALF : 0u) |
                 (b.half ? VKT_MATMUL_B_HALF : 0u) |
                 (fused && !part ? VKT_MATMUL_GELU : 0u) |
                 (fused & VKT_VK_FUSED_GELU_HALF ? VKT_MATMUL_GELU_HALF : 0u),
        .alpha = part ? 1.0f : alpha, .beta = part ? 0.0f : beta,
        .k_split = p.k_split,
    };
    /* 16-byte aligned rows everywhere: 128-bit loads, cooperative-matrix stores */
    if (aligned16(out) && aligned16(a) && aligned16(b) && N % 4 == 0 &&
        (trans_a ? M : K) % 4 == 0 && (trans_b ? K : N) % 4 == 0)
        pc.flags |= VKT_MATMUL_ALIGNED;
    size_t mn = (size_t)M * N;
    vkt_ptr gout = pc.flags & VKT_MATMUL_GELU ? gelu->out : VKT_NULL_PTR;
    vkt_ptr ghalf = pc.flags & VKT_MATMUL_GELU_HALF ? gelu->out_half : VKT_NULL_PTR;
    vkt_ptr ptr[6] = {out, a, b, part ? VKT_NULL_PTR : bias, gout, ghalf};
    size_t ext[6] = {mn * 4 * p.splits, (size_t)M * K * vkt_elem_bytes(a),
                     (size_t)K * N * vkt_elem_bytes(b), (size_t)N * 4, mn * 4, mn * 2};
    vkt_vk_bindings bd;
    vkt_vk_bind(c, &bd, 6, ptr, ext);
    pc.off_c = bd.elem_off[0];
    pc.off_a = bd.elem_off[1];
    pc.off_b = bd.elem_off[2];
    pc.off_bias = bd.elem_off[3];
    pc.off_g = bd.elem_off[4];
    pc.off_gh = bd.elem_off[5];
    vkt_vk_dispatch(c, &p.sh, &bd, &pc, sizeof pc, ((uint32_t)N + p.bn - 1) / p.bn,
                    ((uint32_t)M + p.bm - 1) / p.bm, p.splits);
    if (!part) return fused;
    /* the slices, summed in order, with alpha, beta, the bias and the fused GELU */
    struct {
        uint32_t mn, n, splits, off_c, off_p, off_bias, flags;
        float alpha, beta;
        uint32_t off_g;
    } rp = {(uint32_t)((size_t)M * N), (uint32_t)N, p.splits, 0, 0, 0,
            (bias.buf ? VKT_MATMUL_BIAS : 0u) | (fused ? VKT_MATMUL_GELU : 0u), alpha, beta, 0};
    vkt_ptr rptr[4] = {c_, vkt_at(part, 0), bias, fused ? gelu->out : VKT_NULL_PTR};
    size_t rext[4] = {mn * 4, mn * 4 * p.splits, (size_t)N * 4, mn * 4};
    vkt_vk_bind(c, &bd, 4, rptr, rext);
    rp.off_c = bd.elem_off[0];
    rp.off_p = bd.elem_off[1];
    rp.off_bias = bd.elem_off[2];
    rp.off_g = bd.elem_off[3];
    uint32_t gx, gy;
    vkt_vk_grid1d((size_t)M * N, 256, &gx, &gy);
    vkt_vk_shader rs = vkt_vk_shader_1d("matmul_splitk_reduce", 256);
    vkt_vk_dispatch(c, &rs, &bd, &rp, sizeof rp, gx, gy, 1);
    return fused;
}

/* ---- auto: checking, timing, the tier cache ---- */

/* Deterministic probe values in [-1, 1). */
static void probe_fill(float *x, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) / 8388608.0f - 1.0f;
    }
}

/* Whether tier t computes a probe GEMM (odd sizes: edges in every dimension, both
 * transposes of B, bias and accumulation) like the fp32 tier, within fp16 tolerance. A
 * driver's cooperative-matrix bug shows here rather than as a diverging run. */
static int tier_verified(vkt_backend *be, int t, char *why, size_t len) {
    vkt_vk_ctx *c = vkt_vk(be);
    if (c->verified & (1u << t)) return 1;
    if (c->rejected & (1u << t)) return 0;
    enum { PM = 75, PN = 69, PK = 83 };
    float *ha = malloc(sizeof(float) * PM * PK), *hb = malloc(sizeof(float) * PK * PN),
          *h0 = malloc(sizeof(float) * PM * PN), *ref = malloc(sizeof(float) * PM * PN),
          *got = malloc(sizeof(float) * PM * PN), hbias[PN];
    char err[256];
    vkt_buf *da = vkt_vk_alloc(c, sizeof(float) * PM * PK, err, sizeof err);
    vkt_buf *db = vkt_vk_alloc(c, sizeof(float) * PK * PN, err, sizeof err);
    vkt_buf *dc = vkt_vk_alloc(c, sizeof(float) * PM * PN, err, sizeof err);
    vkt_buf *dbias = vkt_vk_alloc(c, sizeof hbias, err, sizeof err);
    int ok = 1;
    double worst = 0;
    if (ha && hb && h0 && ref && got && da && db && dc && dbias) {
        probe_fill(ha, (size_t)PM * PK, 1), probe_fill(hb, (size_t)PK * PN, 2);
        probe_fill(h0, (size_t)PM * PN, 3), probe_fill(hbias, PN, 4);
        vkt_vk_upload(c, vkt_at(da, 0), ha, sizeof(float) * PM * PK);
        vkt_vk_upload(c, vkt_at(db, 0), hb, sizeof(float) * PK * PN);
        vkt_vk_upload(c, vkt_at(dbias, 0), hbias, sizeof hbias);
        for (int tb = 0; tb < 2 && ok; tb++) {
            float *dst[2] = {ref, got};
            int tier[2] = {TIER_FP32, t};
            for (int i = 0; i < 2; i++) {
                vkt_vk_upload(c, vkt_at(dc, 0), h0, sizeof(float) * PM * PN);
                vkt_vk_matmul_record(be, tier[i], vkt_at(dc, 0), vkt_at(da, 0), vkt_at(db, 0),
                                     vkt_at(dbias, 0), PM, PN, PK, 0, tb, 1.0f, 1.0f, NULL);
                vkt_vk_download(c, dst[i], vkt_at(dc, 0), sizeof(float) * PM * PN);
            }
            if (vkt_vk_failed(c)) break;
            /* fp16 operands: relative error of a sum of 83 products of values below 1 */
            for (int i = 0; i < PM * PN && ok; i++) {
                double d = fabs((double)got[i] - ref[i]);
                if (d > worst) worst = d;
                if (!(d <= 0.05 + 0.02 * fabs(ref[i]))) {
                    snprintf(why, len, "a %dx%dx%d probe (B %s) differs from the fp32 tier at "
                             "element %d: %g instead of %g", PM, PN, PK,
                             tb ? "transposed" : "as stored", i, got[i], ref[i]);
                    ok = 0;
                }
            }
        }
    } else {
        snprintf(why, len, "no memory for the probe");
        ok = 0;
    }
    free(ha), free(hb), free(h0), free(ref), free(got);
    vkt_vk_free(c, da), vkt_vk_free(c, db), vkt_vk_free(c, dc), vkt_vk_free(c, dbias);
    if (vkt_vk_failed(c)) return 0;
    c->verified |= ok ? 1u << t : 0;
    c->rejected |= ok ? 0 : 1u << t;
    return ok;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Milliseconds of one M x N x K matmul with tier t on scratch buffers: the best of 3 timed
 * repetitions after a warm-up (which compiles the pipeline), each bracketed by device
 * timestamps where the queue has them (the wall clock around submit and wait otherwise).
 * Queued work is flushed first: this runs once per shape class. */
static double time_tier(vkt_backend *be, int t, int M, int N, int K) {
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
    VkQueryPool qp = VK_NULL_HANDLE;
    if (c->prof_valid_bits) {
        VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                    .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                    .queryCount = 2};
        if (c->d.vkCreateQueryPool(c->dev, &qi, NULL, &qp) != VK_SUCCESS) qp = VK_NULL_HANDLE;
    }
    double best = -1;
    if (a && b && cc) {
        vkt_vk_flush(c);
        vkt_vk_span w[2] = {vkt_vk_span_of(c, vkt_at(a, 0), 0, 1),
                            vkt_vk_span_of(c, vkt_at(b, 0), 0, 1)};
        vkt_vk_order(c, w, 2);
        VkCommandBuffer cmd = vkt_vk_cmd(c);
        if (cmd) {
            c->d.vkCmdFillBuffer(cmd, vkt_vk_buffer_of(c, a), a->off, a->size, 0);
            c->d.vkCmdFillBuffer(cmd, vkt_vk_buffer_of(c, b), b->off, b->size, 0);
        }
        for (int rep = 0; rep < 4 && !vkt_vk_failed(c); rep++) {
            cmd = vkt_vk_cmd(c);
            if (!cmd) break;
            if (qp) {
                c->d.vkCmdResetQueryPool(cmd, qp, 0, 2);
                c->d.vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, qp, 0);
            }
            double t0 = now_ms();
            vkt_vk_matmul_record(be, t, vkt_at(cc, 0), vkt_at(a, 0), vkt_at(b, 0),
                                 VKT_NULL_PTR, M, N, K, 0, 0, 1.0f, 0.0f, NULL);
            cmd = vkt_vk_cmd(c);
            if (qp && cmd)
                c->d.vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, qp, 1);
            vkt_vk_flush(c);
            double ms = now_ms() - t0;
            uint64_t ts[2];
            if (qp && c->d.vkGetQueryPoolResults(c->dev, qp, 0, 2, sizeof ts, ts, sizeof ts[0],
                                                 VK_QUERY_RESULT_64_BIT) == VK_SUCCESS) {
                uint64_t mask = c->prof_valid_bits >= 64 ? ~0ull
                                                         : (1ull << c->prof_valid_bits) - 1;
                ms = (double)((ts[1] - ts[0]) & mask) * c->props.limits.timestampPeriod / 1e6;
            }
            if (rep > 0 && (best < 0 || ms < best)) best = ms;
        }
    }
    if (qp) c->d.vkDestroyQueryPool(c->dev, qp, NULL);
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
    if (t >= 0 && tier_available(c, t, why, sizeof why)) {
        fprintf(stderr, "vulkan:%d: matmul tier %s for %s (cached in %s)\n", be->device,
                tiers[t].name, cls, path);
        return t;
    }
    char times[320] = "";
    size_t used = 0;
    int best = -1;
    double best_ms = -1;
    for (int i = 0; i < ne; i++) {
        int ti = elig[i];
        if (ti != TIER_FP32 && !tier_verified(be, ti, why, sizeof why)) {
            if (!vkt_vk_failed(c))
                fprintf(stderr, "vulkan:%d: WARNING: matmul tier %s dropped: %s\n", be->device,
                        tiers[ti].name, why);
            continue;
        }
        double ms = time_tier(be, ti, M, N, K);
        used += (size_t)snprintf(times + used, sizeof times - used, "%s%s %.3g ms",
                                 used ? ", " : "", tiers[ti].name, ms);
        if (ms >= 0 && (best_ms < 0 || ms < best_ms)) {
            best_ms = ms;
            best = ti;
        }
        if (used >= sizeof times) used = sizeof times - 1;
    }
    if (best < 0) { /* every candidate was dropped: the exact tier, which is always there */
        fprintf(stderr, "vulkan:%d: matmul tier fp32 for %s (no other tier passed its check)\n",
                be->device, cls);
        return TIER_FP32;
    }
    cache_store(c, cls, best, times);
    fprintf(stderr, "vulkan:%d: matmul tier %s for %s (timed: %s, %s%s%s)\n", be->device,
            tiers[best].name, cls, times, c->prof_valid_bits ? "device clock" : "host clock",
            c->cache_dir[0] ? "; saved in " : "",
            c->cache_dir[0] ? path : "");
    return best;
}

int vkt_vk_matmul_tier(vkt_backend *be, int M, int N, int K) {
    vkt_vk_ctx *c = vkt_vk(be);
    if (c->matmul_request != VKT_VK_TIER_AUTO) {
        if (!c->matmul_reported)
            fprintf(stderr, "vulkan:%d: matmul tier %s (set by matmul = %s)\n", be->device,
                    tiers[c->matmul_request - 1].name, tiers[c->matmul_request - 1].name);
        c->matmul_reported = 1;
        return c->matmul_request - 1;
    }
    char cls[32];
    shape_class(c, M, N, K, cls, sizeof cls);
    for (struct vkt_vk_tier_class *k = c->tier_classes; k; k = k->next)
        if (!strcmp(k->cls, cls)) return k->tier;
    int t = decide(be, M, N, K, cls);
    struct vkt_vk_tier_class *k = calloc(1, sizeof *k);
    VKT_VK_ASSERT(k != NULL);
    snprintf(k->cls, sizeof k->cls, "%s", cls);
    k->tier = t;
    k->next = c->tier_classes;
    c->tier_classes = k;
    return t;
}

void vkt_vk_matmul_shutdown(vkt_vk_ctx *c) {
    free_classes(c);
    if (c->splitk) vkt_vk_free(c, c->splitk);
    c->splitk = NULL;
    pipeline_cache_save(c);
}
