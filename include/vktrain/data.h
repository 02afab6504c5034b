/* Training data, in the order it flows: prepare (text -> tokenizer + token shards in a
 * directory), the cache (text named in a config is prepared once, keyed by content), shards
 * (llm.c's format, memory-mapped), the data set a config names (train and validation views
 * over shards), and the loader (B x (T+1) windows, prefetched by a background thread). */
#ifndef VKTRAIN_DATA_H
#define VKTRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "vktrain/config.h"
#include "vktrain/tokenizer.h"

/* ---- shards: llm.c's format ------------------------------------------------------------------
 * 256 x int32 header {magic 20240520, version 1, token count, rest 0}, then uint16 tokens. */
#define VKT_SHARD_MAGIC 20240520
#define VKT_SHARD_VERSION 1
#define VKT_SHARD_HEADER_BYTES 1024
#define VKT_SHARD_MAX_TOKENS 2147483647u /* the header's count is an int32 */
#define VKT_LLMC_MODEL_MAGIC 20240326    /* llm.c model files: named in messages */

typedef struct vkt_shard {
    char path[VKT_PATH_MAX];
    const uint16_t *ids; /* into the mapping */
    size_t n;
    void *map;
    size_t map_len;
} vkt_shard;

/* Maps path read-only and validates the header (magic, version, body at least as long as the
 * count says). 0, or 2 with err naming the file and the problem. */
int vkt_shard_open(const char *path, vkt_shard *s, char *err, size_t errlen);
void vkt_shard_close(vkt_shard *s);
/* Writes one shard atomically (temporary name, then rename). 0, or 1 with err. */
int vkt_shard_write(const char *path, const uint16_t *ids, size_t n, char *err, size_t errlen);

/* ---- prepare --------------------------------------------------------------------------------
 * Output directory (also the layout of a cache entry):
 *   manifest.ini      [prepared] format, tokenizer, vocab_size, tokenizer_fingerprint,
 *                     train_shards, val_shards, train_tokens, val_tokens, inputs
 *   tokenizer.bin     the tokenizer (vkt_tokenizer_save)
 *   train_000000.bin  token shards, at most shard_tokens tokens each; val_000000.bin ...
 * Built under a temporary name beside out_dir and renamed into place when complete. */
#define VKT_PREPARED_MANIFEST "manifest.ini"
#define VKT_PREPARED_FORMAT 1
#define VKT_DEFAULT_SHARD_TOKENS 100000000

typedef struct vkt_prepare_opts {
    const char *const *inputs; /* text files, concatenated in order */
    int n_inputs;
    const char *const *val_inputs; /* explicit validation texts; n_val_inputs 0 = split */
    int n_val_inputs;
    const char *tokenizer; /* "byte" or "bpe" */
    int vocab_size;        /* bpe: target vocabulary (256 + merges) */
    double val_fraction;   /* without val_inputs: the last share of the input bytes */
    size_t shard_tokens;   /* 0 = VKT_DEFAULT_SHARD_TOKENS */
    const char *out_dir;
    int force;    /* replace an existing out_dir that is prepare's output and nothing else */
    int progress; /* 1: progress on stderr (a bar on a terminal, lines otherwise) */
} vkt_prepare_opts;

/* 0; 2 for bad input (missing/empty/unreadable input, out_dir exists, bad option) or 1 for a
 * write failure, with err naming the file. Nothing is left behind on failure. force replaces
 * only a directory whose manifest.ini starts with prepare's signature line and that holds
 * nothing but prepare's files (or nothing): anything else is 2, err naming what is foreign,
 * and nothing is removed. */
int vkt_prepare(const vkt_prepare_opts *o, char *err, size_t errlen);

/* The cache entry for text inputs (cache_dir/data/<16 hex digits>, keyed by a hash of the
 * contents of train_text and val_text (NULL: none) and of the tokenizer settings), prepared
 * now when absent; progress and the outcome are reported on stderr. *hit says whether the
 * entry existed. 0, or the rc of vkt_prepare with err. */
int vkt_data_cache_entry(const char *cache_dir, const char *train_text, const char *val_text,
                         const char *tokenizer, int vocab_size, double val_fraction, char *dir,
                         size_t dirlen, int *hit, char *err, size_t errlen);

/* A prepared directory's manifest. */
typedef struct vkt_prepared {
    char tokenizer[16]; /* "byte" or "bpe" */
    int vocab_size;
    uint64_t fingerprint; /* of tokenizer.bin */
    int train_shards, val_shards;
    uint64_t train_tokens, val_tokens;
} vkt_prepared;

/* Writes dir/manifest.ini (inputs: for the reader's information). 0, or 1 with err. */
int vkt_prepared_write(const char *dir, const vkt_prepared *m, const char *const *inputs,
                       int n_inputs, char *err, size_t errlen);
