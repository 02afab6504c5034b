/* The shared training loop: the same code drives every backend. One optimizer step =
 * grad_accum_steps micro-batches (forward + backward, gradients summed), a gradient
 * all-reduce through dist, global-norm clipping, AdamW, then evaluation, logging and
 * checkpoints as configured. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

#include "train/rundir.h"
#include "util/fs.h"
#include "vktrain/checkpoint.h"
#include "vktrain/data.h"
#include "vktrain/dist.h"
#include "vktrain/log.h"
#include "vktrain/train.h"

typedef struct run {
    vkt_config *cfg;          /* the run's copy: an llm.c init_from sets the model shape */
    vkt_data data;
    vkt_backend *be;
    vkt_model *model;
    vkt_buf *scalar; /* two floats on the device: [0] the step's loss, [1] gradient norm^2 */
    vkt_dist *dist;
    vkt_loader *loader;
    vkt_schedule sched;
    vkt_metrics metrics;
    int32_t *inputs, *targets;
    int B;          /* this rank's sequences per micro-batch (its share) */
    int global_B;   /* all ranks' (batch_size x ranks); this rank's are [offset, offset + B) */
    int offset;
    int mb;         /* the most sequences of one forward pass ([train] batch_size: the model's
                     * size); a larger share runs in passes of mb */
    vkt_batch_split split; /* every rank's share (balance = auto; even shares otherwise) */
    int balance_auto;
    double meas_rows, meas_s; /* balance = auto: sequences and compute seconds measured */
    int hetero;     /* ranks on different devices: rank 0's parameters are broadcast after
                     * each update, as their AdamW may round differently */
    int collective_err; /* the error stopping the run is every rank's (same values, same
                         * decision): rank 0 reports it; any other is this rank's alone */
    int start_step; /* optimizer steps already done (resume) */
    double data_wait_s; /* waiting for the loader in this step */
    double compute_s, exchange_s; /* MPI: this step's passes and its gradient exchange */
    vkt_checkpoint init; /* weights to start from ([model] init_from), read before the model */
    int fp16;            /* [train] precision = fp16: matmul operands in fp16, loss scaling */
    vkt_loss_scale ls;   /* the dynamic loss scale (1 and untouched under fp32) */
    /* [train] skip_outliers: recent losses and gradient norms, updates skipped by the guard */
    struct outlier_window { double v[100]; int n, next; } loss_win, norm_win;
    int outlier_skips;
} run;

static volatile sig_atomic_t stop_requested = 0;

/* Set once a training loop is under way: only then is there a step to finish and a
 * checkpoint to save, so only then does the CLI's first Ctrl-C wait for them. */
static volatile sig_atomic_t loop_running = 0;

void vkt_train_request_stop(void) { stop_requested = 1; }
int vkt_train_stop_honoured(void) { return loop_running != 0; }

#define RUN_SCALAR_BYTES (2 * sizeof(float)) /* run.scalar */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int load_data(run *r, char *err, size_t errlen) {
    const vkt_config *c = r->cfg;
    int rc = vkt_data_open(c, &r->data, err, errlen);
    if (rc) return rc;
    size_t need = (size_t)c->train.seq_len + 1;
    if (vkt_view_windows(&r->data.train, c->train.seq_len) == 0) {
        snprintf(err, errlen,
                 "%s: %zu training tokens hold no sequence of [train] seq_len + 1 = %zu tokens",
                 r->data.train.name, r->data.train.n_tokens, need);
        return 2;
    }
    if (r->data.val.n_tokens > 0 && vkt_view_windows(&r->data.val, c->train.seq_len) == 0) {
        snprintf(err, errlen,
                 "%s: %zu validation tokens hold no sequence of [train] seq_len + 1 = %zu "
                 "tokens. HINT: raise [data] val_fraction or give [data] val",
                 r->data.val.name, r->data.val.n_tokens, need);
        return 2;
    }
    return 0;
}

/* An llm.c model named by init_from brings its own shape: it replaces the [model] keys (and
 * so is what checkpoints record), before anything is sized from them. */
static int read_init_weights(run *r, char *err, size_t errlen) {
    vkt_config *c = r->cfg;
    if (!c->model.init_from[0] || c->train.resume) return 0;
    int rc = vkt_weights_read(c->model.init_from, &r->init, err, errlen);
    if (rc || r->init.config_text) return rc; /* a vktrain checkpoint: shape must match */
    const vkt_gpt2_shape *s = &r->init.shape;
    fprintf(stderr,
            "vktrain: [model] shape from the llm.c model %s: n_layer %d, n_head %d, n_embd %d, "
            "vocab_size %d, block_size %d\n",
            c->model.init_from, s->num_layers, s->num_heads, s->channels, s->vocab_size,
            s->max_seq_len);
    c->model.n_layer = s->num_layers;
    c->model.n_head = s->num_heads;
    c->model.n_embd = s->channels;
    c->model.vocab_size = s->vocab_size;
    c->model.block_size = s->max_seq_len;
    if (c->train.seq_len > s->max_seq_len) {
        snprintf(err, errlen,
                 "[train] seq_len = %d is longer than the %d positions of the llm.c model %s",
                 c->train.seq_len, s->max_seq_len, c->model.init_from);
        return 2;
    }
    return 0;
}

static vkt_gpt2_shape config_shape(const vkt_config *c) {
    vkt_gpt2_shape s = {.max_seq_len = c->model.block_size, .vocab_size = c->model.vocab_size,
                        .padded_vocab_size = vkt_padded_vocab(c->model.vocab_size),
                        .num_layers = c->model.n_layer, .num_heads = c->model.n_head,
                        .channels = c->model.n_embd};
    return s;
}

/* The backend with the config's options; this rank's batch. */
static int open_backend(run *r, int dev, char *err, size_t errlen) {
    const vkt_config *c = r->cfg;
    r->be = vkt_backend_create(dev, err, errlen);
    if (!r->be) return 1;
    /* precision, then matmul (its tiers depend on it), before the backend has a cache_dir to
     * write to */
    if (vkt_backend_set_option(r->be, "precision", c->train.precision, err, errlen) ||
        vkt_backend_set_option(r->be, "matmul", c->backend.matmul, err, errlen) ||
        vkt_backend_set_option(r->be, "attention", c->backend.attention, err, errlen) ||
        vkt_backend_set_option(r->be, "cache_dir", c->backend.cache_dir, err, errlen))
        return 1;
    int world = vkt_dist_size(r->dist);
    r->mb = c->train.batch_size;
    r->global_B = c->train.batch_size * world;
    vkt_dist_batch_slice(r->dist, r->global_B, &r->offset, &r->B);
    r->balance_auto = world > 1 && world <= VKT_MAX_SPLIT_RANKS &&
                      !strcmp(c->parallel.balance, "auto");
    if (world <= VKT_MAX_SPLIT_RANKS) {
        r->split.ranks = world;
        for (int i = 0; i < world; i++) r->split.counts[i] = c->train.batch_size;
    }
    return 0;
}

/* Everything on the device the run needs: the model and the step's scalars (after
 * open_backend). The dry run (dry = 1) allocates through this same function, without zeroing
 * the gradients and moments. */
