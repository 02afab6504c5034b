/* A diverging run (cpu backend, tiny model): it stops with exit status 1 naming the step and
 * the first tensor whose gradient (or parameter) is not finite, with a hint that fits the
 * config, and the checkpoint from before stays as it was. The outlier guard ([train]
 * skip_outliers): a crafted batch after 100 clean steps is skipped, leaving the parameters and
 * AdamW moments exactly as they were, and is counted in metrics.jsonl. */
#include <stdlib.h>
#include <unistd.h>

#include "train_util.h"
#include "vkt_test.h"
#include "vktrain/checkpoint.h"
#include "vktrain/train.h"

static char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) len = -1;
    fclose(f);
    if (!buf || len < 0) {
        free(buf);
        return NULL;
    }
    buf[len] = 0;
    *n = (size_t)len;
    return buf;
}

static int run(const char *dir, const char **extra, int n, vkt_train_result *res, float *losses,
               char *err, size_t errlen) {
    vkt_config cfg;
    if (small_config(&cfg, dir, extra, n)) exit(1);
    return vkt_train_run(&cfg, res, losses, err, errlen);
}

static void divergence(const char *dir) {
    char ckpt[1300], err[2048];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.bin", dir);
    vkt_train_result res;
    const char *first[] = {"train.max_steps=20", "train.stop_step=4"};
    int rc = run(dir, first, 2, &res, NULL, err, sizeof err);
    CHECK(rc == 0, "the first 4 steps: %s", err);
    size_t n0 = 0, n1 = 0;
    char *before = read_all(ckpt, &n0);
    CHECK(before != NULL, "no checkpoint after step 4");

    /* lr = 1e39 is inf as a float: step 5's update turns the weights into inf/NaN while its
     * own loss (of the weights before it) is finite. A checkpoint after step 5 would hold
     * NaNs: refused, the step-4 one kept. */
    const char *every[] = {"train.max_steps=20", "train.resume=true", "optim.lr=1e39",
                           "optim.min_lr=0", "train.checkpoint_interval=1"};
    rc = run(dir, every, 5, &res, NULL, err, sizeof err);
    CHECK(rc == 1, "rc %d, want 1: %s", rc, err);
    CHECK(strstr(err, "step 5: the update made the parameters non-finite") &&
              strstr(err, "(first wte (element ") && strstr(err, "step 4) is the last checkpoint"),
          "message: %s", err);
    char *after = read_all(ckpt, &n1);
    CHECK(after && n0 == n1 && !memcmp(before, after, n0), "checkpoint.bin changed");
    free(after);

    /* Without a checkpoint in between: step 6's loss is NaN. The message names the step, the
     * first tensor whose gradient is not finite and the update that diverged; grad_clip is
     * set (the default 1), so the hint does not suggest it. */
    const char *end[] = {"train.max_steps=20", "train.resume=true", "optim.lr=1e39",
                         "optim.min_lr=0"};
    rc = run(dir, end, 4, &res, NULL, err, sizeof err);
    CHECK(rc == 1, "rc %d, want 1: %s", rc, err);
    CHECK(strstr(err, "step 6: the loss is not finite under fp32") &&
              strstr(err, "the first tensor whose gradient is not finite: wte (element") &&
              strstr(err, "the update of step 5 diverged") &&
              strstr(err, "HINT: lower [optim] lr") && !strstr(err, "set [optim] grad_clip"),
          "message: %s", err);
    after = read_all(ckpt, &n1);
    CHECK(after && n0 == n1 && !memcmp(before, after, n0), "checkpoint.bin changed");
    free(after);

    /* grad_clip off: then it is the hint */
    const char *noclip[] = {"train.max_steps=20", "train.resume=true", "optim.lr=1e39",
                            "optim.min_lr=0", "optim.grad_clip=0"};
    rc = run(dir, noclip, 5, &res, NULL, err, sizeof err);
    CHECK(rc == 1 && strstr(err, "HINT: set [optim] grad_clip = 1.0 (clipping is off)"),
          "rc %d: %s", rc, err);
    free(before);
}

/* K - 1 clean steps of Shakespeare, then at step K a batch of characters the model has never
 * seen: its loss is far above the last 100 steps'. */
#define K 110
#define BT (4 * 32) /* small_config: batch 4 x seq 32, sequential windows of 32 */

