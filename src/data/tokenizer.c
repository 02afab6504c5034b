/* Tokenizers: construction, token bytes and decoding, and the files (our format and llm.c's
 * gpt2_tokenizer.bin). BPE's pre-tokenizer and encoding are in bpe_encode.c, training in
 * bpe_train.c.
 *
 * Our format, all integers little-endian:
 *   "VKTTOKEN" | u32 version (1) | u32 kind (0 byte, 1 bpe, 2 llmc) | u32 vocab_size |
 *   u32 n_merges | body | u32 CRC32 of everything before it
 * body: bpe: n_merges (u16 left, u16 right) pairs, merge i making token 256 + i; byte: empty;
 * llmc (a loaded llm.c file, which has token bytes but no merges): n_merges is 0 and the body
 * is llm.c's own token table, vocab_size times (u8 length, that many bytes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer_impl.h"
#include "util/crc32.h"
#include "util/fs.h"
#include "util/hash.h"

static const char MAGIC[8] = {'V', 'K', 'T', 'T', 'O', 'K', 'E', 'N'};
enum { FORMAT_VERSION = 1, HEADER_BYTES = 24, CRC_BYTES = 4, LLMC_HEADER_BYTES = 1024 };
/* Token bytes of a parsed BPE can grow exponentially with adversarial merges ((a,a), then
 * (aa,aa), ...): refuse more than this in all. Real vocabularies take a few hundred KB. */
#define MAX_TOKEN_BYTES (1u << 30)

static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint16_t get_u16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static unsigned char *put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> 8 * i);
    return p + 4;
}
static unsigned char *put_u16(unsigned char *p, uint16_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    return p + 2;
}

static vkt_tokenizer *tokenizer_new(vkt_tokenizer_kind kind, int vocab_size) {
    vkt_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->kind = kind;
    t->vocab_size = vocab_size;
    t->tok_off = calloc((size_t)vocab_size + 1, sizeof *t->tok_off);
    if (!t->tok_off) {
        free(t);
        return NULL;
    }
    return t;
}

void vkt_tokenizer_free(vkt_tokenizer *t) {
    if (!t) return;
    free(t->merges);
    free(t->tok_off);
    free(t->tok_bytes);
    free(t->pairs);
    free(t);
}

/* Computed once at construction: the fingerprint is asked for per shard. 0 on success. */
static int set_fingerprint(vkt_tokenizer *t) {
    unsigned char *data;
    size_t len;
    if (vkt_tokenizer_serialize(t, &data, &len) != 0) return -1;
    t->fingerprint = vkt_hash64(data, len);
    free(data);
    return 0;
}

vkt_tokenizer *vkt_tokenizer_byte(void) {
    vkt_tokenizer *t = tokenizer_new(VKT_TOKENIZER_BYTE, 256);
    if (!t || !(t->tok_bytes = malloc(256))) goto fail;
    for (int i = 0; i < 256; i++) {
        t->tok_bytes[i] = (unsigned char)i;
        t->tok_off[i + 1] = (uint32_t)i + 1;
    }
    if (set_fingerprint(t) != 0) goto fail;
    return t;
fail:
    vkt_tokenizer_free(t);
    return NULL;
}

/* ---- BPE from merges ------------------------------------------------------------------------ */

static int out_of_memory(const char *name, char *err, size_t errlen) {
    snprintf(err, errlen, "%s: out of memory building the tokenizer", name);
    return -1;
}

/* Token 256 + i is the bytes of its left then its right token. 0, or -1 with err filled when
 * a merge uses an id not yet defined or the bytes would exceed MAX_TOKEN_BYTES. */