static int alloc_run(run *r, int dry, char *err, size_t errlen) {
    const vkt_config *c = r->cfg;
    vkt_gpt2_shape s = config_shape(c);
    const vkt_device_info *info = vkt_backend_info(r->be);
    double need = vkt_gpt2_memory_bytes(&s, r->mb, c->train.seq_len,
                                        vkt_backend_precision_fp16(r->be));
    if (info->memory_bytes && need > (double)info->memory_bytes) {
        snprintf(err, errlen,
                 "the model needs about %.2f GiB for batch %d x %d, but %s:%d (%s) has %.2f GiB. "
                 "HINT: lower [train] batch_size or seq_len (raise grad_accum_steps instead), or "
                 "the model size",
                 need / 1073741824.0, r->mb, c->train.seq_len, info->backend, info->backend_index,
                 info->name, info->memory_bytes / 1073741824.0);
        return 1;
    }
    r->model = (dry ? vkt_model_alloc : vkt_model_create)(r->be, &s, r->mb, c->train.seq_len,
                                                          err, errlen);
    if (!r->model) return 1;
    r->scalar = vkt_alloc(r->be, RUN_SCALAR_BYTES, err, errlen);
    /* host rows for this rank's share: under balance = auto it may grow to the whole batch */
    size_t n = (size_t)(r->balance_auto ? r->global_B : r->B) * c->train.seq_len;
    r->inputs = malloc(n * sizeof(int32_t));
    r->targets = malloc(n * sizeof(int32_t));
    if (!r->scalar || !r->inputs || !r->targets) {
        if (!err[0]) snprintf(err, errlen, "out of host memory");
        return 1;
    }
    return 0;
}

static int open_device(run *r, int dev, char *err, size_t errlen) {
    int rc = open_backend(r, dev, err, errlen);
    return rc ? rc : alloc_run(r, 0, err, errlen);
}

static void fmt_mem(char *buf, size_t len, double b) {
    if (b >= 1073741824.0) snprintf(buf, len, "%.2f GiB", b / 1073741824.0);
    else snprintf(buf, len, "%.1f MiB", b / 1048576.0);
}

/* --dry-run: the table of what the run allocates (vkt_gpt2_memory_plan is the model's own
 * buffer table), then the allocation itself through alloc_run, as the run would; "fits: yes"
 * and 0, or "fits: no" and 1 with err naming what did not fit. Nothing is computed, written
 * or read beyond the config (and an init_from file's shape). */
static int dry_run(run *r, int dev, char *err, size_t errlen) {
    const vkt_config *c = r->cfg;
    int rc = open_backend(r, dev, err, errlen);
    if (rc) return rc;
    vkt_gpt2_shape s = config_shape(c);
    vkt_model_memory mm;
    vkt_gpt2_memory_plan(&s, r->mb, c->train.seq_len, vkt_backend_precision_fp16(r->be), &mm);
    const vkt_device_info *d = vkt_backend_info(r->be);
    uint64_t own = vkt_backend_own_bytes(r->be); /* staging: allocated at creation */
    char b[VKT_MEM_CLASSES][32], tot[32], dev_mem[32], big[32], bigact[32], lim[32] = "none",
        ownb[32];
    for (int i = 0; i < VKT_MEM_CLASSES; i++) fmt_mem(b[i], sizeof b[i], (double)mm.bytes[i]);
    uint64_t total = mm.total + RUN_SCALAR_BYTES + own;
    fmt_mem(tot, sizeof tot, (double)total);
    fmt_mem(dev_mem, sizeof dev_mem, (double)d->memory_bytes);
    fmt_mem(big, sizeof big, (double)mm.largest);
    fmt_mem(bigact, sizeof bigact, (double)mm.largest_act);
    fmt_mem(ownb, sizeof ownb, (double)own);
    if (d->max_alloc_bytes) fmt_mem(lim, sizeof lim, (double)d->max_alloc_bytes);
    printf("%s:%d (%s): memory for %s (B=%d, T=%d, %s)\n", d->backend, d->backend_index,
           d->name, c->path[0] ? c->path : "the default config", r->mb, c->train.seq_len,
           c->train.precision);
    printf("  %-12s %12s  (%zu floats)\n", "parameters", b[VKT_MEM_PARAMS],
           (size_t)(mm.bytes[VKT_MEM_PARAMS] / 4));
    printf("  %-12s %12s\n", "gradients", b[VKT_MEM_GRADS]);
    printf("  %-12s %12s  (AdamW m, v)\n", "optimizer", b[VKT_MEM_OPTIM]);
    printf("  %-12s %12s  (a buffer per tensor and layer; the largest %s, %s)\n",
           "activations", b[VKT_MEM_ACTS], bigact, mm.largest_act_name);
    printf("  %-12s %12s  (backward activation gradients, tokens, targets, loss; + %zu B of "
           "step scalars)\n",
           "scratch", b[VKT_MEM_SCRATCH], (size_t)RUN_SCALAR_BYTES);
    if (mm.bytes[VKT_MEM_FP16])
        printf("  %-12s %12s  (precision = fp16: the matmuls' fp16 copies of the parameters "
               "and their inputs)\n", "fp16 copies", b[VKT_MEM_FP16]);
    printf("  %-12s %12s  (the backend's staging and op scratch)\n", "backend", ownb);
    printf("  %-12s %12s  of %s device memory; %d allocations, the largest %s (%s; limit %s)\n",
           "total", tot, dev_mem, mm.buffers + 1, big, mm.largest_name, lim);
    fflush(stdout);
    rc = alloc_run(r, 1, err, errlen);
    printf("fits: %s\n", rc ? "no" : "yes");
    return rc;
}

/* The run's checkpoint: written by loop(), read back by --resume. */
static void checkpoint_path(const vkt_config *c, char *buf, size_t len) {
    snprintf(buf, len, "%s/%s", c->train.out_dir, VKT_CHECKPOINT_FILE);
}

static int same_shape(const vkt_gpt2_shape *a, const vkt_gpt2_shape *b) {
    return a->max_seq_len == b->max_seq_len && a->vocab_size == b->vocab_size &&
           a->num_layers == b->num_layers && a->num_heads == b->num_heads &&
           a->channels == b->channels;
}

static void shape_str(char *buf, size_t len, const vkt_gpt2_shape *s) {
    snprintf(buf, len, "n_layer %d, n_head %d, n_embd %d, vocab_size %d, block_size %d",
             s->num_layers, s->num_heads, s->channels, s->vocab_size, s->max_seq_len);
}

static void set_shares(run *r);

/* Parameters (and for a resume, optimizer state, step and loader position, and under
 * balance = auto the ranks' shares) from a checkpoint; the shape must be the configured one. */
static int apply_checkpoint(run *r, const vkt_checkpoint *ck, const char *path, int resume,
                            char *err, size_t errlen) {
    const vkt_gpt2_shape *s = vkt_model_shape(r->model);
    if (!same_shape(&ck->shape, s)) {
        char a[200], b[200];
        shape_str(a, sizeof a, &ck->shape);
        shape_str(b, sizeof b, s);
        snprintf(err, errlen, "%s: model shape (%s) differs from the config's [model] (%s)", path,
                 a, b);
        return 2;
    }
    if (ck->shape.padded_vocab_size != s->padded_vocab_size ||
        ck->num_params != vkt_model_num_params(r->model)) { /* the reader refuses these */
        snprintf(err, errlen, "%s: holds %zu parameters (padded vocab %d), the model has %zu "
                 "(padded vocab %d)", path, ck->num_params, ck->shape.padded_vocab_size,
                 vkt_model_num_params(r->model), s->padded_vocab_size);
        return 2;
    }
    vkt_model_set_params(r->model, ck->params);
    if (!resume) return 0;
    size_t bytes = ck->num_params * sizeof(float);
    if (ck->step > r->cfg->train.max_steps) { /* the schedule has no LR beyond max_steps */
        snprintf(err, errlen,
                 "%s: is at step %d, beyond [train] max_steps = %d. HINT: raise max_steps to "
                 "at least %d to train on from it",
                 path, ck->step, r->cfg->train.max_steps, ck->step + 1);
        return 2;
    }
    if (!ck->adam) {
        snprintf(err, errlen, "%s: has no optimizer state to resume from", path);
        return 2;
    }
    vkt_upload(r->be, vkt_at(vkt_model_adam_m(r->model), 0), ck->adam, bytes);
    vkt_upload(r->be, vkt_at(vkt_model_adam_v(r->model), 0), ck->adam + ck->num_params, bytes);
    r->start_step = ck->step;
    vkt_loader_set_state(r->loader, ck->loader);
    r->ls.skipped = ck->loss_scale.skipped; /* AdamW's t continues either way */
    if (r->balance_auto && ck->split.ranks == r->split.ranks) { /* the run's own split */
        int sum = 0;
        for (int i = 0; i < ck->split.ranks; i++) sum += ck->split.counts[i];
        if (sum == r->global_B) {
            r->split = ck->split;
            set_shares(r);
            if (vkt_dist_rank(r->dist) == 0) {
                fprintf(stderr, "vktrain: balance: shares by rank from %s:", path);
                for (int i = 0; i < r->split.ranks; i++)
                    fprintf(stderr, "%s %d", i ? "," : "", r->split.counts[i]);
                fprintf(stderr, "\n");
            }
        }
    }
    if (r->fp16 && ck->loss_scale.scale > 1.0f) { /* an fp16 run goes on with its scale */
        r->ls.scale = ck->loss_scale.scale;
        r->ls.clean_steps = ck->loss_scale.clean_steps;
    }
    return 0;
}

