/* Checkpoint and resume: 20 steps straight and 10 steps + resume + 10 steps give bitwise the
 * same losses and parameters on the reference backend; metrics.jsonl continues without
 * duplicates; a corrupted checkpoint is refused with a message naming the file. */
#include <stdlib.h>
#include <unistd.h>

#include "train_util.h"
#include "vkt_test.h"
#include "vktrain/checkpoint.h"
#include "vktrain/train.h"

static int count_lines(const char *dir) {
    char path[1200], line[1024];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    int n = 0;
    while (f && fgets(line, sizeof line, f)) n++;
    if (f) fclose(f);
    return n;
}

static int run(const char *dir, const char *stop, const char *resume, float *losses) {
    vkt_config cfg;
    const char *extra[] = {"train.max_steps=20", stop, resume, "train.checkpoint_interval=7"};
    if (small_config(&cfg, dir, extra, 4)) return -1;
    char err[1024];
    vkt_train_result res;
    int rc = vkt_train_run(&cfg, &res, losses, err, sizeof err);
    if (rc) fprintf(stderr, "run in %s: %s\n", dir, err);
    return rc;
}

int main(void) {
    char a[] = "/tmp/vkt_test_resume_a_XXXXXX", b[] = "/tmp/vkt_test_resume_b_XXXXXX";
    if (!mkdtemp(a) || !mkdtemp(b)) return 1;
    float straight[20] = {0}, split[20] = {0};
    CHECK(run(a, "train.stop_step=0", "train.resume=false", straight) == 0, "straight run");
    CHECK(run(b, "train.stop_step=10", "train.resume=false", split) == 0, "first half");
    CHECK(count_lines(b) == 10, "after the first half metrics.jsonl has %d lines", count_lines(b));

    /* a line logged after the checkpoint (as if the run died at step 11) must not survive */
    char path[1200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", b);
    FILE *f = fopen(path, "a");
    if (f) {
        fprintf(f, "{\"step\":11,\"loss\":9.0}\n");
        fclose(f);
    }
    CHECK(run(b, "train.stop_step=0", "train.resume=true", split) == 0, "resumed half");
    for (int i = 0; i < 20; i++)
        CHECK(memcmp(&straight[i], &split[i], sizeof(float)) == 0, "step %d: loss %.9g vs %.9g",
              i + 1, straight[i], split[i]);
    CHECK(count_lines(b) == 20, "metrics.jsonl has %d lines after resume, want 20", count_lines(b));

    /* the final checkpoints hold identical parameters and optimizer state */
    char pa[1200], pb[1200], err[1024];
    snprintf(pa, sizeof pa, "%s/%s", a, VKT_CHECKPOINT_FILE);
    snprintf(pb, sizeof pb, "%s/%s", b, VKT_CHECKPOINT_FILE);
    vkt_checkpoint ca, cb;
    int ra = vkt_checkpoint_read(pa, &ca, err, sizeof err);
    CHECK(ra == 0, "%s", err);
    int rb = vkt_checkpoint_read(pb, &cb, err, sizeof err);
    CHECK(rb == 0, "%s", err);
    if (ra == 0 && rb == 0) {
        CHECK(ca.step == 20 && cb.step == 20, "steps %d %d", ca.step, cb.step);
        CHECK(ca.num_params == cb.num_params &&
                  !memcmp(ca.params, cb.params, ca.num_params * sizeof(float)) &&
                  !memcmp(ca.adam, cb.adam, 2 * ca.num_params * sizeof(float)),
              "parameters or AdamW moments differ");
        CHECK(ca.loader.seed == cb.loader.seed && ca.loader.batches == cb.loader.batches,
              "loader positions differ");
        CHECK(ca.config_text && strstr(ca.config_text, "[model]"), "no config text");
        vkt_checkpoint_free(&ca);
        vkt_checkpoint_free(&cb);
    }

    /* corruption: flip one byte in the middle, the read must fail naming the file */
    f = fopen(pa, "r+b");
    if (f) {
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fseek(f, size / 2, SEEK_SET);
        int c = fgetc(f);
        fseek(f, size / 2, SEEK_SET);
        fputc(c ^ 0x5A, f);
        fclose(f);
    }
    err[0] = 0;
    CHECK(vkt_checkpoint_read(pa, &ca, err, sizeof err) == 2 && strstr(err, pa) &&
              strstr(err, "corrupt"),
          "corrupted checkpoint: '%s'", err);
    /* truncation */
    CHECK(truncate(pa, 100) == 0, "truncate");
    err[0] = 0;
    CHECK(vkt_checkpoint_read(pa, &ca, err, sizeof err) == 2 && strstr(err, "truncated"),
          "truncated checkpoint: '%s'", err);

    char cmd[2600];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", a, b);
    if (system(cmd)) fprintf(stderr, "cleanup failed\n");
    return vkt_test_finish("test_resume");
}