static int build_bpe_bytes(vkt_tokenizer *t, const char *name, char *err, size_t errlen) {
    const uint16_t *m = t->merges;
    uint32_t *off = t->tok_off;
    for (uint32_t i = 0; i <= 256; i++) off[i] = i;
    for (int i = 0; i < t->n_merges; i++) {
        uint32_t l = m[2 * i], r = m[2 * i + 1], id = 256 + (uint32_t)i;
        if (l >= id || r >= id) {
            snprintf(err, errlen, "%s: merge %d uses token %u or %u, not defined before token %u",
                     name, i, l, r, id);
            return -1;
        }
        /* both lengths are <= the total so far <= 2^30: no overflow */
        uint64_t end = (uint64_t)off[id] + (off[l + 1] - off[l]) + (off[r + 1] - off[r]);
        if (end > MAX_TOKEN_BYTES) {
            snprintf(err, errlen, "%s: merge %d makes the tokens' bytes exceed %u in all", name,
                     i, MAX_TOKEN_BYTES);
            return -1;
        }
        off[id + 1] = (uint32_t)end;
    }
    unsigned char *b = t->tok_bytes = malloc((size_t)off[t->vocab_size] + 1);
    if (!b) return out_of_memory(name, err, errlen);
    for (int i = 0; i < 256; i++) b[i] = (unsigned char)i;
    for (int i = 0; i < t->n_merges; i++) {
        uint32_t l = m[2 * i], r = m[2 * i + 1], at = off[256 + i];
        uint32_t ll = off[l + 1] - off[l];
        memcpy(b + at, b + off[l], ll);
        memcpy(b + at + ll, b + off[r], off[r + 1] - off[r]);
    }
    return 0;
}

/* The encoder's pair -> rank table, at most 1/4 full so probes stay short. 0, or -1 with err
 * filled (a pair merged twice makes the file invalid). */
static int build_pair_table(vkt_tokenizer *t, const char *name, char *err, size_t errlen) {
    int bits = 4;
    while ((1u << bits) < 4u * (uint32_t)t->n_merges) bits++;
    t->pair_mask = (1u << bits) - 1;
    t->pair_shift = 32 - bits;
    t->pairs = malloc(((size_t)t->pair_mask + 1) * sizeof *t->pairs);
    if (!t->pairs) return out_of_memory(name, err, errlen);
    for (uint32_t h = 0; h <= t->pair_mask; h++) t->pairs[h].key = VKT_BPE_EMPTY_KEY;
    for (int i = 0; i < t->n_merges; i++) {
        uint32_t key = vkt_bpe_pair_key(t->merges[2 * i], t->merges[2 * i + 1]);
        uint32_t h = (key * 0x9E3779B1u) >> t->pair_shift;
        for (; t->pairs[h].key != VKT_BPE_EMPTY_KEY; h = (h + 1) & t->pair_mask) {
            if (t->pairs[h].key == key) {
                snprintf(err, errlen, "%s: merge %d repeats merge %u (pair %u, %u)", name, i,
                         t->pairs[h].rank, key >> 16, key & 0xFFFF);
                return -1;
            }
        }
        t->pairs[h].key = key;
        t->pairs[h].rank = (uint32_t)i;
    }
    return 0;
}

vkt_tokenizer *vkt_tokenizer_from_merges(uint16_t *merges, int n_merges, const char *name,
                                         char *err, size_t errlen) {
    if (n_merges < 0 || n_merges > VKT_BPE_MAX_MERGES) {
        snprintf(err, errlen, "%s: %d merges, at most %d fit uint16 tokens", name, n_merges,
                 VKT_BPE_MAX_MERGES);
        free(merges);
        return NULL;
    }
    vkt_tokenizer *t = tokenizer_new(VKT_TOKENIZER_BPE, 256 + n_merges);
    if (!t) {
        free(merges);
        out_of_memory(name, err, errlen);
        return NULL;
    }
    t->merges = merges;
    t->n_merges = n_merges;
    if (build_bpe_bytes(t, name, err, errlen) != 0 || build_pair_table(t, name, err, errlen) != 0 ||
        (set_fingerprint(t) != 0 && out_of_memory(name, err, errlen))) {
        vkt_tokenizer_free(t);
        return NULL;
    }
    return t;
}

/* ---- queries, encoding, decoding ------------------------------------------------------------ */

vkt_tokenizer_kind vkt_tokenizer_kind_of(const vkt_tokenizer *t) { return t->kind; }

const char *vkt_tokenizer_kind_name(const vkt_tokenizer *t) {
    switch (t->kind) {
    case VKT_TOKENIZER_BYTE: return "byte";
    case VKT_TOKENIZER_BPE: return "bpe";
    case VKT_TOKENIZER_LLMC: return "llmc";
    }
    return "unknown";
}