static int init_state(run *r, char *err, size_t errlen) {
    const vkt_config *c = r->cfg;
    r->fp16 = !strcmp(c->train.precision, "fp16");
    r->ls = (vkt_loss_scale){.scale = r->fp16 ? (float)c->train.loss_scale_init : 1.0f};
    r->loader = vkt_loader_create(&r->data.train, (vkt_data_order)c->data.order,
                                  c->train.seed ^ 0x5DEECE66Dull,
                                  r->balance_auto ? r->global_B : r->B, c->train.seq_len,
                                  c->data.prefetch, err, errlen);
    if (!r->loader) return 1;
    if (r->global_B != r->B) vkt_loader_set_slice(r->loader, r->global_B, r->offset);
    r->start_step = 0;
    if (c->train.resume) {
        char path[VKT_PATH_MAX + 32];
        checkpoint_path(c, path, sizeof path);
        struct stat st; /* present but not a regular file: the reader says so */
        if (stat(path, &st) != 0) {
            snprintf(err, errlen,
                     "nothing to resume: %s does not exist. HINT: start without --resume, or "
                     "set [train] out_dir to the earlier run's directory",
                     path);
            return 2;
        }
        vkt_checkpoint ck;
        int rc = vkt_checkpoint_read(path, &ck, err, errlen);
        if (!rc) rc = apply_checkpoint(r, &ck, path, 1, err, errlen);
        vkt_checkpoint_free(&ck);
        return rc;
    }
    if (r->init.params) {
        int rc = apply_checkpoint(r, &r->init, c->model.init_from, 0, err, errlen);
        vkt_checkpoint_free(&r->init);
        return rc;
    }
    if (vkt_model_init_random(r->model, c->train.seed)) {
        snprintf(err, errlen, "out of host memory initialising the parameters");
        return 1;
    }
    return 0;
}

/* A device error ends the run (exit 1): the message names the device, the failed call and
 * its result, and what is on disk. No checkpoint is written after it, so `last_ckpt` (0: none
 * yet) is the newest good one. */
static int device_failed(run *r, int step, const char *during, int last_ckpt, char *err,
                         size_t errlen) {
    char dev[768], ckpt[VKT_PATH_MAX + 32];
    vkt_backend_error(r->be, dev, sizeof dev);
    char *hint = strstr(dev, ". HINT: "); /* the backend's hint goes last, with ours */
    if (hint) {
        *hint = 0;
        hint += 8;
    }
    checkpoint_path(r->cfg, ckpt, sizeof ckpt);
    vkt_log_newline();
    if (last_ckpt > 0)
        snprintf(err, errlen,
                 "step %d: device error%s: %s. Nothing was saved after it: %s (step %d) is the "
                 "last good checkpoint. HINT: %s%scontinue with --resume",
                 step, during, dev, ckpt, last_ckpt, hint ? hint : "", hint ? "; then " : "");
    else
        snprintf(err, errlen, "step %d: device error%s: %s. No checkpoint was written%s%s", step,
                 during, dev, hint ? ". HINT: " : "", hint ? hint : "");
    return 1;
}

/* The mean validation loss into *out; 0, or -1 after a device error. */
static int evaluate(run *r, float *out) {
    int T = r->cfg->train.seq_len, n = r->cfg->train.eval_batches;
    vkt_ptr loss = vkt_at(r->scalar, 0);
    vkt_fill(r->be, loss, 0.0f, 1);
    for (int i = 0; i < n; i++) {
        vkt_eval_batch_slice(&r->data.val, i, r->global_B, r->offset, r->B, T, r->inputs,
                             r->targets);
        for (int c0 = 0; c0 < r->B; c0 += r->mb) { /* each pass its rows' part of the mean */
            int rows = r->B - c0 < r->mb ? r->B - c0 : r->mb;
            vkt_model_forward_acc(r->model, r->inputs + (size_t)c0 * T,
                                  r->targets + (size_t)c0 * T, rows, T, 0.0f, 0, loss,
                                  (float)rows / ((float)r->global_B * n));
        }
    }
    float mean;
    if (vkt_download(r->be, &mean, loss, sizeof mean)) return -1;
    *out = (float)vkt_dist_sum(r->dist, mean); /* every rank's rows */
    return 0;
}

/* ---- the outlier guard ([train] skip_outliers) --------------------------------------------- */

#define OUTLIER_WINDOW ((int)(sizeof(((run *)0)->loss_win.v) / sizeof(double)))

/* How many standard deviations x lies above the window's mean: 0 until the window is full
 * (a mean of a few early steps says little) or when its values are all equal. */
static double window_z(const struct outlier_window *w, double x) {
    if (w->n < OUTLIER_WINDOW) return 0;
    double mean = 0, var = 0;
    for (int i = 0; i < w->n; i++) mean += w->v[i];
    mean /= w->n;
    for (int i = 0; i < w->n; i++) var += (w->v[i] - mean) * (w->v[i] - mean);
    double sd = sqrt(var / w->n);
    return sd > 0 ? (x - mean) / sd : 0;
}

/* Every finite value goes in, outliers too (as llm.c does): a lasting change of level is
 * then learned within one window instead of skipping every step after it. */
static void window_add(struct outlier_window *w, double x) {
    w->v[w->next] = x;
    w->next = (w->next + 1) % OUTLIER_WINDOW;
    if (w->n < OUTLIER_WINDOW) w->n++;
}

/* 1 when this step's loss or gradient norm is more than z deviations above the window's. */
static int is_outlier(run *r, const vkt_step_stats *st) {
    double z = r->cfg->train.skip_outliers;
    double zl = window_z(&r->loss_win, st->loss), zn = window_z(&r->norm_win, st->grad_norm);
    window_add(&r->loss_win, st->loss);
    window_add(&r->norm_win, st->grad_norm);
    if (zl <= z && zn <= z) return 0;
    if (vkt_dist_rank(r->dist) == 0) {
        vkt_log_newline();
        fprintf(stderr,
                "vktrain: step %d: %s %.4g is %.1f standard deviations above the mean of the "
                "last %d steps (skip_outliers = %g): update skipped (%d so far)\n",
                st->step, zl > z ? "loss" : "gradient norm", zl > z ? st->loss : st->grad_norm,
                zl > z ? zl : zn, OUTLIER_WINDOW, z, r->outlier_skips + 1);
    }
    return 1;
}

/* ---- balance = auto: shares in proportion to measured throughput ------------------------- */

