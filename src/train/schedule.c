/* Learning-rate and sequence-length schedule: the one place that decides what a step uses. */
#include <math.h>

#include "vktrain/train.h"

void vkt_schedule_from_config(vkt_schedule *s, const vkt_config *cfg) {
    s->kind = cfg->optim.schedule;
    s->lr = cfg->optim.lr;
    s->min_lr = cfg->optim.min_lr;
    s->decay_fraction = cfg->optim.decay_fraction;
    s->warmup_steps = cfg->optim.warmup_steps;
    s->max_steps = cfg->train.max_steps;
    s->seq_len = cfg->train.seq_len;
}

double vkt_schedule_lr(const vkt_schedule *s, int step) {
    if (step < s->warmup_steps) return s->lr * (step + 1) / s->warmup_steps;
    if (s->kind == VKT_SCHED_CONSTANT) return s->lr;
    int decay_start = s->warmup_steps, decay_len = s->max_steps - s->warmup_steps;
    if (s->kind == VKT_SCHED_WSD) {
        /* warmup, then stable at lr, then a linear decay over the last decay_fraction */
        decay_len = (int)ceil(s->max_steps * s->decay_fraction);
        decay_start = s->max_steps - decay_len;
        if (decay_start < s->warmup_steps) decay_start = s->warmup_steps;
        decay_len = s->max_steps - decay_start;
        if (step < decay_start) return s->lr;
    }
    if (decay_len <= 0) return s->lr;
    /* progress runs from 0 at the first decaying step to 1 at the last step */
    double progress = decay_len > 1 ? (double)(step - decay_start) / (decay_len - 1) : 0.0;
    if (progress > 1) progress = 1;
    double coeff = s->kind == VKT_SCHED_COSINE ? 0.5 * (1.0 + cos(3.14159265358979323846 * progress))
                                               : 1.0 - progress;
    return s->min_lr + coeff * (s->lr - s->min_lr);
}

int vkt_schedule_seq_len(const vkt_schedule *s, int step) {
    (void)step;
    return s->seq_len;
}