static int read_params(const char *dir, vkt_checkpoint *ck) {
    char path[1200], err[1024];
    snprintf(path, sizeof path, "%s/checkpoint.bin", dir);
    int rc = vkt_checkpoint_read(path, ck, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    return rc;
}

static void outliers(const char *root) {
    const char *src = getenv("VKT_SOURCE_DIR");
    char path[1300], corpus[1200];
    snprintf(corpus, sizeof corpus, "%s/data/tinyshakespeare.txt", src);
    size_t n = 0;
    char *text = read_all(corpus, &n);
    size_t clean = (size_t)(K - 1) * BT + 1, bad = 2 * BT, tail = 30 * BT;
    if (!text || n < clean + tail) {
        CHECK(0, "cannot read %s", corpus);
        free(text);
        return;
    }
    snprintf(path, sizeof path, "%s/spike.txt", root);
    FILE *f = fopen(path, "wb");
    fwrite(text, 1, clean, f);
    static const char odd[] = "~^{}|<>@`\\_";
    for (size_t i = 0; i < bad; i++) fputc(odd[(i * 7) % (sizeof odd - 1)], f);
    fwrite(text + clean, 1, tail, f);
    fclose(f);
    free(text);

    char train[1400], dir_a[1200], dir_b[1200], dir_c[1200], err[2048];
    snprintf(train, sizeof train, "data.train=%s", path);
    snprintf(dir_a, sizeof dir_a, "%s/a", root);
    snprintf(dir_b, sizeof dir_b, "%s/b", root);
    snprintf(dir_c, sizeof dir_c, "%s/c", root);
    char stop_before[64], stop_at[64];
    snprintf(stop_before, sizeof stop_before, "train.stop_step=%d", K - 1);
    snprintf(stop_at, sizeof stop_at, "train.stop_step=%d", K);
    vkt_train_result ra, rb, rcres;
    static float losses[200];
    /* val_fraction 0: every token is train, so the windows are where the file puts them */
    const char *a[] = {train, "data.order=sequential", "data.val_fraction=0",
                       "train.max_steps=200", "train.skip_outliers=4", stop_before};
    const char *b[] = {train, "data.order=sequential", "data.val_fraction=0",
                       "train.max_steps=200", "train.skip_outliers=4", stop_at};
    const char *c[] = {train, "data.order=sequential", "data.val_fraction=0",
                       "train.max_steps=200", stop_at};
    int rc = run(dir_a, a, 6, &ra, NULL, err, sizeof err);
    CHECK(rc == 0, "run a: %s", err);
    rc = run(dir_b, b, 6, &rb, losses, err, sizeof err);
    CHECK(rc == 0, "run b: %s", err);
    rc = run(dir_c, c, 5, &rcres, NULL, err, sizeof err);
    CHECK(rc == 0, "run c: %s", err);
    CHECK(rb.outlier_skips >= 1 && rb.outlier_skips == ra.outlier_skips + 1,
          "outlier skips: %d up to step %d, %d up to step %d", ra.outlier_skips, K - 1,
          rb.outlier_skips, K);
    /* the update goes out with the next step's work: still one round trip a step */
    CHECK(rb.max_syncs_per_step == 1, "with the guard a step makes %d round trips, want 1",
          rb.max_syncs_per_step);
    printf("step %d: loss %.3f after %.3f (skips: %d)\n", K, losses[K - 1], losses[K - 2],
           rb.outlier_skips);

    /* skipped: step K left parameters and both moments bit for bit as step K - 1 did */
    vkt_checkpoint ca, cb, cc;
    memset(&ca, 0, sizeof ca), memset(&cb, 0, sizeof cb), memset(&cc, 0, sizeof cc);
    if (!read_params(dir_a, &ca) && !read_params(dir_b, &cb) && !read_params(dir_c, &cc)) {
        size_t bytes = ca.num_params * sizeof(float);
        CHECK(ca.num_params == cb.num_params && !memcmp(ca.params, cb.params, bytes) &&
                  !memcmp(ca.adam, cb.adam, 2 * bytes),
              "the skipped step changed the parameters or AdamW moments");
        CHECK(memcmp(ca.params, cc.params, bytes) != 0, "without the guard step %d changed "
              "nothing: the test proves nothing", K);
        CHECK(cb.loss_scale.skipped == ca.loss_scale.skipped + 1,
              "skipped updates in the checkpoint: %d then %d", ca.loss_scale.skipped,
              cb.loss_scale.skipped);
    } else {
        CHECK(0, "checkpoints unreadable");
    }
    vkt_checkpoint_free(&ca);
    vkt_checkpoint_free(&cb);
    vkt_checkpoint_free(&cc);

    /* metrics.jsonl: the step's line says it, and the count runs on */
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir_b);
    size_t mn = 0;
    char *m = read_all(path, &mn);
    char want[64];
    snprintf(want, sizeof want, "{\"step\":%d,", K);
    const char *line = m ? strstr(m, want) : NULL;
    char flag[64];
    snprintf(flag, sizeof flag, "\"outlier_skipped\":true,\"outlier_skips\":%d}",
             rb.outlier_skips);
    CHECK(line && strstr(line, flag) && strchr(line, '\n') > strstr(line, flag),
          "metrics line of step %d: %.300s", K, line ? line : "(none)");
    CHECK(m && strstr(m, "\"outlier_skipped\":false"), "clean steps say false");
    free(m);
}

int main(void) {
    char dir[] = "/tmp/vkt_test_guard_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char sub[1200];
    snprintf(sub, sizeof sub, "%s/div", dir);
    divergence(sub);
    outliers(dir);
    char cmd[1300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "cleanup failed\n");
    return vkt_test_finish("test_train_guard");
}