/* Takes the shares of r->split: this rank's count and offset, and its loader slice. */
static void set_shares(run *r) {
    int rank = vkt_dist_rank(r->dist);
    r->offset = 0;
    for (int i = 0; i < rank; i++) r->offset += r->split.counts[i];
    r->B = r->split.counts[rank];
    vkt_loader_set_slice(r->loader, r->global_B, r->offset);
}

/* A test knob (VKT_TEST_SLOW_RANK=R:MS): rank R takes MS ms longer per sequence, as a slower
 * device would. */
static void test_slow_rank(run *r, int rows) {
    const char *e = getenv("VKT_TEST_SLOW_RANK");
    if (!e || atoi(e) != vkt_dist_rank(r->dist) || !strchr(e, ':')) return;
    double s = atof(strchr(e, ':') + 1) * 1e-3 * rows;
    struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* Shares of total proportional to thr (every rank at least 1), by largest remainder; ties to
 * the lower rank, so every rank computes the same split from the same numbers. */
static void proportional(const double *thr, int ranks, int total, int *out) {
    double sum = 0;
    for (int i = 0; i < ranks; i++) sum += thr[i];
    int left = total - ranks; /* one each first */
    double rem[VKT_MAX_SPLIT_RANKS];
    int given = 0;
    for (int i = 0; i < ranks; i++) {
        double q = sum > 0 ? left * thr[i] / sum : (double)left / ranks;
        out[i] = 1 + (int)q;
        rem[i] = q - (int)q;
        given += out[i];
    }
    while (given < total) {
        int best = 0;
        for (int i = 1; i < ranks; i++)
            if (rem[i] > rem[best]) best = i;
        out[best]++;
        rem[best] = -1;
        given++;
    }
}

/* The step's compute time a split implies: its slowest rank's. */
static double split_time(const int *counts, const double *thr, int ranks) {
    double worst = 0;
    for (int i = 0; i < ranks; i++) {
        double t = thr[i] > 0 ? counts[i] / thr[i] : 0;
        if (t > worst) worst = t;
    }
    return worst;
}

#define BALANCE_FIRST 4  /* the first decision after step 4 (step 1, compilation, not timed) */
#define BALANCE_EVERY 10 /* then every 10 steps */
#define BALANCE_GAIN 0.9 /* re-split when the step would take at most 90% of its time */

/* After each step under balance = auto: at the decision steps the ranks share what they
 * measured (sequences per second of compute, this rank's share alone) and all take the same
 * new split when it would make the step at least 10% faster; the split is logged by rank 0
 * and saved in checkpoints. */
static void balance_step(run *r, int step) {
    if (!r->balance_auto) return;
    if (step == 1) { /* compilation and first-touch costs: not what a step costs */
        r->meas_rows = r->meas_s = 0;
        return;
    }
    if (step != BALANCE_FIRST && (step <= BALANCE_FIRST || (step - BALANCE_FIRST) % BALANCE_EVERY))
        return;
    int world = r->split.ranks;
    double mine = r->meas_s > 0 ? r->meas_rows / r->meas_s : 0;
    double thr[VKT_MAX_SPLIT_RANKS];
    vkt_dist_allgather(r->dist, &mine, thr, sizeof mine);
    r->meas_rows = r->meas_s = 0;
    for (int i = 0; i < world; i++)
        if (!(thr[i] > 0)) return; /* a rank measured nothing: keep the split */
    int next[VKT_MAX_SPLIT_RANKS];
    proportional(thr, world, r->global_B, next);
    if (!(split_time(next, thr, world) <= BALANCE_GAIN * split_time(r->split.counts, thr, world)))
        return;
    if (vkt_dist_rank(r->dist) == 0) {
        char line[1024];
        size_t used = 0;
        for (int i = 0; i < world && used < sizeof line; i++)
            used += (size_t)snprintf(line + used, sizeof line - used, "%s%d (%.0f seq/s)",
                                     i ? ", " : "", next[i], thr[i]);
        vkt_log_newline();
        fprintf(stderr, "vktrain: balance: step %d: shares of the %d sequences per micro-batch "
                "by rank: %s\n", step, r->global_B, line);
    }
    memcpy(r->split.counts, next, sizeof(int) * (size_t)world);
    set_shares(r);
}

/* ---- one optimizer step ------------------------------------------------------------------- */

/* Forward and backward of every micro-batch, queued, then the all-reduce and the gradient
 * norm; the loss and norm^2 accumulate in r->scalar. 0, or -1 after a device error. */
static int queue_gradients(run *r, int step) {
    const vkt_config *c = r->cfg;
    int T = vkt_schedule_seq_len(&r->sched, step), accum = c->train.grad_accum_steps;
    /* the mean over the global batch (every rank's rows): each micro-batch's dlogits carry
     * S/(global_B T accum), so the all-reduce is a plain sum */
    float grad_scale = r->ls.scale / ((float)r->global_B * T * accum);
    vkt_ptr loss = vkt_at(r->scalar, 0), norm_sq = vkt_at(r->scalar, sizeof(float));
    vkt_model_zero_grad(r->model);
    vkt_fill(r->be, loss, 0.0f, 1);
    r->data_wait_s = 0;
    double t0 = now_s();
    for (int micro = 0; micro < accum; micro++) {
        r->data_wait_s += vkt_loader_next(r->loader, r->B, T, r->inputs, r->targets);
        /* the share in passes of at most mb rows, each adding its rows' part of the global
         * batch's mean loss (one pass of B rows: 1 / accum in a one-rank run) */
        for (int c0 = 0; c0 < r->B; c0 += r->mb) {
            int rows = r->B - c0 < r->mb ? r->B - c0 : r->mb;
            vkt_model_forward_acc(r->model, r->inputs + (size_t)c0 * T,
                                  r->targets + (size_t)c0 * T, rows, T, grad_scale, 1, loss,
                                  (float)rows / ((float)r->global_B * accum));
            vkt_model_backward(r->model, rows, T);
        }
    }
    if (vkt_dist_size(r->dist) > 1) { /* this rank's compute time, apart from the exchange */
        test_slow_rank(r, r->B * accum);
        if (vkt_synchronize(r->be)) return -1;
        r->compute_s = now_s() - t0 - r->data_wait_s;
        r->meas_rows += (double)r->B * accum; /* balance = auto: the share's throughput */
        r->meas_s += r->compute_s;
    }
    double t1 = now_s();
    if (vkt_dist_allreduce_sum(r->dist, r->be, vkt_model_grads(r->model),
                               vkt_model_num_params(r->model)))
        return -1;
    r->exchange_s = now_s() - t1;
    vkt_grad_norm_sq(r->model, norm_sq);
    return 0;
}

/* AdamW, queued: it clips by the norm it finds on the device, and skips itself when that norm
 * is not finite. t counts the updates made, so skipped steps do not advance it. Ranks on
 * different devices then take rank 0's parameters. 0, or -1 after a device error. */
static int queue_update(run *r, int step, float lr) {
    const vkt_config *c = r->cfg;
    vkt_optim_args a = {.lr = lr, .beta1 = (float)c->optim.beta1,
                        .beta2 = (float)c->optim.beta2, .eps = (float)c->optim.eps,
                        .weight_decay = (float)c->optim.weight_decay,
                        .grad_scale = 1.0f / r->ls.scale, .t = step + 1 - r->ls.skipped,
                        .norm_sq = vkt_at(r->scalar, sizeof(float)),
                        .max_norm = (float)c->optim.grad_clip};
    vkt_optim_adamw_step(r->model, &a);
    if (!r->hetero) return 0;
    if (vkt_dist_broadcast_buf(r->dist, r->be, vkt_model_params(r->model),
                               vkt_model_num_params(r->model), 0))
        return -1;
    vkt_model_params_changed(r->model);
    return 0;
}

/* The one host round trip: the step's loss and gradient norm. */
static int read_scalars(run *r, vkt_step_stats *st) {
    float s[2];
    if (vkt_download(r->be, s, vkt_at(r->scalar, 0), sizeof s)) return -1; /* a device error */
    st->loss = (float)vkt_dist_sum(r->dist, s[0]); /* each rank's part of the global mean */
    st->grad_norm = sqrtf(s[1]) / r->ls.scale;
    return 0;
}

/* One optimizer step; fills the loss, lr and grad norm of st. Everything up to the AdamW
 * update is queued on the device (the loss and the gradient norm accumulate there, and AdamW
 * clips by the norm it finds there); the one host round trip is reading both at the end, so
 * the loss the host sees is that of the parameters before this step's update.
 * Under fp16 the gradients carry the loss scale S from dlogits on (so that small ones survive
 * the fp16 rounding of the backward matmuls' operands); AdamW divides it out, and skips the
 * update on the device when the norm is not finite (an overflow).
 * With [train] skip_outliers the update waits for the host instead: the loss and norm are read
 * first, and AdamW is queued only when neither is an outlier nor non-finite. It then goes out
 * with the next step's work (or the checkpoint's download), so a step still makes one round
 * trip; what it costs is that the device holds the update back while the host decides.
 * 0, or -1 after a device error (vkt_backend_error says which). */
static int train_step(run *r, int step, vkt_step_stats *st) {
    if (queue_gradients(r, step)) return -1;
    st->lr = (float)vkt_schedule_lr(&r->sched, step);
    if (r->cfg->train.skip_outliers <= 0) {
        if (queue_update(r, step, st->lr)) return -1;
        return read_scalars(r, st);
    }
    if (read_scalars(r, st)) return -1;
    st->outlier_guard = 1;
    st->outlier_skips = r->outlier_skips;
    if (!isfinite(st->loss) || !isfinite(st->grad_norm)) return 0; /* the loop deals with it */
    if (is_outlier(r, st)) {
        st->outlier_skipped = 1;
        r->outlier_skips++;
        r->ls.skipped++; /* AdamW's t counts updates; checkpoints keep this count */
    } else if (queue_update(r, step, st->lr)) {
        return -1;
    }
    st->outlier_skips = r->outlier_skips;
    return 0;
}

/* fp16: after each step, the dynamic loss scale. A non-finite gradient norm means the scaled
 * gradients overflowed fp16 somewhere (AdamW has already skipped the update on the device):
 * halve the scale and go on. After loss_scale_window clean steps, try double the scale.
 * Returns 0, or 1 with err when even a scale below 1 overflows (a diverged run). */
static int update_loss_scale(run *r, vkt_step_stats *st, char *err, size_t errlen) {
    const vkt_config *c = r->cfg;
    vkt_loss_scale *ls = &r->ls;
    int rank0 = vkt_dist_rank(r->dist) == 0;
    if (!isfinite(st->grad_norm)) {
        st->skipped = 1;
        ls->skipped++;
        ls->clean_steps = 0;
        if (ls->scale <= 1.0f) {
            r->collective_err = 1; /* every rank has the same norm */
            vkt_log_newline();
            snprintf(err, errlen,
                     "step %d: the gradients overflow fp16 even at loss scale %.0f. HINT: lower "
                     "[optim] lr, or use [train] precision = fp32",
                     st->step, ls->scale);
            return 1;
        }
        if (rank0) {
            vkt_log_newline();
            fprintf(stderr, "vktrain: step %d: gradients overflowed fp16 at loss scale %.0f: step "
                    "skipped, loss scale now %.0f\n", st->step, ls->scale, ls->scale / 2);
        }
        ls->scale /= 2;
    } else if (++ls->clean_steps >= c->train.loss_scale_window) {
        ls->clean_steps = 0;
        if (ls->scale < 16777216.0f) { /* 2^24: beyond it no gradient would fit fp16 anyway */
            if (rank0 && c->train.loss_scale_window >= 100) { /* not a line per step */
                vkt_log_newline();
                fprintf(stderr, "vktrain: step %d: loss scale %.0f -> %.0f after %d clean steps\n",
                        st->step, ls->scale, ls->scale * 2, c->train.loss_scale_window);
            }
            ls->scale *= 2;
        }
    }
    st->loss_scale = ls->scale;
    return 0;
}

/* ---- non-finite values: find where, keep the last checkpoint good ------------------------ */

/* The first element of buf (the model's parameter layout) that is not finite, as "qkvw
 * (layer 2, element 17 of 3072)"; 0 when every element is finite. */
static int first_nonfinite(const run *r, const float *buf, char *out, size_t len) {
    size_t e;
    int i = vkt_params_first_nonfinite(vkt_model_shape(r->model), buf, &e);
    if (i < 0) return 0;
    const vkt_param_tensor *t = vkt_model_tensors(r->model);
    int L = vkt_model_shape(r->model)->num_layers;
    /* the per-layer tensors stack their L layers (llm.c's layout); wte, wpe, lnf not */
    int per_layer = t[i].size % (size_t)L == 0 && i >= 2 && i < 14;
    size_t n = per_layer ? t[i].size / (size_t)L : t[i].size;
    float v = buf[t[i].offset + e];
    if (per_layer)
        snprintf(out, len, "%s (layer %zu, element %zu of %zu: %g)", t[i].name, e / n, e % n, n,
                 v);
    else
        snprintf(out, len, "%s (element %zu of %zu: %g)", t[i].name, e, n, v);
    return 1;
}

/* Downloads a model buffer (only on a failure path) and names its first non-finite element:
 * 1 found, 0 all finite, -1 no host memory for it. */
static int scan_buffer(run *r, vkt_buf *b, char *out, size_t len) {
    size_t n = vkt_model_num_params(r->model);
    float *h = malloc(n * sizeof *h);
    if (!h) return -1;
    vkt_download(r->be, h, vkt_at(b, 0), n * sizeof *h);
    int found = first_nonfinite(r, h, out, len);
    free(h);
    return found;
}

/* What the user can do about a diverged run, given what is already set. */
static void divergence_hint(const run *r, int loss_bad, char *buf, size_t len) {
    const vkt_config *c = r->cfg;
    if (r->fp16 && loss_bad)
        snprintf(buf, len, "HINT: use [train] precision = fp32 (the forward pass overflows "
                 "fp16), or lower [optim] lr (peak %g)", c->optim.lr);
    else if (c->optim.grad_clip <= 0)
        snprintf(buf, len, "HINT: set [optim] grad_clip = 1.0 (clipping is off), or lower "
                 "[optim] lr (peak %g)", c->optim.lr);
    else
        snprintf(buf, len, "HINT: lower [optim] lr (peak %g) or raise [optim] warmup_steps "
                 "(gradients are already clipped to norm %g); check the data for a bad "
                 "batch%s", c->optim.lr, c->optim.grad_clip,
                 r->fp16 ? ", or use [train] precision = fp32" : "");
}

/* "checkpoint.bin (step 40) is the last one, untouched" */
static void last_checkpoint(const char *ckpt, int step, char *buf, size_t len) {
    if (step > 0) snprintf(buf, len, "%s (step %d) is the last checkpoint, untouched", ckpt, step);
    else snprintf(buf, len, "no checkpoint was written");
}

/* A step whose loss or gradient norm is not finite (fp16 overflows aside, which only skip the
 * step): exit 1, naming the first tensor whose gradient is not finite, whether the parameters
 * were so before the step (then an earlier update diverged), and what to change. */
static int report_nonfinite(run *r, const vkt_step_stats *st, const char *ckpt, int ckpt_step,
                            char *err, size_t errlen) {
    char grad[160] = "", param[160] = "", last[VKT_PATH_MAX + 128], hint[300];
    int loss_bad = !isfinite(st->loss);
    r->collective_err = 1; /* the loss and the norm are every rank's */
    int g = scan_buffer(r, vkt_model_grads(r->model), grad, sizeof grad);
    int p = scan_buffer(r, vkt_model_params(r->model), param, sizeof param);
    char where[400];
    if (g > 0) snprintf(where, sizeof where, "; the first tensor whose gradient is not finite: %s",
                        grad);
    else if (g == 0) snprintf(where, sizeof where, "; every gradient is finite");
    else snprintf(where, sizeof where, " (no host memory to find the tensor)");
    char before[300] = "";
    if (p > 0)
        snprintf(before, sizeof before, "; the parameters were already not finite before this "
                 "step, first %s: the update of step %d diverged", param, st->step - 1);
    last_checkpoint(ckpt, ckpt_step, last, sizeof last);
    divergence_hint(r, loss_bad, hint, sizeof hint);
    vkt_log_newline();
    snprintf(err, errlen,
             "step %d: the %s is not finite under %s (loss %g, gradient norm %g)%s%s; the run "
             "stops, %s. %s",
             st->step, loss_bad ? "loss" : "gradient norm", r->cfg->train.precision, st->loss,
             st->grad_norm, where, before, last, hint);
    return 1;
}

/* Before a checkpoint: the update that the host has not seen the effect of yet (it comes after
 * the step's loss) must not have made the parameters non-finite, or that checkpoint would
 * replace the last good one with NaNs. One reduction and one float read; the whole buffer is
 * read only when the sum is not finite (it also overflows for huge but finite weights).
 * 0 good, 1 not finite (err filled), -1 a device error. */
static int check_params_finite(run *r, int step, const char *ckpt, int ckpt_step, char *err,
                               size_t errlen) {
    vkt_ptr out = vkt_at(r->scalar, sizeof(float));
    float ss;
    vkt_sumsq(r->be, out, vkt_at(vkt_model_params(r->model), 0), vkt_model_num_params(r->model));
    if (vkt_download(r->be, &ss, out, sizeof ss)) return -1; /* a device error */
    if (isfinite(ss)) return 0;
    char param[160], last[VKT_PATH_MAX + 128], hint[300];
    if (scan_buffer(r, vkt_model_params(r->model), param, sizeof param) == 0) return 0;
    last_checkpoint(ckpt, ckpt_step, last, sizeof last);
    divergence_hint(r, 0, hint, sizeof hint);
    vkt_log_newline();
    snprintf(err, errlen,
             "step %d: the update made the parameters non-finite (first %s), though the step's "
             "loss and gradient norm were finite; not saving them: %s. %s",
             step, param, last, hint);
    return 1;
}

/* An MPI run: "rank 0 cpu:0 (AMD EPYC ...), rank 1 vulkan:0 (llvmpipe ...)", gathered from
 * every rank (each element of `all` is one rank's NAME_LEN-byte string). */
#define RANK_NAME_LEN 160
static void rank_name(const run *r, char *buf) {
    const vkt_device_info *d = vkt_backend_info(r->be);
    snprintf(buf, RANK_NAME_LEN, "%s:%d (%s)", d->backend, d->backend_index, d->name);
}

static void print_banner(const run *r, int end_step) {
    const vkt_config *c = r->cfg;
    if (vkt_dist_rank(r->dist) != 0) return;
    const vkt_device_info *d = vkt_backend_info(r->be);
    double params = (double)vkt_model_num_params(r->model);
    fprintf(stderr,
            "vktrain: %s:%d (%s) | GPT-2 %.2fM params (n_layer %d, n_head %d, n_embd %d, vocab "
            "%d) | %d x %d x %d = %d tokens/step | steps %d..%d of %d | out_dir %s\n",
            d->backend, d->backend_index, d->name, params / 1e6, c->model.n_layer,
            c->model.n_head, c->model.n_embd, c->model.vocab_size, r->global_B,
            c->train.seq_len, c->train.grad_accum_steps,
            r->global_B * c->train.seq_len * c->train.grad_accum_steps,
            r->start_step + 1, end_step, c->train.max_steps, c->train.out_dir);
    const vkt_tokenizer *t = r->data.tokenizer;
    char tok[64] = "unknown (llm.c shards)";
    if (t) snprintf(tok, sizeof tok, "%s, vocab %d", vkt_tokenizer_kind_name(t),
                    vkt_tokenizer_vocab_size(t));
    fprintf(stderr, "vktrain: data %s | %zu train tokens, %zu val tokens | tokenizer %s\n",
            r->data.source, r->data.train.n_tokens, r->data.val.n_tokens, tok);
}

/* FNV-1a over the parameters' bytes: what [parallel] check_every compares across ranks. */
static uint64_t params_hash(run *r, int *failed) {
    size_t n = vkt_model_num_params(r->model);
    float *h = malloc(n * sizeof *h);
    uint64_t x = 0xcbf29ce484222325ull;
    *failed = !h;
    if (!h) return 0;
    if (vkt_download(r->be, h, vkt_at(vkt_model_params(r->model), 0), n * sizeof *h)) {
        *failed = 1;
        free(h);
        return 0;
    }
    const unsigned char *b = (const unsigned char *)h;
    for (size_t i = 0; i < n * sizeof *h; i++) x = (x ^ b[i]) * 0x100000001b3ull;
    free(h);
    return x;
}

/* A test knob (VKT_TEST_PERTURB_RANK=R): rank R nudges its first parameter after step 1, so
 * that the check below has a divergence to find. */
static void test_perturb(run *r, int step) {
    const char *e = getenv("VKT_TEST_PERTURB_RANK");
    if (!e || step != 1 || atoi(e) != vkt_dist_rank(r->dist)) return;
    float w;
    vkt_ptr p0 = vkt_at(vkt_model_params(r->model), 0);
    if (vkt_download(r->be, &w, p0, sizeof w)) return;
    w += 1e-3f;
    vkt_upload(r->be, p0, &w, sizeof w);
}

/* [parallel] check_every: 0 when every rank holds rank 0's parameters bit for bit; 1 with err
 * naming the first that does not (every rank decides the same); -1 after a device error. */
static int check_ranks_agree(run *r, int step, char *err, size_t errlen) {
    int world = vkt_dist_size(r->dist), failed = 0;
    uint64_t mine = params_hash(r, &failed);
    if (vkt_dist_first_set(r->dist, failed) >= 0) return failed ? -1 : 0;
    uint64_t *all = malloc((size_t)world * sizeof *all);
    char (*names)[RANK_NAME_LEN] = malloc((size_t)world * RANK_NAME_LEN), me[RANK_NAME_LEN];
    if (!all || !names) {
        free(all), free(names);
        return 0; /* no memory for a check that is not needed to go on */
    }
    vkt_dist_allgather(r->dist, &mine, all, sizeof mine);
    rank_name(r, me);
    vkt_dist_allgather(r->dist, me, names, RANK_NAME_LEN);
    int bad = -1;
    for (int i = 1; i < world && bad < 0; i++)
        if (all[i] != all[0]) bad = i;
    if (bad >= 0) {
        r->collective_err = 1;
        vkt_log_newline();
        snprintf(err, errlen,
                 "step %d: the ranks' parameters have diverged: rank %d, %s, holds parameters "
                 "that differ from rank 0's (%s; hash %016llx against %016llx); the run stops. "
                 "HINT: a device that computes wrongly: run vktrain --device on it alone, or "
                 "leave it out of [parallel] devices",
                 step, bad, names[bad], names[0], (unsigned long long)all[bad],
                 (unsigned long long)all[0]);
    }
    free(all), free(names);
    return bad >= 0;
}

static int loop(run *r, vkt_train_result *res, float *losses_out, char *err, size_t errlen) {
    const vkt_config *c = r->cfg;
    int end_step = c->train.stop_step > 0 ? c->train.stop_step : c->train.max_steps;
    char ckpt[VKT_PATH_MAX + 32];
    checkpoint_path(c, ckpt, sizeof ckpt);
    res->steps_done = r->start_step;
    if (r->start_step >= end_step) {
        if (vkt_dist_rank(r->dist) == 0)
            fprintf(stderr, "vktrain: %s is at step %d: nothing left to do (end step %d)\n",
                    ckpt, r->start_step, end_step);
        return 0;
    }
    print_banner(r, end_step);
    if (c->optim.warmup_steps > c->train.max_steps && vkt_dist_rank(r->dist) == 0)
        fprintf(stderr,
                "vktrain: note: [optim] warmup_steps = %d is more than [train] max_steps = %d: "
                "the learning rate never finishes warming up (it reaches %.3g of lr = %g)\n",
                c->optim.warmup_steps, c->train.max_steps,
                (double)c->train.max_steps / c->optim.warmup_steps, c->optim.lr);
    loop_running = 1;
    double avg_step_s = 0, wait_s = 0, steps_s = 0;
    int ckpt_step = r->start_step; /* of the newest checkpoint on disk that this run knows */
    for (int step = r->start_step; step < end_step; step++) {
        vkt_step_stats st = {.step = step + 1, .total_steps = c->train.max_steps};
        double t0 = now_s();
        uint64_t syncs = vkt_sync_count(r->be);
        if (train_step(r, step, &st))
            return device_failed(r, step + 1, "", ckpt_step, err, errlen);
        double dt = now_s() - t0;
        int step_syncs = (int)(vkt_sync_count(r->be) - syncs);
        if (step_syncs > res->max_syncs_per_step) res->max_syncs_per_step = step_syncs;
        if (r->fp16 && isfinite(st.loss)) {
            int rc = update_loss_scale(r, &st, err, errlen);
            if (rc) return rc;
        }
        if (!isfinite(st.loss) || (!isfinite(st.grad_norm) && !st.skipped))
            return report_nonfinite(r, &st, ckpt, ckpt_step, err, errlen);
        avg_step_s = step == r->start_step ? dt : 0.9 * avg_step_s + 0.1 * dt;
        st.step_ms = dt * 1e3;
        st.data_wait_ms = r->data_wait_s * 1e3;
        st.ranks = vkt_dist_size(r->dist);
        st.compute_ms = r->compute_s * 1e3;
        st.exchange_ms = r->exchange_s * 1e3;
        wait_s += r->data_wait_s;
        steps_s += dt;
        st.tokens_per_s = (double)r->global_B * vkt_schedule_seq_len(&r->sched, step) *
                          c->train.grad_accum_steps / dt;
        st.eta_s = avg_step_s * (end_step - step - 1);
        balance_step(r, step + 1);
        test_perturb(r, step + 1);
        int check = c->parallel.check_every;
        if (vkt_dist_size(r->dist) > 1 && check > 0 && (step + 1) % check == 0) {
            int rc = check_ranks_agree(r, step + 1, err, errlen);
            if (rc < 0) return device_failed(r, step + 1, " hashing the parameters", ckpt_step,
                                             err, errlen);
            if (rc) return rc;
        }
        /* a signal seen by any rank stops every rank after this step */
        int interrupted = vkt_dist_max(r->dist, stop_requested != 0);
        int last = step + 1 == end_step || interrupted;
        if (r->data.val.n_tokens > 0 &&
            (last || (c->train.eval_interval > 0 && (step + 1) % c->train.eval_interval == 0))) {
            st.has_val = 1;
            if (evaluate(r, &st.val_loss))
                return device_failed(r, step + 1, " in evaluation", ckpt_step, err, errlen);
            res->last_val_loss = st.val_loss;
        }
        if (losses_out) losses_out[step] = st.loss;
        res->last_loss = st.loss;
        res->steps_done = step + 1;
        res->skipped_steps = r->ls.skipped;
        res->outlier_skips = r->outlier_skips;
        res->loss_scale = r->ls.scale;
        if (vkt_dist_rank(r->dist) == 0) {
            if (last || st.has_val || (step + 1) % c->train.log_interval == 0)
                vkt_log_progress(&st);
            vkt_metrics_write(&r->metrics, &st);
            if (last || (c->train.checkpoint_interval > 0 &&
                         (step + 1) % c->train.checkpoint_interval == 0)) {
                int rc = check_params_finite(r, step + 1, ckpt, ckpt_step, err, errlen);
                if (rc < 0)
                    return device_failed(r, step + 1, " checking the parameters", ckpt_step, err,
                                         errlen);
                if (rc) return rc;
                vkt_loader_state ls = vkt_loader_get_state(r->loader);
                rc = vkt_checkpoint_save(ckpt, r->model, c, step + 1, &ls, &r->ls,
                                         r->data.tokenizer, r->balance_auto ? &r->split : NULL,
                                         err, errlen);
                if (rc && vkt_backend_error(r->be, NULL, 0)) /* its downloads failed */
                    return device_failed(r, step + 1, " saving the checkpoint", ckpt_step, err,
                                         errlen);
                if (rc) return rc;
                ckpt_step = step + 1;
            }
        }
        if (interrupted) {
            r->collective_err = 1;
            vkt_log_newline();
            snprintf(err, errlen,
                     "interrupted after step %d; checkpoint %s saved. HINT: continue with --resume",
                     step + 1, ckpt);
            return VKT_TRAIN_INTERRUPTED;
        }
    }
    vkt_log_newline();
    if (vkt_dist_rank(r->dist) == 0)
        fprintf(stderr,
                "vktrain: done at step %d: loss %.4f%s, checkpoint %s; waited %.1f ms for data "
                "(%.3f%% of step time)\n",
                res->steps_done, res->last_loss,
                r->data.val.n_tokens ? "" : " (no validation set)", ckpt, wait_s * 1e3,
                steps_s > 0 ? 100 * wait_s / steps_s : 0.0);
    return 0;
}

/* vktrain --profile: the op table of this run, on rank 0 (device timers where the backend has
 * them, else host timing of each call). */
static void print_profile(run *r, int steps) {
    if (vkt_synchronize(r->be)) return; /* device times count once the work is done */
    int n = vkt_profile_report(r->be, NULL, 0);
    vkt_profile_entry *e = calloc(n > 0 ? (size_t)n : 1, sizeof *e);
    if (!e) return;
    n = vkt_profile_report(r->be, e, n);
    const vkt_device_info *d = vkt_backend_info(r->be);
    char source[256];
    snprintf(source, sizeof source, "%s:%d (%s), %s", d->backend, d->backend_index, d->name,
             strcmp(d->backend, "vulkan") ? "host time per call" : "device timestamps");
    vkt_log_profile(stderr, e, n, steps, source);
    free(e);
}

int vkt_train_run(const vkt_config *config, vkt_train_result *res, float *losses_out,
                  char *err, size_t errlen) {
    return vkt_train_run_opts(config, NULL, res, losses_out, err, errlen);
}

/* The device of this rank: [backend] device in a one-process run; in an MPI run entry r of
 * [parallel] devices, or else the local rank's GPU among this machine's, else cpu:0. The
 * global device index, or -1 with err (exit status 2). */
static int rank_device(const run *r, char *err, size_t errlen) {
    const vkt_config *c = r->cfg;
    int rank = vkt_dist_rank(r->dist), world = vkt_dist_size(r->dist);
    if (world == 1) return vkt_device_resolve(c->backend.device, err, errlen);
    char spec[64] = "cpu:0";
    if (c->parallel.devices[0]) {
        const char *e = c->parallel.devices;
        for (int i = 0; i < rank && e; i++) {
            e = strchr(e, ',');
            if (e) e++;
        }
        if (!e) {
            snprintf(err, errlen,
                     "[parallel] devices = %s names fewer devices than the %d ranks of this "
                     "run. HINT: one entry per rank (mpirun -np K), e.g. cpu:0,vulkan:0",
                     c->parallel.devices, world);
            return -1;
        }
        snprintf(spec, sizeof spec, "%.*s", (int)strcspn(e, ","), e);
    } else { /* the local rank's GPU */
        int want = vkt_dist_local_rank(r->dist), seen = 0;
        for (int i = 0, n = vkt_device_count(); i < n; i++) {
            vkt_device_info d;
            if (vkt_device_info_get(i, &d) || !d.can_train || !d.is_gpu) continue;
            if (seen++ == want) {
                snprintf(spec, sizeof spec, "%d", i);
                break;
            }
        }
    }
    int dev = vkt_device_resolve(spec, err, errlen);
    if (dev < 0) { /* agree() adds the rank */
        char why[512];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errlen, "[parallel] devices: %s", why);
    }
    return dev;
}

