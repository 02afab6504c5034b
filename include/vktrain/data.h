/* Training data: token arrays from text (byte tokenizer) or llm.c token shards, and the loader
 * that cuts them into (B, T+1) windows. */
#ifndef VKTRAIN_DATA_H
#define VKTRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

#define VKT_SHARD_MAGIC 20240520
#define VKT_SHARD_VERSION 1

typedef struct vkt_tokens {
    uint16_t *ids;
    size_t n;
} vkt_tokens;

/* Reads path: an llm.c token shard (by its magic) or else text, tokenized with the byte
 * tokenizer (one token per byte, vocab 256). Every id must be < vocab_size. Returns 0, or 2
 * with a message naming the file and the problem. */
int vkt_tokens_load(const char *path, int vocab_size, vkt_tokens *out, char *err, size_t errlen);
/* Moves the last `fraction` of t into val (a copy); t keeps the rest. */
int vkt_tokens_split(vkt_tokens *t, double fraction, vkt_tokens *val, char *err, size_t errlen);
void vkt_tokens_free(vkt_tokens *t);

/* Random windows: each sequence starts at a uniformly drawn position. The state (rng and
 * count) is small and goes into checkpoints, so a resumed run sees the same next batch. */
typedef struct vkt_loader_state {
    uint64_t rng;
    uint64_t batches; /* batches drawn so far */
} vkt_loader_state;

typedef struct vkt_loader {
    const vkt_tokens *tokens;
    vkt_loader_state state;
} vkt_loader;

void vkt_loader_init(vkt_loader *l, const vkt_tokens *tokens, uint64_t seed);
/* inputs and targets are (B,T) int32; targets are inputs shifted by one token. */
void vkt_loader_next(vkt_loader *l, int B, int T, int32_t *inputs, int32_t *targets);
/* The i-th fixed evaluation batch: sequences laid end to end from the start of tokens. */
void vkt_loader_eval_batch(const vkt_tokens *tokens, int i, int B, int T, int32_t *inputs,
                           int32_t *targets);

#endif
