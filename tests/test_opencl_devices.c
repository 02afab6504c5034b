/* The opencl backend's device layer: enumeration through the run-time loaded ICD loader, the
 * info and details it reports, naming, memory round trips (overlapping copies too), an
 * allocation beyond the device's limit refused with the sizes, the program binary cache (the
 * file appears in cache_dir/opencl/, a corrupt one is rebuilt and replaced). (A kernel build
 * failure is checked by cli_errors.sh, in a process of its own: PoCL's threads do not survive
 * a fork.) Skips (77) without an OpenCL device unless VKT_REQUIRE_BACKENDS
 * names opencl. */
#include <dirent.h>
#include <unistd.h>

#include "vkt_test.h"
#include "vktrain/backend.h"

static int required(void) {
    const char *r = getenv("VKT_REQUIRE_BACKENDS");
    return r && strstr(r, "opencl");
}

/* One gelu_forward of 4 elements, read back: compiles (or loads) the program. */
static int run_kernel(vkt_backend *be) {
    char err[256];
    float x[4] = {-1, 0, 1, 2}, y[4] = {0};
    vkt_buf *a = vkt_alloc(be, sizeof x, err, sizeof err), *b = vkt_alloc(be, sizeof x, err,
                                                                          sizeof err);
    if (!a || !b) return -1;
    vkt_upload(be, vkt_at(a, 0), x, sizeof x);
    vkt_gelu_forward(be, vkt_at(b, 0), vkt_at(a, 0), 4, VKT_NULL_PTR);
    vkt_download(be, y, vkt_at(b, 0), sizeof y);
    vkt_free(be, a);
    vkt_free(be, b);
    return y[1] == 0.0f && y[2] > 0.84f && y[2] < 0.85f ? 0 : -1;
}

/* The one file in dir/opencl, or "" */
static void cached_binary(const char *dir, char *path, size_t len) {
    char sub[300];
    snprintf(sub, sizeof sub, "%s/opencl", dir);
    path[0] = 0;
    DIR *d = opendir(sub);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".bin")) snprintf(path, len, "%s/%s", sub, e->d_name);
    closedir(d);
}

