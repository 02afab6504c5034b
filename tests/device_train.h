/* A whole training run on a backend's device matches the reference loss for loss, shared by
 * test_vulkan_train, test_opencl_train and test_cpu_train (each a main() calling
 * device_train_main): 10 steps of a small model on BACKEND:0 and on cpu:0 with the reference
 * kernels (for cpu: its fast path against them), same data and seed, every step's loss
 * within 1e-4 relative, and the final parameters close. Then the same under precision = fp16
 * (the device's fp16 matmul, the reference's emulated rounding, loss scaling in both): within
 * 2e-2 of the fp16 reference loss for loss, and of the fp32 run; on vulkan once more per
 * cooperative-matrix tier, forced (coopmat_tiers.h: a failure under VKT_REQUIRE_COOPMAT=1
 * when one cannot run). Skipped (77) without a trainable device of the backend unless
 * VKT_REQUIRE_BACKENDS names it; the fp16 half is skipped, with a note, on a device that
 * refuses precision = fp16. */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "coopmat_tiers.h"
#include "train_util.h"
#include "vkt_test.h"
#include "vktrain/checkpoint.h"
#include "vktrain/train.h"

#define STEPS 10

static char dut[32];       /* "vulkan:0" */
static char test_name[64]; /* "test_vulkan_train" */

/* One 10-step run on device; reference = 1 runs the cpu backend's reference kernels
 * (VKT_CPU_KERNELS=reference while it is created), the oracle of every comparison here. */
static int run_tier(const char *device, const char *precision, const char *tier,
                    const char *dir, float *losses, vkt_checkpoint *ck, int reference) {
    if (reference) setenv("VKT_CPU_KERNELS", "reference", 1);
    else unsetenv("VKT_CPU_KERNELS");
    char dev[64], prec[64], mm[64];
    snprintf(dev, sizeof dev, "backend.device=%s", device);
    snprintf(prec, sizeof prec, "train.precision=%s", precision);
    snprintf(mm, sizeof mm, "backend.matmul=%s", tier);
    const char *extra[] = {dev, "train.max_steps=10", "optim.warmup_steps=2",
                           "train.grad_accum_steps=2", prec, mm};
    vkt_config cfg;
    if (small_config(&cfg, dir, extra, 6)) return 1;
    char err[1024];
    int rc = vkt_train_run(&cfg, NULL, losses, err, sizeof err);
    unsetenv("VKT_CPU_KERNELS");
    if (rc) {
        fprintf(stderr, "%s: %s\n", device, err);
        return rc;
    }
    rc = vkt_weights_read(dir, ck, err, sizeof err);
    if (rc) fprintf(stderr, "%s: %s\n", device, err);
    return rc;
}

static int run(const char *device, const char *precision, const char *dir, float *losses,
               vkt_checkpoint *ck, int reference) {
    return run_tier(device, precision, "auto", dir, losses, ck, reference);
}

/* The fp16 run once more per cooperative-matrix tier, forced (auto may time another tier
 * faster), in b/<tier>: within 2e-2 of the fp16 reference (hc) loss for loss. A tier that
 * cannot run is noted, or fails under VKT_REQUIRE_COOPMAT=1 (coopmat_tiers.h). */
static void check_coopmat_train(int dev, const char *b, const float *hc) {
    for (int t = 0; t < VKT_TEST_NCOOPMAT; t++) {
        const char *tier = vkt_test_coopmat_tiers[t].tier;
        char err[512];
        vkt_backend *be = vkt_backend_create(dev, err, sizeof err);
        int ok = be && vkt_backend_set_option(be, "precision", "fp16", err, sizeof err) == 0;
        if (ok) ok = vkt_test_use_coopmat(be, test_name, tier);
        else vkt_test_coopmat_missing(test_name, tier, err);
        vkt_backend_destroy(be);
        if (!ok) continue;
        char dir[300];
        snprintf(dir, sizeof dir, "%s/%s", b, tier);
        float h[STEPS];
        vkt_checkpoint ck;
        if (run_tier(dut, "fp16", tier, dir, h, &ck, 0)) {
            CHECK(0, "matmul = %s: the fp16 run on %s failed", tier, dut);
            continue;
        }
        for (int i = 0; i < STEPS; i++) {
            CHECK(fabsf(h[i] - hc[i]) <= 2e-2f * fabsf(hc[i]),
                  "matmul = %s, fp16 step %d: %s %.7f, cpu %.7f", tier, i + 1, dut, h[i], hc[i]);
            printf("matmul = %s, fp16 step %2d: cpu %.6f %s %.6f\n", tier, i + 1, hc[i], dut,
                   h[i]);
        }
        vkt_checkpoint_free(&ck);
    }
}