/* Whether every rank trains on the same kind of device (backend, name and driver): then their
 * updates agree bit for bit and need no broadcast. */
static int ranks_heterogeneous(run *r) {
    int world = vkt_dist_size(r->dist);
    if (world == 1) return 0;
    const vkt_device_info *d = vkt_backend_info(r->be);
    char me[RANK_NAME_LEN * 2];
    snprintf(me, sizeof me, "%s|%s|%s", d->backend, d->name, d->driver);
    char *all = malloc((size_t)world * sizeof me);
    if (!all) return 1; /* the safe answer */
    vkt_dist_allgather(r->dist, me, all, sizeof me);
    int hetero = 0;
    for (int i = 1; i < world; i++) hetero |= strcmp(all + (size_t)i * sizeof me, all) != 0;
    free(all);
    return hetero;
}

/* Rank 0's line naming every rank's device. */
static void print_ranks(run *r) {
    int world = vkt_dist_size(r->dist);
    if (world == 1) return;
    char me[RANK_NAME_LEN], *all = malloc((size_t)world * RANK_NAME_LEN);
    if (!all) return;
    rank_name(r, me);
    vkt_dist_allgather(r->dist, me, all, RANK_NAME_LEN);
    if (vkt_dist_rank(r->dist) == 0) {
        fprintf(stderr, "vktrain: %s, %d ranks, %d sequences each per micro-batch%s:",
                vkt_dist_name(r->dist), world, r->B,
                r->hetero ? " (different devices: rank 0's parameters broadcast after each "
                            "update)" : "");
        for (int i = 0; i < world; i++)
            fprintf(stderr, "%s rank %d %s", i ? "," : "", i, all + (size_t)i * RANK_NAME_LEN);
        fprintf(stderr, "\n");
    }
    free(all);
}

