/* Run logging: one human progress line on stderr (rewritten in place on a terminal, plain
 * lines otherwise) and machine-readable JSON lines in out_dir/metrics.jsonl. */
#ifndef VKTRAIN_LOG_H
#define VKTRAIN_LOG_H

#include <stddef.h>
#include <stdio.h>

#include "vktrain/backend.h"

typedef struct vkt_step_stats {
    int step, total_steps; /* step: optimizer steps done, 1-based */
    float loss, lr, grad_norm;
    double tokens_per_s, step_ms, eta_s;
    double data_wait_ms; /* of step_ms: waiting for the loader */
    int ranks;           /* an MPI run's ranks (0 or 1: one process) */
    double compute_ms;   /* MPI: of step_ms, this rank's forward and backward passes */
    double exchange_ms;  /* MPI: of step_ms, the gradient exchange (with waiting for the other
                          * ranks to finish theirs) */
    int has_val;
    float val_loss;
    float loss_scale; /* precision fp16: the scale after this step; 0 = not fp16 */
    int skipped;      /* fp16: this step's gradients overflowed and the update was skipped */
    int outlier_guard;   /* [train] skip_outliers is on: the two fields below are reported */
    int outlier_skipped; /* the guard skipped this step's update */
    int outlier_skips;   /* updates it skipped so far in this run */
} vkt_step_stats;

#define VKT_METRICS_FILE "metrics.jsonl" /* in out_dir */

typedef struct vkt_metrics {
    FILE *f;
    char path[1100];
} vkt_metrics;

/* Opens out_dir/metrics.jsonl. A fresh run (keep_until_step < 0) starts it empty; a resumed
 * run keeps the lines up to keep_until_step (dropping any logged after the checkpoint it
 * resumes from) and appends. 0; 2 when a non-regular file is in its place; 1 when it cannot
 * be written (err names the file either way). */
int vkt_metrics_open(vkt_metrics *m, const char *out_dir, int keep_until_step, char *err,
                     size_t errlen);
void vkt_metrics_write(vkt_metrics *m, const vkt_step_stats *s);
void vkt_metrics_close(vkt_metrics *m);

/* The progress line for a step. */
void vkt_log_progress(const vkt_step_stats *s);
/* Ends an in-place progress line before other output. */
void vkt_log_newline(void);

/* The table of vktrain --profile: op, calls, total ms, ms per step, share of the total, in the
 * order given (vkt_profile_report's: largest first). `source` says what was measured. */
void vkt_log_profile(FILE *f, const vkt_profile_entry *e, int n, int steps, const char *source);

#endif