/* The fp16 runs, in fresh subdirectories of the fp32 runs' (lc: the fp32 reference losses). */
static void check_fp16(int dev, const char *a, const char *b, const float *lc) {
    char err[512];
    vkt_backend *be = vkt_backend_create(dev, err, sizeof err);
    int ok = be && vkt_backend_set_option(be, "precision", "fp16", err, sizeof err) == 0;
    vkt_backend_destroy(be);
    int vulkan = !strncmp(dut, "vulkan:", 7);
    if (!ok) {
        printf("precision fp16 not checked: %s\n", err);
        if (vulkan) vkt_test_coopmat_all_missing(test_name, err);
        return;
    }
    char a16[300], b16[300];
    snprintf(a16, sizeof a16, "%s/fp16", a);
    snprintf(b16, sizeof b16, "%s/fp16", b);
    float hc[STEPS], hv[STEPS];
    vkt_checkpoint cc, cv;
    int rc = run("cpu:0", "fp16", a16, hc, &cc, 1), rv = run(dut, "fp16", b16, hv, &cv, 0);
    CHECK(rc == 0 && rv == 0, "fp16 runs failed");
    if (rc || rv) return;
    for (int i = 0; i < STEPS; i++) {
        CHECK(fabsf(hv[i] - hc[i]) <= 2e-2f * fabsf(hc[i]), "fp16 step %d: %s %.7f, cpu %.7f",
              i + 1, dut, hv[i], hc[i]);
        CHECK(fabsf(hv[i] - lc[i]) <= 2e-2f * fabsf(lc[i]),
              "fp16 step %d: %s %.7f, cpu fp32 %.7f", i + 1, dut, hv[i], lc[i]);
        printf("fp16 step %2d: cpu %.6f %s %.6f (fp32 %.6f)\n", i + 1, hc[i], dut, hv[i],
               lc[i]);
    }
    /* Under fp16 a gradient near zero is fp16 rounding noise whose sign AdamW follows at up to
     * lr per step, and differently rounded runs (cooperative-matrix attention, another GEMM
     * order) may follow opposite signs: each parameter must agree to 2% or within two
     * updates' worth (2 lr, lr = 3e-3), whichever is larger. The losses above are the check
     * that the two runs train alike. */
    double worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < cc.num_params; i++) {
        double d = fabs((double)cv.params[i] - cc.params[i]);
        double lim = fmax(2e-2 * fabs((double)cc.params[i]), 2 * 3e-3);
        if (!(d / lim <= worst)) worst = d / lim, wi = i;
    }
    CHECK(worst <= 1.0, "fp16 final parameters, device vs cpu: element %zu: %s %.7g, cpu %.7g "
          "(%.2f x tolerance)", wi, dut, cv.params[wi], cc.params[wi], worst);
    printf("fp16 final parameters, device vs cpu: worst %.2f of tolerance\n", worst);
    vkt_checkpoint_free(&cc);
    vkt_checkpoint_free(&cv);
    if (vulkan) check_coopmat_train(dev, b, hc);
}

static int device_train_main(const char *backend) {
    snprintf(test_name, sizeof test_name, "test_%s_train", backend);
    snprintf(dut, sizeof dut, "%s:0", backend);
    vkt_device_info info;
    int skip, dev = vkt_test_backend_device(test_name, backend, &info, &skip);
    if (dev < 0) return skip;
    char a[] = "/tmp/vkt_test_vktrain_cpu_XXXXXX", b[] = "/tmp/vkt_test_vktrain_vk_XXXXXX";
    if (!mkdtemp(a) || !mkdtemp(b)) return 1;
    float lc[STEPS], lv[STEPS];
    vkt_checkpoint cc, cv;
    CHECK(run("cpu:0", "fp32", a, lc, &cc, 1) == 0, "cpu run failed");
    CHECK(run(dut, "fp32", b, lv, &cv, 0) == 0, "%s run failed", dut);
    if (!vkt_test_failures) {
        for (int i = 0; i < STEPS; i++) {
            CHECK(fabsf(lv[i] - lc[i]) <= 1e-4f * fabsf(lc[i]), "step %d: %s %.7f, cpu %.7f",
                  i + 1, dut, lv[i], lc[i]);
            printf("step %2d: cpu %.6f %s %.6f\n", i + 1, lc[i], dut, lv[i]);
        }
        CHECK(cc.num_params == cv.num_params, "parameter counts differ");
        /* ten AdamW steps of up to lr = 3e-3 each: parameters agree far below one update
         * (3e-5 absolute for the small ones, 1% of an update; AdamW scales a near-zero
         * gradient up to about lr, so float noise in one moves its parameter by a little) */
        vkt_test_close("final parameters, device vs cpu", cv.params, cc.params, cc.num_params,
                       3e-3, 1e-2);
        vkt_checkpoint_free(&cc);
        vkt_checkpoint_free(&cv);
    }
    check_fp16(dev, a, b, lc);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", a, b);
    if (system(cmd)) fprintf(stderr, "cleanup failed\n");
    return vkt_test_failures ? 1 : 0;
}
