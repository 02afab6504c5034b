/* The vulkan backend's matmul tiers and caches: each cooperative-matrix tier (coopmat_tiers.h)
 * is refused under precision = fp32; under precision = fp16 it runs an exact matmul of small
 * integers at an odd shape where the binary and device can run it, and is otherwise refused
 * with a message naming the reason (a failure under VKT_REQUIRE_COOPMAT=1); the fp16 tiers only
 * under precision = fp16; precision = fp16 on a device without shaderFloat16 (simulated with
 * VKT_VULKAN_DISABLE_FP16=1) refused naming the feature, with the hint precision = fp32; with
 * VKT_MATMUL_TIERS_FORCE_TIMING=1 and a fresh cache_dir the first run times the tiers and
 * writes matmul-tiers.ini, the second reads it; the pipeline cache file appears at shutdown,
 * and a garbage file in its place is ignored and replaced. Without subgroupBroadcast
 * (VKT_VULKAN_DISABLE_SUBGROUP=1) the direct tiers are refused naming it, and a precision with
 * a single tier left is not timed. Skips (77) without a Vulkan device
 * unless VKT_REQUIRE_BACKENDS names vulkan. */
#include <dirent.h>
#include <stdint.h>
#include <unistd.h>

#include "backend/vkt_spirv.h"
#include "coopmat_tiers.h"
#include "vkt_test.h"
#include "vktrain/backend.h"

static char tmp[64], errlog[128];

/* Runs one backend life on vulkan device dv: cache_dir = tmp, one 64x64x64 matmul of ones
 * (checked: every output is 64); returns what it printed on stderr in out. */
static void one_run(int dv, const char *precision, char *out, size_t outlen) {
    char err[512];
    fflush(stderr);
    int saved = dup(2);
    FILE *f = freopen(errlog, "w", stderr);
    CHECK(f != NULL, "redirect stderr");
    vkt_backend *be = vkt_backend_create(dv, err, sizeof err);
    CHECK(be != NULL, "create: %s", err);
    if (be) {
        CHECK(vkt_backend_set_option(be, "precision", precision, err, sizeof err) == 0,
              "precision %s: %s", precision, err);
        CHECK(vkt_backend_set_option(be, "matmul", "auto", err, sizeof err) == 0, "auto: %s",
              err);
        CHECK(vkt_backend_set_option(be, "cache_dir", tmp, err, sizeof err) == 0, "dir: %s",
              err);
        int n = 64;
        vkt_buf *a = vkt_alloc(be, (size_t)n * n * 4, err, sizeof err);
        vkt_buf *b = vkt_alloc(be, (size_t)n * n * 4, err, sizeof err);
        vkt_buf *c = vkt_alloc(be, (size_t)n * n * 4, err, sizeof err);
        vkt_fill(be, vkt_at(a, 0), 1.0f, (size_t)n * n);
        vkt_fill(be, vkt_at(b, 0), 1.0f, (size_t)n * n);
        vkt_matmul(be, vkt_at(c, 0), vkt_at(a, 0), vkt_at(b, 0), VKT_NULL_PTR, n, n, n, 0, 0,
                   1.0f, 0.0f);
        float *h = malloc((size_t)n * n * 4);
        vkt_download(be, h, vkt_at(c, 0), (size_t)n * n * 4);
        int bad = 0;
        for (int i = 0; i < n * n; i++) bad += h[i] != 64.0f;
        free(h);
        CHECK(bad == 0, "matmul of ones: %d wrong outputs", bad);
        vkt_free(be, a);
        vkt_free(be, b);
        vkt_free(be, c);
        vkt_backend_destroy(be);
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    out[0] = 0;
    FILE *r = fopen(errlog, "r");
    if (r) {
        size_t got = fread(out, 1, outlen - 1, r);
        out[got] = 0;
        fclose(r);
    }
    fprintf(stderr, "%s", out);
}

/* The path of the pipeline cache file in tmp, "" when none. */
static void find_pipeline_cache(char *path, size_t len) {
    path[0] = 0;
    DIR *d = opendir(tmp);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));)
        if (!strncmp(e->d_name, "vulkan-pipelines-", 17) && strstr(e->d_name, ".bin") &&
            !strstr(e->d_name, ".tmp"))
            snprintf(path, len, "%s/%s", tmp, e->d_name);
    closedir(d);
}