int main(void) {
    char err[1024];
    int n = vkt_device_count(), first = -1, count = 0;
    for (int i = 0; i < n; i++) {
        vkt_device_info info;
        if (vkt_device_info_get(i, &info) == 0 && !strcmp(info.backend, "opencl")) {
            if (first < 0) first = i;
            count++;
        }
    }
    if (count == 0) {
        const char *notes = vkt_device_notes();
        fprintf(stderr, "no opencl device%s%s\n", notes[0] ? ": " : "", notes);
#ifndef VKT_USE_OPENCL
        fprintf(stderr, "(the opencl backend is not compiled in)\n");
#endif
        if (required()) {
            fprintf(stderr, "FAIL: VKT_REQUIRE_BACKENDS names opencl\n");
            return 1;
        }
        return 77;
    }

    for (int k = 0; k < count; k++) {
        vkt_device_info info;
        char spec[32];
        snprintf(spec, sizeof spec, "opencl:%d", k);
        int idx = vkt_device_resolve(spec, err, sizeof err);
        CHECK(idx == first + k, "%s -> %d (%s)", spec, idx, err);
        if (idx < 0) continue;
        CHECK(vkt_device_info_get(idx, &info) == 0, "info %s", spec);
        CHECK(!strcmp(info.backend, "opencl") && info.backend_index == k,
              "%s names back as %s:%d", spec, info.backend, info.backend_index);
        CHECK(info.name[0] && info.vendor[0] && info.driver[0],
              "%s: name '%s' vendor '%s' driver '%s'", spec, info.name, info.vendor, info.driver);
        CHECK(info.memory_bytes > 0 && info.peak_flops > 0, "%s: memory, peak estimate", spec);
        CHECK(strstr(info.details, "platform:") && strstr(info.details, "compute units") &&
                  strstr(info.details, "cl_khr_fp16") && strstr(info.details, "OpenCL"),
              "%s: details:\n%s", spec, info.details);
        CHECK(info.can_train && !info.coopmat, "%s: trains, no cooperative matrix", spec);
        if (strstr(info.details, "Portable Computing Language")) {
            CHECK(info.fp16 == 0, "PoCL here reports no cl_khr_fp16");
            CHECK(strstr(info.details, "type: CPU") != NULL, "PoCL type:\n%s", info.details);
        }
        printf("%s: %s (%s), %s\n", spec, info.name, info.vendor, info.driver);

        vkt_backend *be = vkt_backend_create(idx, err, sizeof err);
        CHECK(be != NULL, "%s: %s", spec, err);
        if (!be) continue;
        float h[300], back[300];
        for (int i = 0; i < 300; i++) h[i] = (float)i;
        vkt_buf *x = vkt_alloc(be, sizeof h, err, sizeof err);
        CHECK(x != NULL, "%s: alloc: %s", spec, err);
        if (x) {
            vkt_upload(be, vkt_at(x, 0), h, sizeof h);
            /* overlapping copy within one buffer: memmove semantics */
            vkt_copy(be, vkt_at(x, 40), vkt_at(x, 0), 200 * 4);
            vkt_fill(be, vkt_at(x, 4 * 250), -2.0f, 10);
            vkt_download(be, back, vkt_at(x, 0), sizeof back);
            int ok = 1;
            for (int i = 0; i < 300; i++) {
                float want = i < 10 ? (float)i : i < 210 ? (float)(i - 10) : (float)i;
                if (i >= 250 && i < 260) want = -2.0f;
                ok &= back[i] == want;
            }
            CHECK(ok, "%s: upload / overlapping copy / fill / download", spec);
            vkt_free(be, x);
        }
        /* beyond the device's largest allocation: refused, naming both sizes */
        size_t huge = (size_t)1 << 46;
        vkt_buf *big = vkt_alloc(be, huge, err, sizeof err);
        CHECK(big == NULL && strstr(err, "70368744177664") && strstr(err, "bytes"),
              "%s: absurd allocation: %s", spec, err);
        printf("absurd allocation: %s\n", err);
        vkt_free(be, big);
        vkt_backend_destroy(be);
    }

    /* the GEMM tuning pass (forced: the tests' environment turns it off): it decides, writes
     * cache_dir/opencl-gemm.ini, and the GEMM stays exact either way */
    {
        char tdir[] = "/tmp/vkt_test_cltune_XXXXXX", ini[300];
        CHECK(mkdtemp(tdir) != NULL, "mkdtemp");
        snprintf(ini, sizeof ini, "%s/opencl-gemm.ini", tdir);
        vkt_backend *tb = vkt_backend_create(first, err, sizeof err);
        CHECK(tb && vkt_backend_set_option(tb, "cache_dir", tdir, err, sizeof err) == 0 &&
                  vkt_backend_set_option(tb, "gemm_tune", "force", err, sizeof err) == 0,
              "tuning options: %s", err);
        CHECK(tb && vkt_backend_set_option(tb, "gemm_tune", "sometimes", err, sizeof err) != 0 &&
                  strstr(err, "auto, force or off"),
              "a bad gemm_tune value is refused: %s", err);
        if (tb) vkt_backend_set_option(tb, "gemm_tune", "force", err, sizeof err);
        enum { TM = 96, TN = 80, TK = 72 };
        float *ha = malloc(sizeof(float) * TM * TK), *hb = malloc(sizeof(float) * TK * TN),
              *hc = malloc(sizeof(float) * TM * TN);
        for (int i = 0; i < TM * TK; i++) ha[i] = (float)((i * 7) % 13) - 6.0f;
        for (int i = 0; i < TK * TN; i++) hb[i] = (float)((i * 5) % 11) - 5.0f;
        vkt_buf *ba = tb ? vkt_alloc(tb, sizeof(float) * TM * TK, err, sizeof err) : NULL;
        vkt_buf *bb = tb ? vkt_alloc(tb, sizeof(float) * TK * TN, err, sizeof err) : NULL;
        vkt_buf *bc = tb ? vkt_alloc(tb, sizeof(float) * TM * TN, err, sizeof err) : NULL;
        if (ba && bb && bc) {
            vkt_upload(tb, vkt_at(ba, 0), ha, sizeof(float) * TM * TK);
            vkt_upload(tb, vkt_at(bb, 0), hb, sizeof(float) * TK * TN);
            vkt_matmul(tb, vkt_at(bc, 0), vkt_at(ba, 0), vkt_at(bb, 0), VKT_NULL_PTR, TM, TN, TK,
                       0, 0, 1.0f, 0.0f);
            vkt_download(tb, hc, vkt_at(bc, 0), sizeof(float) * TM * TN);
            int bad = 0; /* small integers: every product and sum is exact in float */
            for (int m = 0; m < TM; m++)
                for (int n2 = 0; n2 < TN; n2++) {
                    float want = 0;
                    for (int k2 = 0; k2 < TK; k2++) want += ha[m * TK + k2] * hb[k2 * TN + n2];
                    bad += hc[m * TN + n2] != want;
                }
            CHECK(bad == 0, "matmul after tuning: %d wrong outputs", bad);
        }
        vkt_free(tb, ba), vkt_free(tb, bb), vkt_free(tb, bc);
        vkt_backend_destroy(tb);
        free(ha), free(hb), free(hc);
        FILE *f = fopen(ini, "r");
        char text[4096] = "";
        size_t got = f ? fread(text, 1, sizeof text - 1, f) : 0;
        text[got] = 0;
        if (f) fclose(f);
        CHECK(strstr(text, " = ") && (strstr(text, "MWG=") || strstr(text, "untuned")) &&
                  strstr(text, "GFLOP/s"),
              "the tuning decision in %s:\n%s", ini, text);
        printf("tuning decision: %s", strchr(text, '\n') ? strchr(text, '\n') + 1 : text);
        unlink(ini);
        rmdir(tdir);
    }

    /* the program binary cache: written on the first build, used and kept valid after */
    char dir[] = "/tmp/vkt_test_clcache_XXXXXX", bin[600];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    vkt_backend *be = vkt_backend_create(first, err, sizeof err);
    CHECK(be && vkt_backend_set_option(be, "cache_dir", dir, err, sizeof err) == 0, "%s", err);
    CHECK(be && run_kernel(be) == 0, "kernel through a fresh cache");
    vkt_backend_destroy(be);
    cached_binary(dir, bin, sizeof bin);
    CHECK(bin[0] != 0, "no program binary in %s/opencl after a build", dir);
    if (bin[0]) {
        FILE *f = fopen(bin, "wb"); /* corrupt it: it must be rebuilt, not trusted */
        fputs("not a program binary", f);
        fclose(f);
        be = vkt_backend_create(first, err, sizeof err);
        CHECK(be && vkt_backend_set_option(be, "cache_dir", dir, err, sizeof err) == 0, "%s",
              err);
        CHECK(be && run_kernel(be) == 0, "kernel despite a corrupt cache file");
        vkt_backend_destroy(be);
        f = fopen(bin, "rb");
        char head[32] = "";
        CHECK(f && fread(head, 1, 20, f) > 0 && strncmp(head, "not a program", 13) != 0,
              "the corrupt cache file was replaced");
        if (f) fclose(f);
        unlink(bin);
    }
    char sub[300];
    snprintf(sub, sizeof sub, "%s/opencl", dir);
    rmdir(sub);
    rmdir(dir);

    return vkt_test_finish("test_opencl_devices");
}
