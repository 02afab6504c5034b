/* The run configuration: every setting of an INI file, validated before any work starts. */
#ifndef VKTRAIN_CONFIG_H
#define VKTRAIN_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#define VKT_PATH_MAX 1024

typedef enum { VKT_SCHED_COSINE, VKT_SCHED_LINEAR, VKT_SCHED_WSD, VKT_SCHED_CONSTANT } vkt_sched_kind;

typedef struct vkt_config {
    char path[VKT_PATH_MAX]; /* the INI file it came from */
    struct {
        int n_layer, n_head, n_embd, vocab_size, block_size;
        char init_from[VKT_PATH_MAX]; /* "" = random init */
    } model;
    struct {
        char train[VKT_PATH_MAX];
        char val[VKT_PATH_MAX]; /* "" = last val_fraction of train */
        double val_fraction;
        char tokenizer[32];     /* "byte" | "bpe": for text inputs */
        int order;              /* vkt_data_order: random | sequential */
        int prefetch;           /* batches prefetched by the loader thread; 0 = none */
    } data;
    struct {
        int batch_size, seq_len, grad_accum_steps, max_steps, stop_step;
        int eval_interval, eval_batches, checkpoint_interval;
        char out_dir[VKT_PATH_MAX];
        unsigned long long seed;
        char precision[8]; /* "fp32" | "fp16" */
        double loss_scale_init; /* fp16: first dynamic loss scale */
        int loss_scale_window;  /* fp16: clean steps before the scale doubles */
        double skip_outliers;   /* z: skip updates whose loss or grad norm is an outlier; 0 = off */
        int resume;        /* 0/1 */
        int log_interval;
    } train;
    struct {
        char name[16]; /* "adamw" */
        double lr, min_lr;
        int warmup_steps;
        vkt_sched_kind schedule;
        double decay_fraction; /* wsd: share of max_steps spent decaying at the end */
        double weight_decay, beta1, beta2, eps, grad_clip;
    } optim;
    struct {
        char device[64]; /* "0", "cpu:0", ... */
        char cache_dir[VKT_PATH_MAX];
        char matmul[16]; /* auto | fp32 | fp32_direct | fp16 | fp16_direct | coopmat (vulkan) */
        char attention[8]; /* flash | exact (vulkan) */
    } backend;
    struct {
        char devices[256]; /* MPI: rank r's device is entry r; "" = by local rank */
        int check_every;   /* steps between parameter-hash checks across ranks; 0 = never */
        char balance[8];   /* even | auto: how the global batch is shared among the ranks */
    } parallel;
} vkt_config;

/* Defaults for every key. */
void vkt_config_defaults(vkt_config *cfg);

/* Loads path (NULL: defaults only), applies overrides ("section.key=value", n of them), and
 * validates everything. 0 on success; otherwise fills err with one message naming the file
 * (or "--set"), the section, the key, the bad value and what is accepted, and returns 2. */
int vkt_config_load(vkt_config *cfg, const char *path, const char *const *overrides,
                    int n_overrides, char *err, size_t errlen);

/* Loads config text (as vkt_config_print writes it, e.g. saved in a checkpoint); name is what
 * messages call it. Same rules and return values as vkt_config_load. */
int vkt_config_load_text(vkt_config *cfg, const char *text, const char *name,
                         const char *const *overrides, int n_overrides, char *err,
                         size_t errlen);

/* Writes the effective config as INI, every key with its value. */
void vkt_config_print(const vkt_config *cfg, FILE *f);

/* Reference of every key: section, key, default and meaning (Markdown table rows). */
void vkt_config_print_reference(FILE *f);

#endif
