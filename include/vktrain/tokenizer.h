/* Tokenizers: byte-level (one token per byte, vocab 256) and byte-level BPE (256 byte tokens
 * plus learned merges, as GPT-2 but trained here), with a file format of our own; llm.c's
 * gpt2_tokenizer.bin loads for decoding only (it holds token bytes, not merges).
 *
 * Every tokenizer round-trips arbitrary bytes (binary, invalid UTF-8): decode(encode(x)) == x.
 * Tokens are uint16, so vocab sizes are at most 65536. */
#ifndef VKTRAIN_TOKENIZER_H
#define VKTRAIN_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef enum { VKT_TOKENIZER_BYTE, VKT_TOKENIZER_BPE, VKT_TOKENIZER_LLMC } vkt_tokenizer_kind;

#define VKT_BPE_MIN_VOCAB 257
#define VKT_BPE_MAX_VOCAB 65536
#define VKT_LLMC_TOKENIZER_MAGIC 20240328

typedef struct vkt_tokenizer vkt_tokenizer;

vkt_tokenizer *vkt_tokenizer_byte(void);

/* Trains byte-level BPE on the concatenation of n texts (arbitrary bytes) until vocab_size
 * tokens (256 + merges) or until no pair occurs twice (then the vocab is smaller; the caller
 * reads vkt_tokenizer_vocab_size). Text is first cut into words (pre-tokenization, below) and
 * merges never cross a word boundary. Deterministic: the same input gives the same merges
 * (ties broken by the pair's token ids). NULL + message (naming no file) on failure. */
vkt_tokenizer *vkt_tokenizer_train_bpe(const unsigned char *const *texts, const size_t *lens,
                                       int n, int vocab_size, char *err, size_t errlen);

vkt_tokenizer_kind vkt_tokenizer_kind_of(const vkt_tokenizer *t);
const char *vkt_tokenizer_kind_name(const vkt_tokenizer *t); /* "byte", "bpe", "llmc" */
int vkt_tokenizer_vocab_size(const vkt_tokenizer *t);
/* 1 when encode works (byte, bpe); 0 for llm.c's decode-only files. */
int vkt_tokenizer_can_encode(const vkt_tokenizer *t);

/* Encodes len bytes into out, which must hold at least len ids (every token covers >= 1
 * byte); returns the number of ids. Thread-safe on a shared tokenizer (any cache is
 * internal and synchronised, or per call). A decode-only (llmc) tokenizer gives 0 ids. */
size_t vkt_tokenizer_encode(const vkt_tokenizer *t, const unsigned char *text, size_t len,
                            uint16_t *out);
/* A cut position in text[0..len) at or after pos (or len) such that encoding the two sides
 * separately gives the same ids as encoding the whole: the start of a pre-tokenizer word.
 * Lets prepare encode a large input in independent chunks (and split train/val). */
size_t vkt_tokenizer_safe_cut(const vkt_tokenizer *t, const unsigned char *text, size_t len,
                              size_t pos);

/* The bytes of token id (NULL, len 0 when id is out of range). */
const unsigned char *vkt_tokenizer_token_bytes(const vkt_tokenizer *t, int id, size_t *len);
/* Appends the bytes of n ids to out (capacity cap); returns the bytes the whole decode needs
 * (as snprintf: when it exceeds cap, out holds a prefix). Unknown ids decode to nothing. */
size_t vkt_tokenizer_decode(const vkt_tokenizer *t, const uint16_t *ids, size_t n,
                            unsigned char *out, size_t cap);

/* Serialised form (our file format: magic "VKTTOKEN", version, kind, vocab size, merges,
 * CRC32; layout in src/data/tokenizer.c). Fingerprint = hash of that form: prepare records it
 * in manifest.ini to catch a tokenizer that does not match the shards. parse reads what load
 * reads (ours or llm.c's), name standing for the file in messages. */
int vkt_tokenizer_serialize(const vkt_tokenizer *t, unsigned char **data, size_t *len);
vkt_tokenizer *vkt_tokenizer_parse(const unsigned char *data, size_t len, const char *name,
                                   char *err, size_t errlen);
uint64_t vkt_tokenizer_fingerprint(const vkt_tokenizer *t);

/* Files: save writes our format atomically (temp name, rename); load reads ours or llm.c's
 * gpt2_tokenizer.bin (magic 20240328, versions 1 and 2; decode only). Errors name the file
 * and the problem; load returns NULL with rc 2 semantics (bad input). */
int vkt_tokenizer_save(const vkt_tokenizer *t, const char *path, char *err, size_t errlen);
vkt_tokenizer *vkt_tokenizer_load(const char *path, char *err, size_t errlen);

void vkt_tokenizer_free(vkt_tokenizer *t);

#endif
