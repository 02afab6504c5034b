/* Byte-level BPE, the encoding side: the pre-tokenizer that cuts text into words, the merges
 * applied within each word by rank, and the safe cut positions that follow from both.
 *
 * Pre-tokenization. Every byte has a class: letter (ASCII letters and every byte >= 0x80, so a
 * UTF-8 sequence stays in one word), digit, space (0x20), other whitespace (\t \n \v \f \r) or
 * punctuation (all else, control bytes included). A word is
 *   - an optional single space, then a run of one class of letter, digit or punctuation
 *     (" the", "42", " --");
 *   - or a run of whitespace; a run followed by a non-space leaves its last byte, when that is
 *     a space, to the next word (as GPT-2's \s+(?!\S)): "a   b" is "a", "  ", " b".
 * So every byte is in exactly one word, and whether position i starts a word depends only on
 * bytes i-1, i and i+1 (the end of the text counting as whitespace): cut at a word start, each
 * side has the same words as before, so it encodes to the same ids (vkt_bpe_safe_cut). Unlike
 * GPT-2 there is no special case for contractions ("don't" is "don", "'", "t"). */
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer_impl.h"

/* L letter, D digit, S space, W other whitespace, P punctuation; 16 bytes a row */
static const char BYTE_CLASS[257] =
    "PPPPPPPPPWWWWWPP" "PPPPPPPPPPPPPPPP" "SPPPPPPPPPPPPPPP" "DDDDDDDDDDPPPPPP"
    "PLLLLLLLLLLLLLLL" "LLLLLLLLLLLPPPPP" "PLLLLLLLLLLLLLLL" "LLLLLLLLLLLPPPPP"
    "LLLLLLLLLLLLLLLL" "LLLLLLLLLLLLLLLL" "LLLLLLLLLLLLLLLL" "LLLLLLLLLLLLLLLL"
    "LLLLLLLLLLLLLLLL" "LLLLLLLLLLLLLLLL" "LLLLLLLLLLLLLLLL" "LLLLLLLLLLLLLLLL";

static inline int is_space(char c) { return c == 'S' || c == 'W'; }

size_t vkt_bpe_word_end(const unsigned char *text, size_t len, size_t s) {
    char c = BYTE_CLASS[text[s]];
    size_t e = s + 1;
    if (c == 'S' && e < len && !is_space(BYTE_CLASS[text[e]])) c = BYTE_CLASS[text[e++]];
    if (!is_space(c)) {
        while (e < len && BYTE_CLASS[text[e]] == c) e++;
        return e;
    }
    while (e < len && is_space(BYTE_CLASS[text[e]])) e++;
    if (e < len && e - s > 1 && text[e - 1] == ' ') e--; /* the space goes with the next word */
    return e;
}

/* The same rule as vkt_bpe_word_end, seen from one position: does a word start at i (0 < i <
 * len)? It reads bytes i-1, i and i+1 only, which is what makes cuts there safe. */
static int word_starts_at(const unsigned char *text, size_t len, size_t i) {
    char c = BYTE_CLASS[text[i]], prev = BYTE_CLASS[text[i - 1]];
    if (c == 'S' && i + 1 < len && !is_space(BYTE_CLASS[text[i + 1]])) return 1; /* " word" */
    if (is_space(c)) return !is_space(prev);
    return c != prev && prev != 'S'; /* a space before a word belongs to it */
}

size_t vkt_bpe_safe_cut(const unsigned char *text, size_t len, size_t pos) {
    if (pos == 0) return 0;
    for (; pos < len; pos++)
        if (word_starts_at(text, len, pos)) return pos;
    return len;
}

/* ---- merging within one word ---------------------------------------------------------------
 * As GPT-2's bpe(): while some adjacent pair has a merge, take the lowest-ranked one and merge
 * all its occurrences, left to right without overlap. Three ways to the same result: short
 * words rescan a small rank array; long ones (long runs, binary data) use a heap so the cost
 * stays O(n log n); if the heap's memory cannot be had, a slow scan that needs none. */

enum { SHORT_WORD = 64 };

