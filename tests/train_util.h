/* Shared by the training tests: a small, fast config on the shipped corpus. */
#ifndef VKT_TRAIN_UTIL_H
#define VKT_TRAIN_UTIL_H

#include <stdio.h>
#include <stdlib.h>

#include "vktrain/config.h"

/* Loads defaults + a small model on data/tinyshakespeare.txt + extra overrides into cfg. */
static inline int small_config(vkt_config *cfg, const char *out_dir, const char **extra,
                               int n_extra) {
    const char *src = getenv("VKT_SOURCE_DIR");
    if (!src) {
        fprintf(stderr, "VKT_SOURCE_DIR is not set (run through ctest)\n");
        exit(77);
    }
    static char train[1200], out[1200], cache[1200];
    snprintf(train, sizeof train, "data.train=%s/data/tinyshakespeare.txt", src);
    snprintf(out, sizeof out, "train.out_dir=%s", out_dir);
    snprintf(cache, sizeof cache, "backend.cache_dir=%s/cache", out_dir); /* not ~/.cache */
    const char *ov[64] = {train, out, "model.n_layer=2", "model.n_head=2", "model.n_embd=32",
                          "model.block_size=32", "train.batch_size=4", "train.seq_len=32",
                          "train.eval_interval=10", "train.eval_batches=2", "optim.lr=3e-3",
                          "optim.min_lr=3e-4", "optim.warmup_steps=5", "backend.device=cpu:0",
                          cache};
    int n = 15;
    for (int i = 0; i < n_extra && n < 64; i++) ov[n++] = extra[i];
    char err[1024];
    int rc = vkt_config_load(cfg, NULL, ov, n, err, sizeof err);
    if (rc) fprintf(stderr, "config: %s\n", err);
    return rc;
}

#endif
