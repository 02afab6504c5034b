/* A device error ends a run cleanly (the device-failure policy of DESIGN.md), shared by
 * test_cpu_fault, test_vulkan_fault and test_opencl_fault (each a main() calling
 * device_fault_main): with VKT_FAULT_INJECT (backend.h) a small run on BACKEND:0 with a
 * checkpoint every 2 of 8 steps
 *   - (first, on the op interface) a failed download returns -1 with a zero-filled buffer and
 *     the error stays: later synchronize/download fail, vkt_alloc fails with it;
 *   - fails a submission after the first checkpoint: the CLI exits 1 (no signal, no core)
 *     with a message naming the device, the call and the result; checkpoint.bin is the last
 *     one before the failing step, bitwise that of a clean run stopped there; no temp file;
 *   - fails a download of the second checkpoint (vkt_train_run in this process): status 1,
 *     the first checkpoint intact, no temp file;
 *   - fails the first device allocation: exit 1 and a message, nothing saved;
 *   - eval and sample on a device that fails exit 1 naming it, and sample prints no tokens.
 * Skipped (77) without a trainable device of the backend unless VKT_REQUIRE_BACKENDS names it. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vkt_test.h"
#include "vktrain/checkpoint.h"
#include "vktrain/config.h"
#include "vktrain/train.h"

typedef struct fault_case {
    const char *backend;         /* "vulkan" */
    const char *submit;          /* a VKT_FAULT_INJECT that fails a submission in steps 3..8 */
    const char *submit_call;     /* what the message must name: "vkQueueSubmit" */
    const char *submit_result;   /* "VK_ERROR_DEVICE_LOST" */
    const char *download_call;   /* the call download:N fails: "vkWaitForFences" */
    const char *download_result;
    const char *alloc_result;    /* alloc:1's result: "VK_ERROR_OUT_OF_DEVICE_MEMORY" */
    const char *set;             /* one more override for every run, or NULL */
} fault_case;

#define FAULT_STEPS 8
#define FAULT_INTERVAL 2

static char fault_root[] = "/tmp/vkt_test_fault_XXXXXX";
static char fault_ini[600], fault_dev[32], fault_name[160];

/* The config every run uses: a small model on the shipped corpus, a checkpoint every 2 steps,
 * evaluation only at the end. */
static int fault_write_config(void) {
    const char *src = getenv("VKT_SOURCE_DIR");
    if (!src) {
        fprintf(stderr, "VKT_SOURCE_DIR is not set (run through ctest)\n");
        exit(77);
    }
    snprintf(fault_ini, sizeof fault_ini, "%s/run.ini", fault_root);
    FILE *f = fopen(fault_ini, "w");
    if (!f) return -1;
    fprintf(f,
            "[model]\nn_layer = 2\nn_head = 2\nn_embd = 32\nblock_size = 32\n"
            "[data]\ntrain = %s/data/tinyshakespeare.txt\n"
            "[train]\nbatch_size = 4\nseq_len = 32\nmax_steps = %d\ncheckpoint_interval = %d\n"
            "eval_interval = 0\neval_batches = 1\nout_dir = %s/unused\n"
            "[backend]\ndevice = %s\ncache_dir = %s/cache\n",
            src, FAULT_STEPS, FAULT_INTERVAL, fault_root, fault_dev, fault_root);
    return fclose(f);
}

static char *fault_slurp(const char *path) {
    FILE *f = fopen(path, "r");
    size_t cap = 1 << 20, n = 0;
    char *buf = calloc(1, cap + 1);
    if (f && buf) n = fread(buf, 1, cap, f);
    if (buf) buf[n] = 0;
    if (f) fclose(f);
    return buf ? buf : calloc(1, 1);
}

/* Runs argv (argv[0] is VKT_BINARY's vktrain) in fault_root with VKT_FAULT_INJECT = fault
 * (NULL: unset); its stderr and stdout (in that order) into *log, its stdout alone into *out
 * when not NULL (the caller frees both). Returns the wait status. */