static size_t merge_short(const vkt_tokenizer *t, uint16_t *ids, size_t n) {
    uint32_t rank[SHORT_WORD]; /* rank[i]: the merge of (ids[i], ids[i + 1]) */
    for (size_t i = 0; i + 1 < n; i++) rank[i] = vkt_bpe_rank(t, ids[i], ids[i + 1]);
    while (n > 1) {
        uint32_t best = VKT_BPE_NO_RANK;
        for (size_t i = 0; i + 1 < n; i++)
            if (rank[i] < best) best = rank[i];
        if (best == VKT_BPE_NO_RANK) break;
        uint16_t id = (uint16_t)(256 + best);
        size_t j = 0;
        for (size_t i = 0; i < n; j++) {
            if (i + 1 < n && rank[i] == best) {
                ids[j] = id;
                i += 2;
            } else {
                ids[j] = ids[i];
                if (i + 1 < n) rank[j] = rank[i];
                i++;
            }
        }
        n = j;
        /* a pair without the new token is one that was there before: its rank was copied */
        for (size_t i = 0; i + 1 < n; i++)
            if (ids[i] == id || ids[i + 1] == id) rank[i] = vkt_bpe_rank(t, ids[i], ids[i + 1]);
    }
    return n;
}

static size_t merge_slow(const vkt_tokenizer *t, uint16_t *ids, size_t n) {
    while (n > 1) {
        uint32_t best = VKT_BPE_NO_RANK;
        for (size_t i = 0; i + 1 < n; i++) {
            uint32_t r = vkt_bpe_rank(t, ids[i], ids[i + 1]);
            if (r < best) best = r;
        }
        if (best == VKT_BPE_NO_RANK) break;
        uint16_t left = t->merges[2 * best], right = t->merges[2 * best + 1];
        size_t j = 0;
        for (size_t i = 0; i < n; j++) {
            int hit = i + 1 < n && ids[i] == left && ids[i + 1] == right;
            ids[j] = hit ? (uint16_t)(256 + best) : ids[i];
            i += hit ? 2 : 1;
        }
        n = j;
    }
    return n;
}

/* Min-heap of (rank << 32 | position): equal ranks pop left to right, and a merge only
 * creates pairs of higher rank (they hold its new token), so this applies merges in the same
 * order as merge_short. Entries go stale when a neighbour merges; they are checked on pop. */
static void heap_push(uint64_t *h, size_t *n, uint64_t v) {
    size_t i = (*n)++;
    for (; i > 0 && h[(i - 1) / 2] > v; i = (i - 1) / 2) h[i] = h[(i - 1) / 2];
    h[i] = v;
}

static uint64_t heap_pop(uint64_t *h, size_t *n) {
    uint64_t top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && h[c + 1] < h[c]) c++;
        if (h[c] >= last) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

#define DEAD UINT32_MAX
#define NONE (UINT32_MAX - 1)

static void push_pair(const vkt_tokenizer *t, const uint16_t *ids, uint32_t i, uint32_t j,
                      uint64_t *heap, size_t *nheap) {
    uint32_t r = vkt_bpe_rank(t, ids[i], ids[j]);
    if (r != VKT_BPE_NO_RANK) heap_push(heap, nheap, (uint64_t)r << 32 | i);
}

static size_t merge_long(const vkt_tokenizer *t, uint16_t *ids, size_t n) {
    if (n >= NONE) return merge_slow(t, ids, n);
    /* a linked list over positions; the node at i holds ids[i] */
    uint32_t *next = malloc(n * sizeof *next), *prev = malloc(n * sizeof *prev);
    uint64_t *heap = malloc(3 * n * sizeof *heap); /* n - 1 pairs, then <= 2 per merge */
    if (!next || !prev || !heap) {
        free(next), free(prev), free(heap);
        return merge_slow(t, ids, n);
    }
    size_t nheap = 0;
    for (uint32_t i = 0; i < n; i++) {
        next[i] = i + 1 < n ? i + 1 : NONE;
        prev[i] = i > 0 ? i - 1 : NONE;
        if (i + 1 < n) push_pair(t, ids, i, i + 1, heap, &nheap);
    }
    while (nheap) {
        uint64_t top = heap_pop(heap, &nheap);
        uint32_t r = (uint32_t)(top >> 32), i = (uint32_t)top, j = next[i];
        if (j == DEAD || j == NONE || ids[i] != t->merges[2 * r] || ids[j] != t->merges[2 * r + 1])
            continue; /* stale: i was merged away, or its pair changed */
        ids[i] = (uint16_t)(256 + r);
        next[i] = next[j];
        if (next[j] != NONE) prev[next[j]] = i;
        next[j] = DEAD;
        if (prev[i] != NONE) push_pair(t, ids, prev[i], i, heap, &nheap);
        if (next[i] != NONE) push_pair(t, ids, i, next[i], heap, &nheap);
    }
    size_t m = 0;
    for (uint32_t i = 0; i != NONE; i = next[i]) ids[m++] = ids[i]; /* node 0 never dies */
    free(next), free(prev), free(heap);
    return m;
}