int vkt_tokenizer_vocab_size(const vkt_tokenizer *t) { return t->vocab_size; }

int vkt_tokenizer_can_encode(const vkt_tokenizer *t) { return t->kind != VKT_TOKENIZER_LLMC; }

uint64_t vkt_tokenizer_fingerprint(const vkt_tokenizer *t) { return t->fingerprint; }

/* llm.c's files cannot encode (no merges): they give 0 ids. */
size_t vkt_tokenizer_encode(const vkt_tokenizer *t, const unsigned char *text, size_t len,
                            uint16_t *out) {
    if (!t || !text) return 0;
    switch (t->kind) {
    case VKT_TOKENIZER_BYTE:
        for (size_t i = 0; i < len; i++) out[i] = text[i];
        return len;
    case VKT_TOKENIZER_BPE: return vkt_bpe_encode(t, text, len, out);
    case VKT_TOKENIZER_LLMC: break;
    }
    return 0;
}

/* Byte and llm.c tokenizers cut anywhere (llm.c's cannot encode, so any answer is as good). */
size_t vkt_tokenizer_safe_cut(const vkt_tokenizer *t, const unsigned char *text, size_t len,
                              size_t pos) {
    if (pos >= len) return len;
    if (t->kind != VKT_TOKENIZER_BPE) return pos;
    return vkt_bpe_safe_cut(text, len, pos);
}

const unsigned char *vkt_tokenizer_token_bytes(const vkt_tokenizer *t, int id, size_t *len) {
    if (!t || id < 0 || id >= t->vocab_size) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = t->tok_off[id + 1] - t->tok_off[id];
    return t->tok_bytes + t->tok_off[id];
}

size_t vkt_tokenizer_decode(const vkt_tokenizer *t, const uint16_t *ids, size_t n,
                            unsigned char *out, size_t cap) {
    size_t need = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= t->vocab_size) continue;
        size_t at = t->tok_off[ids[i]], l = t->tok_off[ids[i] + 1] - at;
        if (need < cap) memcpy(out + need, t->tok_bytes + at, l < cap - need ? l : cap - need);
        need += l;
    }
    return need;
}

/* ---- our file format ------------------------------------------------------------------------ */

int vkt_tokenizer_serialize(const vkt_tokenizer *t, unsigned char **data, size_t *len) {
    size_t body = 0;
    if (t->kind == VKT_TOKENIZER_BPE) body = 4 * (size_t)t->n_merges;
    if (t->kind == VKT_TOKENIZER_LLMC) body = (size_t)t->vocab_size + t->tok_off[t->vocab_size];
    size_t n = HEADER_BYTES + body + CRC_BYTES;
    unsigned char *p = *data = malloc(n);
    if (!p) return -1;
    memcpy(p, MAGIC, 8);
    p = put_u32(p + 8, FORMAT_VERSION);
    p = put_u32(p, (uint32_t)t->kind);
    p = put_u32(p, (uint32_t)t->vocab_size);
    p = put_u32(p, t->kind == VKT_TOKENIZER_BPE ? (uint32_t)t->n_merges : 0);
    if (t->kind == VKT_TOKENIZER_BPE) {
        for (int i = 0; i < 2 * t->n_merges; i++) p = put_u16(p, t->merges[i]);
    } else if (t->kind == VKT_TOKENIZER_LLMC) {
        for (int i = 0; i < t->vocab_size; i++) {
            uint32_t l = t->tok_off[i + 1] - t->tok_off[i]; /* < 256: it came from a u8 */
            *p++ = (unsigned char)l;
            memcpy(p, t->tok_bytes + t->tok_off[i], l);
            p += l;
        }
    }
    put_u32(p, vkt_crc32(*data, n - CRC_BYTES));
    *len = n;
    return 0;
}

/* An llm.c-style token table, vocab times (u8 length, bytes), from data[pos..end): the size it
 * takes, or 0 when it runs past end (truncated; a table of vocab >= 1 takes >= 1 byte). */
static size_t token_table_size(const unsigned char *data, size_t pos, size_t end,
                               uint32_t vocab) {
    size_t start = pos;
    for (uint32_t i = 0; i < vocab; i++) {
        if (pos >= end || data[pos] > end - pos - 1) return 0;
        pos += 1 + (size_t)data[pos];
    }
    return pos - start;
}