static int fault_cli(const char *fault, char *const *argv, char **log, char **out) {
    char epath[700], opath[700];
    snprintf(epath, sizeof epath, "%s/cli.err", fault_root);
    snprintf(opath, sizeof opath, "%s/cli.out", fault_root);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        int fe = open(epath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fo = open(opath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fe < 0 || fo < 0 || chdir(fault_root)) _exit(126); /* a core would land here */
        dup2(fo, 1);
        dup2(fe, 2);
        unsetenv("VKT_VULKAN_VALIDATION"); /* only this process is validated (vulkan) */
        if (fault) setenv("VKT_FAULT_INJECT", fault, 1);
        else unsetenv("VKT_FAULT_INJECT");
        execv(argv[0], argv);
        _exit(127);
    }
    int st = -1;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) st = -1;
    char *e = fault_slurp(epath), *o = fault_slurp(opath);
    *log = malloc(strlen(e) + strlen(o) + 1);
    if (*log) {
        strcpy(*log, e);
        strcat(*log, o);
    }
    free(e);
    if (out) *out = o;
    else free(o);
    return st;
}

/* vktrain --device DEV --set train.out_dir=OUT [--set SET] [--set EXTRA] run.ini */
static int fault_train(const fault_case *fc, const char *fault, const char *out,
                       const char *extra, char **log) {
    char outset[700];
    snprintf(outset, sizeof outset, "train.out_dir=%s", out);
    char *argv[16];
    int n = 0;
    argv[n++] = getenv("VKT_BINARY");
    argv[n++] = "--device";
    argv[n++] = fault_dev;
    argv[n++] = "--set";
    argv[n++] = outset;
    if (fc->set) argv[n++] = "--set", argv[n++] = (char *)fc->set;
    if (extra) argv[n++] = "--set", argv[n++] = (char *)extra;
    argv[n++] = fault_ini;
    argv[n] = NULL;
    return fault_cli(fault, argv, log, NULL);
}

/* The process exited with status 1 of its own accord: no signal (SIGABRT), no core. */
static void fault_check_exit1(const char *what, int st, const char *log) {
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1,
          "%s: wait status %d (%s), want exit 1; output:\n%s", what, st,
          WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "exited", log);
    DIR *d = opendir(fault_root);
    for (struct dirent *e; d && (e = readdir(d));)
        CHECK(strncmp(e->d_name, "core", 4) != 0, "%s: a core file %s", what, e->d_name);
    if (d) closedir(d);
}

static void fault_check_has(const char *what, const char *log, const char *s) {
    CHECK(strstr(log, s) != NULL, "%s: the output does not name '%s':\n%s", what, s, log);
}

/* No temp file of an interrupted checkpoint (or metrics rewrite) is left in dir. */
static void fault_check_no_tmp(const char *what, const char *dir) {
    DIR *d = opendir(dir);
    CHECK(d != NULL, "%s: %s is missing", what, dir);
    for (struct dirent *e; d && (e = readdir(d));)
        CHECK(strstr(e->d_name, ".tmp") == NULL, "%s: %s/%s left behind", what, dir, e->d_name);
    if (d) closedir(d);
}

/* checkpoint.bin of out reads back and is at `step`. */
static int fault_check_ckpt(const char *what, const char *out, int step, vkt_checkpoint *ck) {
    char path[700], err[512];
    snprintf(path, sizeof path, "%s/checkpoint.bin", out);
    int rc = vkt_checkpoint_read(path, ck, err, sizeof err);
    CHECK(rc == 0, "%s: %s", what, err);
    if (rc) return -1;
    CHECK(ck->step == step, "%s: checkpoint at step %d, want %d", what, ck->step, step);
    return 0;
}

/* The step the message says failed ("step K: device error"), or -1. */
static int fault_failed_step(const char *log) {
    const char *p = strstr(log, ": device error");
    while (p && p > log && p[-1] >= '0' && p[-1] <= '9') p--;
    return p && p - log >= 5 && !strncmp(p - 5, "step ", 5) ? atoi(p) : -1;
}