/* ---- whole texts ----------------------------------------------------------------------------
 * Natural text repeats its words, so each call keeps a cache word -> ids. Its entries point
 * into the text and into out, where the word's ids were first written: no copies, and
 * nothing shared between calls (encode is thread-safe without locks). */

typedef struct cache_entry {
    uint32_t hash;
    uint32_t len; /* 0: empty slot */
    size_t text_at, out_at, ntok;
} cache_entry;

typedef struct word_cache {
    cache_entry *slots; /* NULL: no cache (short input, or no memory) */
    size_t mask, used;
} word_cache;

static void cache_init(word_cache *c, size_t text_len) {
    memset(c, 0, sizeof *c);
    if (text_len < 4096) return; /* a prompt: not worth the table */
    size_t size = 1024;
    while (size < text_len / 8 && size < (1u << 16)) size *= 2;
    c->slots = calloc(size, sizeof *c->slots);
    c->mask = size - 1;
}

/* FNV-1a: words are a few bytes, where it beats block hashes */
static uint32_t word_hash(const unsigned char *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

/* The slot that holds the word, or the empty slot where it would go (NULL when full). */
static cache_entry *cache_find(const word_cache *c, const unsigned char *text, size_t at,
                               size_t len, uint32_t hash) {
    for (size_t probes = 0, i = hash & c->mask; probes <= c->mask; probes++) {
        cache_entry *e = &c->slots[(i + probes) & c->mask];
        if (e->len == 0) return e;
        if (e->hash == hash && e->len == len && !memcmp(text + e->text_at, text + at, len))
            return e;
    }
    return NULL;
}

/* Encodes the word text[at..at+len) into out + n; returns the number of ids. */
static size_t encode_word(const vkt_tokenizer *t, word_cache *c, const unsigned char *text,
                          size_t at, size_t len, uint16_t *out, size_t n) {
    if (len == 1) {
        out[n] = text[at];
        return 1;
    }
    cache_entry *e = NULL;
    uint32_t hash = 0;
    if (c->slots && len <= SHORT_WORD) {
        hash = word_hash(text + at, len);
        e = cache_find(c, text, at, len, hash);
        if (e && e->len) {
            memcpy(out + n, out + e->out_at, e->ntok * sizeof *out);
            return e->ntok;
        }
    }
    for (size_t i = 0; i < len; i++) out[n + i] = text[at + i];
    size_t ntok = len <= SHORT_WORD ? merge_short(t, out + n, len) : merge_long(t, out + n, len);
    if (e && c->used < c->mask / 4 * 3) { /* keep probes short: stop filling at 3/4 */
        *e = (cache_entry){.hash = hash, .len = (uint32_t)len, .text_at = at, .out_at = n,
                           .ntok = ntok};
        c->used++;
    }
    return ntok;
}

size_t vkt_bpe_encode(const vkt_tokenizer *t, const unsigned char *text, size_t len,
                      uint16_t *out) {
    word_cache cache;
    cache_init(&cache, len);
    size_t n = 0;
    for (size_t s = 0; s < len;) {
        size_t e = vkt_bpe_word_end(text, len, s);
        n += encode_word(t, &cache, text, s, e - s, out, n);
        s = e;
    }
    free(cache.slots);
    return n;
}