/* Every rank reaches this with its own rc: all go on when all succeeded; otherwise all stop
 * with the largest status, and only the lowest failing rank keeps its message (an error
 * every rank meets, such as a config one, is then printed once). */
static int agree(run *r, int rc, char *err, size_t errlen) {
    if (vkt_dist_size(r->dist) == 1) return rc;
    int first = vkt_dist_first_set(r->dist, rc != 0), worst = vkt_dist_max(r->dist, rc);
    if (first < 0) return 0;
    if (first != vkt_dist_rank(r->dist)) {
        err[0] = 0;
    } else if (first > 0) { /* rank 0's own messages need no prefix */
        char why[2048];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errlen, "rank %d: %s", first, why);
    }
    return worst;
}

/* After the loop, in an MPI run: an error every rank met is reported by rank 0 alone; one of
 * this rank alone (a device error, a checkpoint rank 0 could not write) is printed here,
 * naming the rank and its device, and ends the whole job, whose other ranks would wait in
 * the next collective for ever. */
static int finish_ranks(run *r, int rc, char *err, size_t errlen) {
    if (!rc || vkt_dist_size(r->dist) == 1) return rc;
    if (r->collective_err) {
        if (vkt_dist_rank(r->dist) != 0) err[0] = 0;
        return rc;
    }
    char me[RANK_NAME_LEN] = "its device";
    if (r->be) rank_name(r, me);
    fprintf(stderr, "vktrain: error: rank %d (%s): %s\n", vkt_dist_rank(r->dist), me, err);
    vkt_dist_abort(r->dist, rc);
    (void)errlen;
    return rc;
}