/* 1: a submission fails after the first checkpoint (the CLI). */
static void fault_submit(const fault_case *fc) {
    char out[700], clean[700], extra[64], *log;
    snprintf(out, sizeof out, "%s/submit", fault_root);
    int st = fault_train(fc, fc->submit, out, NULL, &log);
    fault_check_exit1("submit", st, log);
    fault_check_has("submit", log, "device error");
    fault_check_has("submit", log, fault_name); /* "vulkan:0 (llvmpipe ...)" */
    fault_check_has("submit", log, fc->submit_call);
    fault_check_has("submit", log, fc->submit_result);
    fault_check_has("submit", log, "VKT_FAULT_INJECT=");
    int k = fault_failed_step(log), want = (k - 1) / FAULT_INTERVAL * FAULT_INTERVAL;
    CHECK(k > FAULT_INTERVAL && k <= FAULT_STEPS,
          "submit: %s failed at step %d, not after the first checkpoint (step %d): adjust it "
          "to the op count", fc->submit, k, FAULT_INTERVAL);
    free(log);
    fault_check_no_tmp("submit", out);
    vkt_checkpoint ck, ref;
    if (k <= FAULT_INTERVAL || fault_check_ckpt("submit", out, want, &ck)) return;
    /* the good checkpoint is the one a clean run stopped at that step writes */
    snprintf(clean, sizeof clean, "%s/clean", fault_root);
    snprintf(extra, sizeof extra, "train.stop_step=%d", want);
    st = fault_train(fc, NULL, clean, extra, &log);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the clean run failed:\n%s", log);
    free(log);
    if (fault_check_ckpt("clean", clean, want, &ref) == 0) {
        CHECK(ref.num_params == ck.num_params &&
                  !memcmp(ref.params, ck.params, ck.num_params * sizeof(float)) &&
                  !memcmp(ref.adam, ck.adam, 2 * ck.num_params * sizeof(float)),
              "submit: the checkpoint left at step %d is not the clean run's", want);
        vkt_checkpoint_free(&ref);
    }
    vkt_checkpoint_free(&ck);
    printf("submit: %s failed step %d; checkpoint.bin at step %d, as a clean run's\n",
           fc->submit, k, want);
}

/* 2: the second checkpoint's second download fails (vkt_train_run in this process). Round
 * trips: one per step, four per checkpoint (the parameters' finiteness check, then params, m,
 * v): steps 1 2, checkpoint 3-6, steps 7 8, checkpoint 9-12. */
static void fault_checkpoint_download(const fault_case *fc) {
    char out[700], outset[720], err[2048];
    snprintf(out, sizeof out, "%s/download", fault_root);
    snprintf(outset, sizeof outset, "train.out_dir=%s", out);
    const char *ov[2] = {outset, fc->set};
    vkt_config cfg;
    CHECK(vkt_config_load(&cfg, fault_ini, ov, fc->set ? 2 : 1, err, sizeof err) == 0,
          "config: %s", err);
    setenv("VKT_FAULT_INJECT", "download:11", 1);
    int rc = vkt_train_run(&cfg, NULL, NULL, err, sizeof err);
    unsetenv("VKT_FAULT_INJECT");
    CHECK(rc == 1, "download: vkt_train_run returned %d, want 1: %s", rc, err);
    fault_check_has("download", err, "step 4: device error saving the checkpoint");
    fault_check_has("download", err, fault_name);
    fault_check_has("download", err, fc->download_call);
    fault_check_has("download", err, fc->download_result);
    fault_check_has("download", err, "(step 2) is the last good checkpoint");
    fault_check_no_tmp("download", out);
    vkt_checkpoint ck;
    if (fault_check_ckpt("download", out, 2, &ck) == 0) vkt_checkpoint_free(&ck);
    printf("download: %s\n", err);
}

/* 3: the first device allocation fails (at start-up). */
static void fault_alloc(const fault_case *fc) {
    char out[700], path[720], *log;
    snprintf(out, sizeof out, "%s/alloc", fault_root);
    int st = fault_train(fc, "alloc:1", out, NULL, &log);
    fault_check_exit1("alloc", st, log);
    fault_check_has("alloc", log, fault_dev);
    fault_check_has("alloc", log, fc->alloc_result);
    fault_check_has("alloc", log, "VKT_FAULT_INJECT=alloc:1");
    free(log);
    snprintf(path, sizeof path, "%s/checkpoint.bin", out);
    CHECK(access(path, F_OK) != 0, "alloc: %s was written", path);
}

/* 4: eval and sample of the submit case's checkpoint on a device whose first download fails:
 * exit 1 naming the device, and nothing on stdout that looks like a result. */
static void fault_eval_sample(const fault_case *fc) {
    char out[700], *log, *stdout_;
    snprintf(out, sizeof out, "%s/submit", fault_root);
    char *eval[] = {getenv("VKT_BINARY"), "eval", "--checkpoint", out, "--device", fault_dev,
                    "--batches", "2", NULL};
    int st = fault_cli("download:1", eval, &log, &stdout_);
    fault_check_exit1("eval", st, log);
    fault_check_has("eval", log, fault_name);
    fault_check_has("eval", log, fc->download_call);
    CHECK(stdout_[0] == 0, "eval printed a result: %s", stdout_);
    free(log);
    free(stdout_);
    char *sample[] = {getenv("VKT_BINARY"), "sample", "--checkpoint", out, "--device",
                      fault_dev, "--tokens", "8", "--temperature", "0", NULL};
    st = fault_cli("download:1", sample, &log, &stdout_);
    fault_check_exit1("sample", st, log);
    fault_check_has("sample", log, fault_name);
    fault_check_has("sample", log, fc->download_call);
    CHECK(strspn(stdout_, "\n") == strlen(stdout_), "sample printed tokens: '%s'", stdout_);
    free(log);
    free(stdout_);
}