/* One matmul on tier `tier` (already selected on be), checked exactly: small integers, which
 * fp16 holds and fp32 sums without rounding, at a shape that is no multiple of a tile (partial
 * cooperative-matrix tiles at every edge). */
static void exact_matmul(vkt_backend *be, const char *tier) {
    enum { M = 67, N = 45, K = 70 };
    char err[512];
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N);
    float *c = malloc(sizeof(float) * M * N);
    for (int i = 0; i < M * K; i++) a[i] = (float)((i * 7 + 3) % 5 - 2);
    for (int i = 0; i < K * N; i++) b[i] = (float)((i * 11 + 1) % 5 - 2);
    vkt_buf *da = vkt_alloc(be, sizeof(float) * M * K, err, sizeof err);
    vkt_buf *db = vkt_alloc(be, sizeof(float) * K * N, err, sizeof err);
    vkt_buf *dc = vkt_alloc(be, sizeof(float) * M * N, err, sizeof err);
    CHECK(da && db && dc, "alloc: %s", err);
    if (da && db && dc) {
        vkt_upload(be, vkt_at(da, 0), a, sizeof(float) * M * K);
        vkt_upload(be, vkt_at(db, 0), b, sizeof(float) * K * N);
        vkt_matmul(be, vkt_at(dc, 0), vkt_at(da, 0), vkt_at(db, 0), VKT_NULL_PTR, M, N, K, 0, 0,
                   1.0f, 0.0f);
        vkt_download(be, c, vkt_at(dc, 0), sizeof(float) * M * N);
        int bad = 0, first = -1;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float want = 0;
                for (int k = 0; k < K; k++) want += a[i * K + k] * b[k * N + j];
                if (c[i * N + j] != want && bad++ == 0) first = i * N + j;
            }
        CHECK(bad == 0, "matmul = %s, %dx%dx%d of small integers: %d wrong outputs (first: "
              "[%d] = %g)", tier, M, N, K, bad, first, first >= 0 ? c[first] : 0.0f);
        printf("matmul = %s ran: %dx%dx%d exact\n", tier, M, N, K);
    }
    if (da) vkt_free(be, da);
    if (db) vkt_free(be, db);
    if (dc) vkt_free(be, dc);
    free(a), free(b), free(c);
}

/* The cooperative-matrix tiers on vulkan device dv: under precision = fp32 each is refused (it
 * rounds to fp16, or the binary or device lacks it); under precision = fp16 each runs an
 * exact matmul where it can, and where it cannot the refusal names why (a failure under
 * VKT_REQUIRE_COOPMAT=1). Returns how many ran. */