/* Builds an llm.c (decode-only) tokenizer from a token table already checked by
 * token_table_size. */
static vkt_tokenizer *llmc_from_table(const unsigned char *table, size_t table_len,
                                      uint32_t vocab, const char *name, char *err,
                                      size_t errlen) {
    vkt_tokenizer *t = tokenizer_new(VKT_TOKENIZER_LLMC, (int)vocab);
    if (!t || !(t->tok_bytes = malloc(table_len - vocab + 1))) goto oom;
    size_t pos = 0, at = 0;
    for (uint32_t i = 0; i < vocab; i++) {
        size_t l = table[pos];
        memcpy(t->tok_bytes + at, table + pos + 1, l);
        pos += 1 + l;
        at += l;
        t->tok_off[i + 1] = (uint32_t)at;
    }
    if (set_fingerprint(t) != 0) goto oom;
    return t;
oom:
    out_of_memory(name, err, errlen);
    vkt_tokenizer_free(t);
    return NULL;
}

/* The file size the header announces, or 0 when the header makes no sense (unknown kind). */
static uint64_t announced_size(const unsigned char *data, size_t len) {
    uint32_t kind = get_u32(data + 12), vocab = get_u32(data + 16), nm = get_u32(data + 20);
    if (kind == VKT_TOKENIZER_BYTE) return HEADER_BYTES + CRC_BYTES;
    if (kind == VKT_TOKENIZER_BPE) return HEADER_BYTES + 4ull * nm + CRC_BYTES;
    if (kind == VKT_TOKENIZER_LLMC) {
        size_t body = token_table_size(data, HEADER_BYTES, len - CRC_BYTES, vocab);
        return body ? HEADER_BYTES + body + CRC_BYTES : (uint64_t)len + 1;
    }
    return 0;
}

static vkt_tokenizer *parse_ours(const unsigned char *data, size_t len, const char *name,
                                 char *err, size_t errlen) {
    if (len < HEADER_BYTES + CRC_BYTES) {
        snprintf(err, errlen, "%s: tokenizer file is truncated: %zu bytes, the header alone is %d",
                 name, len, HEADER_BYTES + CRC_BYTES);
        return NULL;
    }
    uint32_t version = get_u32(data + 8), kind = get_u32(data + 12);
    uint32_t vocab = get_u32(data + 16), nm = get_u32(data + 20);
    if (version != FORMAT_VERSION) {
        snprintf(err, errlen, "%s: tokenizer format version %u, this vktrain reads version %d",
                 name, version, FORMAT_VERSION);
        return NULL;
    }
    uint64_t want = announced_size(data, len);
    if (vkt_crc32(data, len - CRC_BYTES) != get_u32(data + len - CRC_BYTES)) {
        if (want > len)
            snprintf(err, errlen, "%s: tokenizer file is truncated: %zu bytes, its header "
                     "announces %llu", name, len, (unsigned long long)want);
        else
            snprintf(err, errlen, "%s: tokenizer file is corrupt (CRC mismatch)", name);
        return NULL;
    }
    /* the CRC holds: what follows catches files written wrong, not damaged ones */
    if (want == 0) {
        snprintf(err, errlen, "%s: unknown tokenizer kind %u (this vktrain knows 0 byte, 1 bpe, "
                 "2 llmc)", name, kind);
        return NULL;
    }
    if (want != len) {
        snprintf(err, errlen, "%s: tokenizer file is %zu bytes, its header (kind %u) announces "
                 "%llu", name, len, kind, (unsigned long long)want);
        return NULL;
    }
    if (kind == VKT_TOKENIZER_BYTE) {
        if (vocab == 256 && nm == 0) {
            vkt_tokenizer *t = vkt_tokenizer_byte();
            if (!t) out_of_memory(name, err, errlen);
            return t;
        }
    } else if (kind == VKT_TOKENIZER_BPE) {
        if (nm <= VKT_BPE_MAX_MERGES && vocab == 256 + nm) {
            uint16_t *merges = malloc(4 * (size_t)nm + 1);
            if (!merges) {
                snprintf(err, errlen, "%s: out of memory reading %u merges", name, nm);
                return NULL;
            }
            for (uint32_t i = 0; i < 2 * nm; i++) merges[i] = get_u16(data + HEADER_BYTES + 2 * i);
            return vkt_tokenizer_from_merges(merges, (int)nm, name, err, errlen);
        }
    } else if (kind == VKT_TOKENIZER_LLMC) {
        if (nm == 0 && vocab >= 1 && vocab <= VKT_BPE_MAX_VOCAB)
            return llmc_from_table(data + HEADER_BYTES, len - HEADER_BYTES - CRC_BYTES, vocab,
                                   name, err, errlen);
    }
    snprintf(err, errlen, "%s: tokenizer header is inconsistent: kind %u, vocab size %u, %u merges",
             name, kind, vocab, nm);
    return NULL;
}