/* 0: the op interface itself: the first download fails (its buffer zero-filled, -1), then the
 * error is sticky: later downloads and synchronize return -1, vkt_alloc fails with the same
 * message, ops are no-ops; a malformed VKT_FAULT_INJECT is refused at creation. */
static void fault_api(int dev, const char *fault, const char *call, const char *result) {
    char err[1024], again[1024];
    setenv("VKT_FAULT_INJECT", fault, 1);
    vkt_backend *be = vkt_backend_create(dev, err, sizeof err);
    unsetenv("VKT_FAULT_INJECT");
    CHECK(be != NULL, "api: %s", err);
    if (!be) return;
    float x[4] = {1, 2, 3, 4}, y[4];
    vkt_buf *b = vkt_alloc(be, sizeof x, err, sizeof err);
    CHECK(b != NULL, "api: %s", err);
    if (b) {
        vkt_upload(be, vkt_at(b, 0), x, sizeof x);
        vkt_scale(be, vkt_at(b, 0), 2.0f, 4);
        CHECK(vkt_download(be, y, vkt_at(b, 0), sizeof y) == 0 && y[3] == 8.0f,
              "api: the first download failed or is wrong (%g)", y[3]);
        CHECK(vkt_backend_error(be, err, sizeof err) == 0, "api: an error before the fault");
        vkt_scale(be, vkt_at(b, 0), 2.0f, 4);
        CHECK(vkt_download(be, y, vkt_at(b, 0), sizeof y) == -1, "api: %s did not fail", fault);
        CHECK(y[0] == 0 && y[3] == 0, "api: a failed download left data (%g)", y[3]);
        CHECK(vkt_backend_error(be, err, sizeof err) == -1, "api: no sticky error");
        fault_check_has("api", err, fault_name);
        fault_check_has("api", err, call);
        fault_check_has("api", err, result);
        vkt_fill(be, vkt_at(b, 0), 5.0f, 4); /* a no-op: nothing reaches the driver */
        CHECK(vkt_synchronize(be) == -1, "api: synchronize after the error returned 0");
        CHECK(vkt_download(be, y, vkt_at(b, 0), sizeof y) == -1, "api: the error is not sticky");
        CHECK(vkt_alloc(be, 64, again, sizeof again) == NULL && !strcmp(again, err),
              "api: vkt_alloc after the error: '%s'", again);
        vkt_free(be, b);
    }
    vkt_backend_destroy(be);
    setenv("VKT_FAULT_INJECT", "submit:x", 1);
    be = vkt_backend_create(dev, err, sizeof err);
    unsetenv("VKT_FAULT_INJECT");
    CHECK(be == NULL && strstr(err, "VKT_FAULT_INJECT=submit:x"),
          "api: a malformed VKT_FAULT_INJECT was accepted (%s)", be ? "created" : err);
    vkt_backend_destroy(be);
}

static int device_fault_main(const fault_case *fc) {
    char test[64];
    snprintf(test, sizeof test, "test_%s_fault", fc->backend);
    vkt_device_info info;
    int skip, dev = vkt_test_backend_device(test, fc->backend, &info, &skip);
    if (dev < 0) return skip;
    if (!getenv("VKT_BINARY")) {
        fprintf(stderr, "VKT_BINARY is not set (run through ctest)\n");
        return 77;
    }
    snprintf(fault_dev, sizeof fault_dev, "%s:0", fc->backend);
    snprintf(fault_name, sizeof fault_name, "%s:0 (%s)", fc->backend, info.name);
    if (!mkdtemp(fault_root) || fault_write_config()) return 1;
    /* the second round trip, or (opencl) the second launch, which precedes it */
    fault_api(dev, "download:2", fc->download_call, fc->download_result);
    fault_api(dev, "submit:2", fc->submit_call, fc->submit_result);
    fault_submit(fc);
    fault_checkpoint_download(fc);
    fault_alloc(fc);
    fault_eval_sample(fc);
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", fault_root);
    if (!vkt_test_failures && system(cmd)) fprintf(stderr, "cleanup failed\n");
    return vkt_test_finish(test);
}