static int check_coopmat_tiers(int dv, const vkt_device_info *info) {
    char err[512];
    int ran = 0;
    vkt_backend *be = vkt_backend_create(dv, err, sizeof err);
    CHECK(be != NULL, "create: %s", err);
    if (!be) return 0;
    for (int t = 0; t < VKT_TEST_NCOOPMAT; t++) {
        const char *tier = vkt_test_coopmat_tiers[t].tier;
        int rc = vkt_backend_set_option(be, "matmul", tier, err, sizeof err);
        CHECK(rc != 0 && strstr(err, tier), "%s under precision fp32 refused naming it: rc %d, "
              "\"%s\"", tier, rc, err);
        printf("matmul = %s under precision fp32: %s\n", tier, err);
    }
    if (vkt_backend_set_option(be, "precision", "fp16", err, sizeof err)) {
        vkt_test_coopmat_all_missing("test_vulkan_tiers", err);
        vkt_backend_destroy(be);
        return 0;
    }
    for (int t = 0; t < VKT_TEST_NCOOPMAT; t++) {
        const char *tier = vkt_test_coopmat_tiers[t].tier;
        if (vkt_backend_set_option(be, "matmul", tier, err, sizeof err) == 0) {
            exact_matmul(be, tier);
            ran++;
            continue;
        }
        /* what is refused depends on what this binary and this device have: a glslang without
         * GL_KHR_cooperative_matrix (Debian 12's) builds no coopmat variant */
        if (!vkt_spirv_find(vkt_test_coopmat_tiers[t].shader))
            CHECK(strstr(err, "not built into this binary") && strstr(err, "HINT") &&
                      strstr(err, info->name),
                  "%s refused naming the missing shader: \"%s\"", tier, err);
        else if (!info->coopmat)
            CHECK(strstr(err, "cooperative matrix") && strstr(err, "HINT") &&
                      strstr(err, info->name),
                  "%s refused naming the missing cooperative matrix: \"%s\"", tier, err);
        else /* the device has cooperative matrices, not the configuration this tier needs */
            CHECK(strstr(err, "HINT") && strstr(err, info->name), "%s refused with a reason: "
                  "\"%s\"", tier, err);
        vkt_test_coopmat_missing("test_vulkan_tiers", tier, err);
    }
    vkt_backend_destroy(be);
    return ran;
}