/* ---- llm.c's gpt2_tokenizer.bin ------------------------------------------------------------- */

/* 256 u32 {20240328, version 1 or 2, vocab_size, eot_token (version 2)}, then the token
 * table. The EOT id is not kept: decoding does not need it. */
static vkt_tokenizer *parse_llmc(const unsigned char *data, size_t len, const char *name,
                                 char *err, size_t errlen) {
    if (len < LLMC_HEADER_BYTES) {
        snprintf(err, errlen, "%s: llm.c tokenizer is truncated: %zu bytes, the header alone is "
                 "%d", name, len, LLMC_HEADER_BYTES);
        return NULL;
    }
    uint32_t version = get_u32(data + 4), vocab = get_u32(data + 8);
    if (version != 1 && version != 2) {
        snprintf(err, errlen, "%s: llm.c tokenizer version %u, this vktrain reads versions 1 "
                 "and 2", name, version);
        return NULL;
    }
    if (vocab < 1 || vocab > VKT_BPE_MAX_VOCAB) {
        snprintf(err, errlen, "%s: llm.c tokenizer vocab size %u is outside [1, %d]", name, vocab,
                 VKT_BPE_MAX_VOCAB);
        return NULL;
    }
    size_t table = token_table_size(data, LLMC_HEADER_BYTES, len, vocab);
    if (!table) {
        snprintf(err, errlen, "%s: llm.c tokenizer is truncated: fewer than the %u tokens its "
                 "header announces", name, vocab);
        return NULL;
    }
    if (LLMC_HEADER_BYTES + table != len) {
        snprintf(err, errlen, "%s: llm.c tokenizer has %zu unexpected bytes after its %u tokens",
                 name, len - LLMC_HEADER_BYTES - table, vocab);
        return NULL;
    }
    return llmc_from_table(data + LLMC_HEADER_BYTES, table, vocab, name, err, errlen);
}

/* Either format, told apart by its magic. */
vkt_tokenizer *vkt_tokenizer_parse(const unsigned char *data, size_t len, const char *name,
                                   char *err, size_t errlen) {
    if (len == 0) {
        snprintf(err, errlen, "%s: tokenizer file is empty", name);
        return NULL;
    }
    if (len >= 8 && memcmp(data, MAGIC, 8) == 0) return parse_ours(data, len, name, err, errlen);
    if (len >= 4 && get_u32(data) == VKT_LLMC_TOKENIZER_MAGIC)
        return parse_llmc(data, len, name, err, errlen);
    snprintf(err, errlen, "%s: not a tokenizer file (bad magic: neither VKTTOKEN nor llm.c's %d)",
             name, VKT_LLMC_TOKENIZER_MAGIC);
    return NULL;
}

int vkt_tokenizer_save(const vkt_tokenizer *t, const char *path, char *err, size_t errlen) {
    unsigned char *data;
    size_t len;
    if (vkt_tokenizer_serialize(t, &data, &len) != 0) {
        snprintf(err, errlen, "%s: out of memory serialising the tokenizer", path);
        return 1;
    }
    int rc = vkt_write_file_atomic(path, data, len, err, errlen);
    free(data);
    return rc;
}

vkt_tokenizer *vkt_tokenizer_load(const char *path, char *err, size_t errlen) {
    unsigned char *data;
    size_t len;
    if (vkt_read_file(path, &data, &len, err, errlen) != 0) return NULL;
    vkt_tokenizer *t = vkt_tokenizer_parse(data, len, path, err, errlen);
    free(data);
    return t;
}
