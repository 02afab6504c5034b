/* Internals shared by the tokenizer's files: the struct, and what tokenizer.c (construction,
 * decoding, files) and bpe_*.c (pre-tokenizer, encoding, training) lend each other. */
#ifndef VKTRAIN_TOKENIZER_IMPL_H
#define VKTRAIN_TOKENIZER_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "vktrain/tokenizer.h"

/* One slot of the encoder's open-addressing table (left << 16 | right) -> merge rank. The key
 * 0xFFFFFFFF marks an empty slot: no merge can pair token 65535 with itself (a merge uses only
 * ids below its own new id, and 65535 is the last id there is). */
typedef struct vkt_bpe_slot {
    uint32_t key;
    uint32_t rank;
} vkt_bpe_slot;
#define VKT_BPE_EMPTY_KEY 0xFFFFFFFFu
#define VKT_BPE_NO_RANK 0xFFFFFFFFu
#define VKT_BPE_MAX_MERGES (VKT_BPE_MAX_VOCAB - 256)

struct vkt_tokenizer {
    vkt_tokenizer_kind kind;
    int vocab_size;
    int n_merges;
    uint16_t *merges;         /* BPE: 2 per merge (left, right); merge i makes token 256 + i */
    uint32_t *tok_off;        /* vocab_size + 1 offsets into tok_bytes */
    unsigned char *tok_bytes; /* every token's bytes, end to end */
    vkt_bpe_slot *pairs;      /* BPE: pair -> merge rank, for encoding */
    uint32_t pair_mask;       /* table size - 1 (size a power of two) */
    int pair_shift;           /* 32 - log2(table size): Fibonacci hashing keeps the top bits */
    uint64_t fingerprint;     /* vkt_hash64 of the serialised form, computed once */
};

static inline uint32_t vkt_bpe_pair_key(uint32_t left, uint32_t right) {
    return left << 16 | right;
}

/* The merge rank of the pair (left, right), or VKT_BPE_NO_RANK. */
static inline uint32_t vkt_bpe_rank(const vkt_tokenizer *t, uint32_t left, uint32_t right) {
    uint32_t key = vkt_bpe_pair_key(left, right);
    for (uint32_t h = (key * 0x9E3779B1u) >> t->pair_shift;; h = (h + 1) & t->pair_mask) {
        if (t->pairs[h].key == key) return t->pairs[h].rank;
        if (t->pairs[h].key == VKT_BPE_EMPTY_KEY) return VKT_BPE_NO_RANK;
    }
}

/* The pre-tokenizer (bpe_encode.c): the end of the word that starts at s < len. */
size_t vkt_bpe_word_end(const unsigned char *text, size_t len, size_t s);
/* The first word start at or after pos (or len). */
size_t vkt_bpe_safe_cut(const unsigned char *text, size_t len, size_t pos);
/* Encodes with t's merges (t is a BPE tokenizer); out holds >= len ids. */
size_t vkt_bpe_encode(const vkt_tokenizer *t, const unsigned char *text, size_t len,
                      uint16_t *out);

/* Builds a BPE tokenizer from merges (tokenizer.c), which it checks (ids defined before use,
 * no pair twice, token bytes of a sane total size) and takes ownership of, freed on failure
 * too. NULL with err "<name>: ..." on failure. */
vkt_tokenizer *vkt_tokenizer_from_merges(uint16_t *merges, int n_merges, const char *name,
                                         char *err, size_t errlen);

#endif