int main(void) {
    char err[512];
    vkt_device_info info;
    int skip, dv = vkt_test_vulkan_device("test_vulkan_tiers", &info, &skip);
    if (dv < 0) return skip;
    snprintf(tmp, sizeof tmp, "/tmp/vkt_test_tiers_XXXXXX");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(errlog, sizeof errlog, "%s.stderr", tmp);

    int coopmat_ran = check_coopmat_tiers(dv, &info);

    /* the other tiers and options */
    vkt_backend *be = vkt_backend_create(dv, err, sizeof err);
    CHECK(be != NULL, "create: %s", err);
    if (be) {
        int rc;
        rc = vkt_backend_set_option(be, "matmul", "fp16", err, sizeof err);
        CHECK(rc != 0 && strstr(err, "precision = fp16"), "fp16 tier under fp32: rc %d, %s", rc,
              err);
        rc = vkt_backend_set_option(be, "matmul", "fp8", err, sizeof err);
        CHECK(rc != 0 && strstr(err, "unknown matmul tier"), "unknown tier: rc %d, %s", rc, err);
        rc = vkt_backend_set_option(be, "precision", "fp8", err, sizeof err);
        CHECK(rc != 0 && strstr(err, "unknown precision"), "unknown precision: rc %d, %s", rc,
              err);
        CHECK(vkt_backend_set_option(be, "no_such_option", "x", err, sizeof err) == 0,
              "unknown options are ignored");
        if (info.fp16) {
            rc = vkt_backend_set_option(be, "precision", "fp16", err, sizeof err);
            CHECK(rc == 0, "precision fp16 on a device with fp16: %s", err);
            rc = vkt_backend_set_option(be, "matmul", "fp16", err, sizeof err);
            CHECK(rc == 0, "fp16 tier under precision fp16: %s", err);
        }
        vkt_backend_destroy(be);
    }

    /* a device without shaderFloat16 */
    setenv("VKT_VULKAN_DISABLE_FP16", "1", 1);
    be = vkt_backend_create(dv, err, sizeof err);
    CHECK(be != NULL, "create: %s", err);
    if (be) {
        int rc = vkt_backend_set_option(be, "precision", "fp16", err, sizeof err);
        CHECK(rc != 0 && strstr(err, "shaderFloat16") && strstr(err, "HINT: precision = fp32") &&
                  strstr(err, info.name),
              "precision fp16 without shaderFloat16: rc %d, \"%s\"", rc, err);
        printf("precision = fp16 without shaderFloat16: %s\n", err);
        vkt_backend_destroy(be);
    }
    unsetenv("VKT_VULKAN_DISABLE_FP16");

    /* the tier cache and the pipeline cache */
    setenv("VKT_MATMUL_TIERS_FORCE_TIMING", "1", 1);
    char out[8192], ini[160], pc[512];
    snprintf(ini, sizeof ini, "%s/matmul-tiers.ini", tmp);
    one_run(dv, "fp32", out, sizeof out);
    CHECK(strstr(out, "matmul tier") && strstr(out, "timed:"), "first run times: %s", out);
    CHECK(access(ini, R_OK) == 0, "%s written", ini);
    find_pipeline_cache(pc, sizeof pc);
    CHECK(pc[0] != 0, "pipeline cache written in %s", tmp);

    one_run(dv, "fp32", out, sizeof out);
    CHECK(strstr(out, "matmul tier") && strstr(out, "cached in"), "second run reads: %s", out);
    CHECK(!strstr(out, "timed:"), "second run does not time: %s", out);

    if (pc[0]) {
        FILE *f = fopen(pc, "wb");
        for (int i = 0; i < 1000; i++) fputc((i * 37) & 0xff, f);
        fclose(f);
        one_run(dv, "fp32", out, sizeof out);
        f = fopen(pc, "rb");
        uint32_t h[2] = {0, 0};
        CHECK(f && fread(h, 4, 2, f) == 2, "pipeline cache readable");
        if (f) fclose(f);
        CHECK(h[0] >= 32 && h[1] == 1, "garbage replaced by a valid cache: header %u %u", h[0],
              h[1]);
    }

    /* precision fp16 has its own shape classes in the same file */
    if (info.fp16) {
        one_run(dv, "fp16", out, sizeof out);
        CHECK(strstr(out, "timed:") && strstr(out, "fp16 mnk2^"), "fp16 run times: %s", out);
        FILE *f = fopen(ini, "r");
        char text[4096] = "";
        size_t got = f ? fread(text, 1, sizeof text - 1, f) : 0;
        text[got] = 0;
        if (f) fclose(f);
        CHECK(strstr(text, "| fp32 mnk2^") && strstr(text, "| fp16 mnk2^"),
              "both precisions in %s:\n%s", ini, text);
    }

    /* without forced timing, one eligible tier is not timed: fp32 on a device without
     * subgroupBroadcast has only the tiled tier (and fp16 too, without a cooperative-matrix
     * tier that runs);
     * with it, fp32 times fp32 against fp32_direct */
    unsetenv("VKT_MATMUL_TIERS_FORCE_TIMING");
    unlink(ini);
    setenv("VKT_VULKAN_DISABLE_SUBGROUP", "1", 1);
    one_run(dv, "fp32", out, sizeof out);
    CHECK(strstr(out, "matmul tier fp32 (the only fp32 tier") && access(ini, F_OK) != 0,
          "single fp32 tier: %s", out);
    if (info.fp16 && !coopmat_ran) {
        one_run(dv, "fp16", out, sizeof out);
        CHECK(strstr(out, "matmul tier fp16 (the only fp16 tier") && access(ini, F_OK) != 0,
              "single fp16 tier: %s", out);
    }
    be = vkt_backend_create(dv, err, sizeof err);
    CHECK(be != NULL, "create: %s", err);
    if (be) {
        int rc = vkt_backend_set_option(be, "matmul", "fp32_direct", err, sizeof err);
        CHECK(rc != 0 && strstr(err, "subgroupBroadcast") && strstr(err, "HINT: matmul = auto"),
              "fp32_direct without subgroupBroadcast: rc %d, \"%s\"", rc, err);
        printf("matmul = fp32_direct without subgroupBroadcast: %s\n", err);
        vkt_backend_destroy(be);
    }
    unsetenv("VKT_VULKAN_DISABLE_SUBGROUP");
    one_run(dv, "fp32", out, sizeof out);
    CHECK(strstr(out, "timed:") && strstr(out, "fp32_direct"), "fp32 tiers timed: %s", out);

    unlink(ini);
    if (pc[0]) unlink(pc);
    unlink(errlog);
    rmdir(tmp);
    return vkt_test_finish("test_vulkan_tiers");
}
