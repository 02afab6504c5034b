/* precision = fp16 in the shared loop, on the reference backend (whose matmul rounds its
 * operands to fp16 exactly as a GPU's fp16 tiers do):
 *  - 30 steps follow the fp32 run loss for loss within 2e-2 relative; the default loss scale
 *    (65536) neither overflows nor grows in that time;
 *  - a scale far too large (2^24) overflows: those steps are skipped (metrics.jsonl says so,
 *    with a null norm), the scale halves each time and training then goes on and learns;
 *  - clean steps double the scale every loss_scale_window steps (1 -> 8 in 10 steps of 3);
 *  - 10 steps straight and 5 + resume + 5 give bitwise the same losses, scale and skips (the
 *    scale state travels in the checkpoint). */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "train_util.h"
#include "vkt_test.h"
#include "vktrain/checkpoint.h"
#include "vktrain/train.h"

static char root[] = "/tmp/vkt_test_train_fp16_XXXXXX";

/* Runs `steps` steps with the given extra keys in root/name; 0 on success. */
static int run(const char *name, int steps, const char **keys, int nkeys, float *losses,
               vkt_train_result *res) {
    char dir[200], max[64];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    snprintf(max, sizeof max, "train.max_steps=%d", steps);
    const char *extra[16] = {max};
    int n = 1;
    for (int i = 0; i < nkeys && n < 16; i++) extra[n++] = keys[i];
    vkt_config cfg;
    if (small_config(&cfg, dir, extra, n)) return -1;
    char err[1024];
    int rc = vkt_train_run(&cfg, res, losses, err, sizeof err);
    if (rc) fprintf(stderr, "%s: %s\n", name, err);
    return rc;
}

/* Lines of root/name/metrics.jsonl containing `needle`. */
static int count_lines_with(const char *name, const char *needle) {
    char path[300], line[1024];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", root, name);
    FILE *f = fopen(path, "r");
    int n = 0;
    while (f && fgets(line, sizeof line, f)) n += strstr(line, needle) != NULL;
    if (f) fclose(f);
    return n;
}

int main(void) {
    if (!mkdtemp(root)) return 1;
    vkt_train_result r32, r16;
    float l32[30], l16[30];

    /* fp16 follows fp32 */
    const char *fp16[] = {"train.precision=fp16"};
    CHECK(run("fp32", 30, NULL, 0, l32, &r32) == 0, "fp32 run");
    CHECK(run("fp16", 30, fp16, 1, l16, &r16) == 0, "fp16 run");
    double worst = 0;
    for (int i = 0; i < 30; i++) worst = fmax(worst, fabs(l16[i] - l32[i]) / fabs(l32[i]));
    printf("fp16 vs fp32, 30 steps: largest relative loss difference %.2e; final %.5f vs %.5f\n",
           worst, l16[29], l32[29]);
    CHECK(worst <= 2e-2, "fp16 loss strays %.3g relative from fp32", worst);
    CHECK(worst > 0, "fp16 losses are bitwise fp32's: the operands were not rounded");
    CHECK(r16.loss_scale == 65536.0f && r16.skipped_steps == 0 && r32.loss_scale == 1.0f,
          "scales: fp16 %g (%d skipped), fp32 %g", r16.loss_scale, r16.skipped_steps,
          r32.loss_scale);
    CHECK(count_lines_with("fp16", "\"loss_scale\":65536,\"skipped\":false") == 30,
          "fp16 metrics lines without the scale");
    CHECK(count_lines_with("fp32", "loss_scale") == 0, "fp32 metrics mention a loss scale");

    /* overflow: skipped steps, halving, and training still works */
    const char *big[] = {"train.precision=fp16", "train.loss_scale_init=16777216"};
    float lb[40];
    vkt_train_result rb;
    CHECK(run("overflow", 40, big, 2, lb, &rb) == 0, "overflow run");
    int skipped_lines = count_lines_with("overflow", "\"skipped\":true");
    int null_norms = count_lines_with("overflow", "\"grad_norm\":null");
    printf("loss scale 2^24: %d steps skipped, final scale %g, loss %.4f -> %.4f\n",
           rb.skipped_steps, rb.loss_scale, lb[0], lb[39]);
    CHECK(rb.skipped_steps >= 1, "no step overflowed at loss scale 2^24");
    CHECK(skipped_lines == rb.skipped_steps && null_norms == rb.skipped_steps,
          "metrics: %d skipped lines, %d null norms, %d skipped steps", skipped_lines,
          null_norms, rb.skipped_steps);
    CHECK(rb.loss_scale == ldexpf(1.0f, 24 - rb.skipped_steps),
          "final scale %g after %d halvings of 2^24", rb.loss_scale, rb.skipped_steps);
    CHECK(lb[39] < lb[0] - 1.0f, "the run did not learn after its skips: %g -> %g", lb[0],
          lb[39]);

    /* growth */
    const char *grow[] = {"train.precision=fp16", "train.loss_scale_init=1",
                          "train.loss_scale_window=3"};
    float lg[10];
    vkt_train_result rg;
    CHECK(run("grow", 10, grow, 3, lg, &rg) == 0, "growth run");
    CHECK(rg.loss_scale == 8.0f && rg.skipped_steps == 0, "scale 1 after 10 steps of window 3: "
          "%g (%d skipped), want 8", rg.loss_scale, rg.skipped_steps);

    /* resume: the scale state (and AdamW's count of real updates) continues exactly; the
     * large initial scale makes the first half skip steps */
    const char *a[] = {"train.precision=fp16", "train.loss_scale_init=16777216",
                       "train.loss_scale_window=4"};
    const char *b1[] = {a[0], a[1], a[2], "train.stop_step=5"};
    const char *b2[] = {a[0], a[1], a[2], "train.resume=true"};
    float straight[10] = {0}, split[10] = {0};
    vkt_train_result ra, rs;
    CHECK(run("straight", 10, a, 3, straight, &ra) == 0, "straight run");
    CHECK(run("split", 10, b1, 4, split, &rs) == 0, "first half");
    int skipped_first_half = rs.skipped_steps;
    CHECK(run("split", 10, b2, 4, split, &rs) == 0, "resumed half");
    for (int i = 0; i < 10; i++)
        CHECK(memcmp(&straight[i], &split[i], sizeof(float)) == 0, "step %d: loss %.9g vs %.9g",
              i + 1, straight[i], split[i]);
    CHECK(ra.loss_scale == rs.loss_scale && ra.skipped_steps == rs.skipped_steps,
          "straight: scale %g, %d skipped; split: scale %g, %d skipped", ra.loss_scale,
          ra.skipped_steps, rs.loss_scale, rs.skipped_steps);
    CHECK(skipped_first_half >= 1, "the first half skipped no step: the resume check is weak");
    printf("resume: %d skipped before the stop, %d in all, final scale %g in both\n",
           skipped_first_half, rs.skipped_steps, rs.loss_scale);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd)) fprintf(stderr, "cleanup failed\n");
    return vkt_test_finish("test_train_fp16");
}