/* Reads dir/manifest.ini. 0, or 2 with err naming the file and the problem. */
int vkt_prepared_read(const char *dir, vkt_prepared *m, char *err, size_t errlen);
/* dir/train_000003.bin etc.; split is "train" or "val". */
void vkt_prepared_shard_path(char *buf, size_t len, const char *dir, const char *split, int i);

/* ---- the data set of a config ---------------------------------------------------------------
 * [data] train / val may each be: a text file (prepared into the cache), a directory written
 * by prepare, an llm.c token shard, or a glob of shards ("data/fineweb_train_*.bin"). */
typedef struct vkt_span {
    const uint16_t *ids;
    size_t n;
} vkt_span;

/* A sequence of token spans (windows never cross from one span into the next). */
typedef struct vkt_token_view {
    vkt_span *spans;
    int n_spans;
    size_t n_tokens;
    char name[VKT_PATH_MAX]; /* for messages: a path or pattern */
} vkt_token_view;

typedef struct vkt_data {
    vkt_shard *shards;
    int n_shards;
    vkt_token_view train, val; /* val.n_tokens == 0: no validation set */
    vkt_tokenizer *tokenizer;  /* NULL when unknown (bare llm.c shards) */
    char source[2 * VKT_PATH_MAX + 64]; /* a line for the banner: where the tokens came from */
} vkt_data;

/* 1 when path names text (not a directory, glob or shard). */
int vkt_data_is_text(const char *path);

/* Opens what cfg's [data] names, holds out validation tokens as configured, and checks that
 * every token id is < [model] vocab_size. 0, or 2 with err naming the file/key, or 1. */
int vkt_data_open(const vkt_config *cfg, vkt_data *d, char *err, size_t errlen);
void vkt_data_close(vkt_data *d);

/* ---- loader ---------------------------------------------------------------------------------
 * Batch k of a run is a pure function of (view, order, seed, k, B, T): resuming needs only the
 * seed and k, and the prefetch thread can compute batches ahead of the training loop. */
typedef enum { VKT_ORDER_RANDOM, VKT_ORDER_SEQUENTIAL } vkt_data_order;

typedef struct vkt_loader_state {
    uint64_t seed;
    uint64_t batches; /* batches handed out so far = index of the next one */
} vkt_loader_state;

/* Batch k into inputs/targets ((B,T) int32 each; targets = inputs shifted by one token).
 * random: each row starts at a uniformly drawn position; sequential: consecutive windows of
 * T+1 tokens at stride T through the spans, wrapping at the end. */
void vkt_batch_at(const vkt_token_view *v, vkt_data_order order, uint64_t seed, uint64_t k, int B,
                  int T, int32_t *inputs, int32_t *targets);
/* Rows [offset, offset + B) of batch k at global_B rows (what vkt_batch_at gives at B =
 * global_B): a rank's share of a data-parallel step, the same windows whatever the split. */
void vkt_batch_slice_at(const vkt_token_view *v, vkt_data_order order, uint64_t seed,
                        uint64_t k, int global_B, int offset, int B, int T, int32_t *inputs,
                        int32_t *targets);
/* Evaluation batch i: sequential windows from the start of v. */
void vkt_eval_batch(const vkt_token_view *v, int i, int B, int T, int32_t *inputs,
                    int32_t *targets);
/* Rows [offset, offset + B) of evaluation batch i at global_B rows. */
void vkt_eval_batch_slice(const vkt_token_view *v, int i, int global_B, int offset, int B, int T,
                          int32_t *inputs, int32_t *targets);
/* Windows of T+1 tokens v holds (at stride T); evaluation covers at most this many rows. */
size_t vkt_view_windows(const vkt_token_view *v, int T);

typedef struct vkt_loader vkt_loader;

/* prefetch = batches computed ahead by a background thread (0 = none: computed on demand).
 * Batches may be up to max_B x max_T. NULL + err when out of memory or no thread. */
vkt_loader *vkt_loader_create(const vkt_token_view *v, vkt_data_order order, uint64_t seed,
                              int max_B, int max_T, int prefetch, char *err, size_t errlen);
void vkt_loader_destroy(vkt_loader *l);
vkt_loader_state vkt_loader_get_state(const vkt_loader *l);
void vkt_loader_set_state(vkt_loader *l, vkt_loader_state s);
/* From now on batch k is rows [offset, offset + B) of batch k at global_B rows
 * (vkt_batch_slice_at): this rank's share under MPI. */
void vkt_loader_set_slice(vkt_loader *l, int global_B, int offset);
/* The next batch; returns the seconds spent waiting for it (0 when it was ready). */
double vkt_loader_next(vkt_loader *l, int B, int T, int32_t *inputs, int32_t *targets);

#endif
