/* The shared training loop (every backend): schedule, optimizer, gradient accumulation,
 * clipping, evaluation, logging and checkpoints. */
#ifndef VKTRAIN_TRAIN_H
#define VKTRAIN_TRAIN_H

#include "vktrain/config.h"
#include "vktrain/model.h"

/* ---- schedule: each step's learning rate and sequence length ---- */
typedef struct vkt_schedule {
    vkt_sched_kind kind;
    double lr, min_lr, decay_fraction;
    int warmup_steps, max_steps, seq_len;
} vkt_schedule;

void vkt_schedule_from_config(vkt_schedule *s, const vkt_config *cfg);
/* step is 0-based: the LR of the (step+1)-th optimizer update. */
double vkt_schedule_lr(const vkt_schedule *s, int step);
/* The sequence length used at a step (constant for now; curriculum learning plugs in here). */
int vkt_schedule_seq_len(const vkt_schedule *s, int step);

/* ---- optimizer ---- */
typedef struct vkt_optim_args {
    float lr, beta1, beta2, eps, weight_decay, grad_scale;
    int t;           /* 1-based update count */
    vkt_ptr norm_sq; /* device: global gradient sum of squares (vkt_grad_norm_sq), or null */
    float max_norm;  /* clip the global norm to this on the device; 0 = off */
} vkt_optim_args;
/* One AdamW update of every parameter tensor (weight decay only where the tensor decays). */
void vkt_optim_adamw_step(vkt_model *m, const vkt_optim_args *a);

/* The gradient multiplier that clips a global norm to max_norm (max_norm 0 = no clipping). */
float vkt_clip_scale(float norm, float max_norm);
/* The gradient buffer's sum of squares into out (one float on the device), no host wait. */
void vkt_grad_norm_sq(vkt_model *m, vkt_ptr out);

/* ---- the run ---- */
typedef struct vkt_train_result {
    int steps_done;      /* optimizer steps completed (including those before a resume) */
    float last_loss, last_val_loss; /* val loss < 0 when never evaluated */
    int max_syncs_per_step; /* most host round trips one optimizer step made (should be 1) */
    int skipped_steps;   /* updates skipped (fp16 gradient overflow, outlier guard), all runs */
    float loss_scale;    /* precision fp16: the loss scale after the last step; 1 under fp32 */
    int outlier_skips;   /* [train] skip_outliers: updates it skipped in this call */
} vkt_train_result;

/* Asks a running vkt_train_run to stop after the current step, saving a checkpoint; safe to
 * call from a signal handler. The run then returns VKT_TRAIN_INTERRUPTED. */
void vkt_train_request_stop(void);
#define VKT_TRAIN_INTERRUPTED 130
/* 1 once a run's training loop has started (a stop request is then honoured after a step);
 * 0 before, while data, weights and the device are being opened: a signal handler should end
 * the process then. Safe to call from a signal handler. */
int vkt_train_stop_honoured(void);

/* Options of a run that are not part of its config (they change what is reported, never
 * what is computed). */
typedef struct vkt_train_opts {
    int profile; /* time every op on the device; print a table to stderr at the end */
    /* allocate everything the run needs on the device, print the memory per buffer class to
     * stdout ("fits: yes|no" last) and return without training: no out_dir, lock, metrics or
     * data (the shape and vocab come from the config, or init_from's header). 0 = it fits;
     * 1 with err naming the buffer that did not */
    int dry_run;
    /* the ranks of an MPI run (main's vkt_dist_init); NULL: one process (vkt_dist_local) */
    struct vkt_dist *dist;
} vkt_train_opts;

/* Trains as the config says. losses_out (may be NULL) receives the loss of every step run in
 * this call, indexed by step number (size cfg->train.max_steps). Returns 0, or 1 (runtime
 * failure) / 2 (data or config problem) with err filled. */
int vkt_train_run(const vkt_config *cfg, vkt_train_result *res, float *losses_out, char *err,
                  size_t errlen);
/* The same with options (opts may be NULL: the defaults). */
int vkt_train_run_opts(const vkt_config *cfg, const vkt_train_opts *opts, vkt_train_result *res,
                       float *losses_out, char *err, size_t errlen);

#endif
