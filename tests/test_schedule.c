/* The LR schedule (warmup, cosine, linear, wsd, constant), the sequence length per step, and
 * the clipping multiplier, against values worked out by hand. */
#include "vkt_test.h"
#include "vktrain/train.h"

static void near(const char *what, double got, double want) {
    CHECK(fabs(got - want) <= 1e-9 * fmax(1.0, fabs(want)), "%s: got %.12g want %.12g", what, got,
          want);
}

int main(void) {
    vkt_schedule s = {.kind = VKT_SCHED_COSINE, .lr = 1.0, .min_lr = 0.1, .decay_fraction = 0.2,
                      .warmup_steps = 10, .max_steps = 110, .seq_len = 64};
    /* warmup: linear from lr/warmup up to lr at the last warmup step */
    near("warmup step 0", vkt_schedule_lr(&s, 0), 0.1);
    near("warmup step 4", vkt_schedule_lr(&s, 4), 0.5);
    near("warmup step 9", vkt_schedule_lr(&s, 9), 1.0);
    /* cosine over steps 10..109: lr at the first, min_lr at the last, the mean halfway */
    near("cosine first", vkt_schedule_lr(&s, 10), 1.0);
    near("cosine last", vkt_schedule_lr(&s, 109), 0.1);
    double mid = vkt_schedule_lr(&s, 59); /* progress 49/99, just before the middle */
    CHECK(mid < 0.6 && mid > 0.5, "cosine near the middle %g", mid);
    for (int i = 10; i < 109; i++)
        CHECK(vkt_schedule_lr(&s, i + 1) <= vkt_schedule_lr(&s, i), "cosine rises at %d", i);

    s.kind = VKT_SCHED_LINEAR;
    s.max_steps = 111; /* decay over 101 steps: progress 0.5 exactly at step 60 */
    near("linear first", vkt_schedule_lr(&s, 10), 1.0);
    near("linear middle", vkt_schedule_lr(&s, 60), 0.55);
    near("linear last", vkt_schedule_lr(&s, 110), 0.1);
    s.kind = VKT_SCHED_COSINE;
    near("cosine middle", vkt_schedule_lr(&s, 60), 0.55);

    /* wsd: warmup 10, stable at lr, then linear decay over the last 20% (20 of 100 steps) */
    s.kind = VKT_SCHED_WSD;
    s.max_steps = 100;
    near("wsd warmup", vkt_schedule_lr(&s, 4), 0.5);
    near("wsd stable", vkt_schedule_lr(&s, 50), 1.0);
    near("wsd stable end", vkt_schedule_lr(&s, 79), 1.0);
    near("wsd decay start", vkt_schedule_lr(&s, 80), 1.0);
    near("wsd last", vkt_schedule_lr(&s, 99), 0.1);
    CHECK(vkt_schedule_lr(&s, 90) < 1.0 && vkt_schedule_lr(&s, 90) > 0.1, "wsd mid-decay %g",
          vkt_schedule_lr(&s, 90));

    s.kind = VKT_SCHED_CONSTANT;
    near("constant warmup", vkt_schedule_lr(&s, 4), 0.5);
    near("constant", vkt_schedule_lr(&s, 99), 1.0);

    s.warmup_steps = 0;
    s.kind = VKT_SCHED_COSINE;
    near("no warmup: cosine starts at lr", vkt_schedule_lr(&s, 0), 1.0);
    s.max_steps = 1;
    near("a one-step run uses lr", vkt_schedule_lr(&s, 0), 1.0);

    CHECK(vkt_schedule_seq_len(&s, 0) == 64 && vkt_schedule_seq_len(&s, 57) == 64, "seq_len");

    near("clip off", vkt_clip_scale(10.0f, 0.0f), 1.0);
    near("under the limit", vkt_clip_scale(0.5f, 1.0f), 1.0);
    near("over the limit", vkt_clip_scale(4.0f, 1.0f), 0.25);
    return vkt_test_finish("test_schedule");
}