int vkt_train_run_opts(const vkt_config *config, const vkt_train_opts *opts,
                       vkt_train_result *res, float *losses_out, char *err, size_t errlen) {
    int profile = opts && opts->profile;
    vkt_config copy = *config, *cfg = &copy;
    run r = {.cfg = cfg};
    vkt_train_result local;
    if (!res) res = &local;
    memset(res, 0, sizeof *res);
    res->last_val_loss = -1;
    err[0] = 0;
    r.dist = opts && opts->dist ? opts->dist : vkt_dist_local();
    vkt_schedule_from_config(&r.sched, cfg);
    /* cheap checks first: a wrong device name should not wait for the data to load */
    int dev = rank_device(&r, err, errlen);
    int rank0 = vkt_dist_rank(r.dist) == 0, lock = -1;
    /* an existing out_dir is locked at once, so that a second run on it is refused before it
     * loads anything; a new one only once the run is ready to write (a rejected run leaves
     * no directory behind) */
    if (opts && opts->dry_run) { /* no run directory, lock, data or metrics */
        int rc = dev < 0 ? 2 : read_init_weights(&r, err, errlen);
        if (!rc) rc = dry_run(&r, dev, err, errlen);
        if (r.be) vkt_free(r.be, r.scalar);
        vkt_model_destroy(r.model);
        vkt_backend_destroy(r.be);
        free(r.inputs);
        free(r.targets);
        vkt_checkpoint_free(&r.init);
        return rc;
    }
    int rc = dev < 0 ? 2 : rank0 ? vkt_rundir_lock(cfg->train.out_dir, 0, &lock, err, errlen) : 0;
    if (!rc) rc = read_init_weights(&r, err, errlen);
    if (!rc) rc = load_data(&r, err, errlen);
    if (!rc) rc = open_device(&r, dev, err, errlen);
    if (!rc) rc = init_state(&r, err, errlen);
    rc = agree(&r, rc, err, errlen); /* every rank set up, or none goes on */
    if (!rc) { /* rank 0's run directory */
        if (rank0 && lock < 0) rc = vkt_rundir_lock(cfg->train.out_dir, 1, &lock, err, errlen);
        if (!rc && rank0) rc = vkt_rundir_start(cfg->train.out_dir, cfg->train.resume, err, errlen);
        if (!rc && rank0)
            rc = vkt_metrics_open(&r.metrics, cfg->train.out_dir,
                                  cfg->train.resume ? r.start_step : -1, err, errlen);
        rc = agree(&r, rc, err, errlen);
    }
    if (!rc) {
        r.hetero = ranks_heterogeneous(&r);
        print_ranks(&r);
    }
    if (!rc && profile && vkt_profile_enable(r.be, 1))
        fprintf(stderr, "vktrain: --profile: %s cannot time its work; no table\n",
                vkt_backend_info(r.be)->name);
    if (!rc) rc = finish_ranks(&r, loop(&r, res, losses_out, err, errlen), err, errlen);
    if (!rc && profile && vkt_dist_rank(r.dist) == 0)
        print_profile(&r, res->steps_done - r.start_step);
    vkt_metrics_close(&r.metrics);
    free(r.inputs);
    free(r.targets);
    if (r.be) vkt_free(r.be, r.scalar);
    vkt_model_destroy(r.model);
    vkt_backend_destroy(r.be);
    vkt_loader_destroy(r.loader);
    vkt_data_close(&r.data);
    vkt_checkpoint_free(&r.init);
    vkt_dir_unlock(lock); /* last: the run's files are complete */
    return rc;
}
