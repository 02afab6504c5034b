/* Byte-level BPE training: count the pre-tokenizer's distinct words, then merge the most
 * frequent adjacent pair again and again, updating pair counts only in the words that hold
 * the merged pair (an index pair -> words, and a lazy max-heap of pair counts). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer_impl.h"
#include "util/hash.h"

typedef struct word {
    size_t at;       /* first symbol in trainer.sym (while counting: first byte in the text) */
    size_t len;      /* symbols, shrinking as merges apply */
    int64_t freq;    /* occurrences in the text */
    uint64_t hash;   /* of the bytes, while counting */
    int stamp;       /* the last merge that visited this word + 1 */
} word;

typedef struct pair {
    uint32_t key;    /* left << 16 | right */
    int64_t count;   /* weighted by word frequency */
    int32_t *words;  /* words that hold (or held) the pair; may repeat across merges */
    uint32_t nwords, cap;
} pair;

typedef struct heap_entry {
    int64_t count;   /* the pair's count when pushed; stale when it differs now */
    uint32_t key;
} heap_entry;

typedef struct trainer {
    word *words;
    int32_t nwords;
    uint16_t *sym;        /* every distinct word's symbols, end to end */
    pair *pairs;
    size_t npairs, cap_pairs;
    int32_t *slots;       /* open addressing: key -> index into pairs, -1 empty */
    size_t slot_mask;
    heap_entry *heap;
    size_t nheap, cap_heap;
    uint32_t *fresh;      /* pairs the current merge created (all hold its new token) */
    size_t nfresh, cap_fresh;
    int oom;
} trainer;

/* Grows *p (elements of size sz) to hold need; sets oom on failure. */
static int grow(trainer *tr, void **p, size_t *cap, size_t need, size_t sz) {
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need) n *= 2;
    void *q = realloc(*p, n * sz);
    if (!q) {
        tr->oom = 1;
        return -1;
    }
    *p = q;
    *cap = n;
    return 0;
}

/* ---- counting words ------------------------------------------------------------------------- */

/* Distinct words of >= 2 bytes (one byte has no pair to merge), in order of first appearance,
 * each with its frequency; then their bytes become symbols. */
static int count_words(trainer *tr, const unsigned char *text, size_t len) {
    size_t cap_words = 0, mask = 1023;
    int32_t *table = malloc((mask + 1) * sizeof *table);
    if (!table) return -1;
    memset(table, 0xFF, (mask + 1) * sizeof *table);
    for (size_t s = 0, e; s < len; s = e) {
        e = vkt_bpe_word_end(text, len, s);
        if (e - s < 2) continue;
        uint64_t h = vkt_hash64(text + s, e - s);
        size_t i = h & mask;
        for (; table[i] >= 0; i = (i + 1) & mask) {
            word *w = &tr->words[table[i]];
            if (w->hash == h && w->len == e - s && !memcmp(text + w->at, text + s, e - s)) break;
        }
        if (table[i] >= 0) {
            tr->words[table[i]].freq++;
            continue;
        }
        if (tr->nwords == INT32_MAX ||
            grow(tr, (void **)&tr->words, &cap_words, (size_t)tr->nwords + 1, sizeof(word)))
            goto fail;
        tr->words[tr->nwords] = (word){.at = s, .len = e - s, .freq = 1, .hash = h};
        table[i] = tr->nwords++;
        if ((size_t)tr->nwords * 2 > mask) { /* rehash at half full */
            free(table);
            mask = mask * 2 + 1;
            if (!(table = malloc((mask + 1) * sizeof *table))) goto fail;
            memset(table, 0xFF, (mask + 1) * sizeof *table);
            for (int32_t k = 0; k < tr->nwords; k++) {
                size_t j = tr->words[k].hash & mask;
                while (table[j] >= 0) j = (j + 1) & mask;
                table[j] = k;
            }
        }
    }
    free(table);
    size_t total = 0;
    for (int32_t k = 0; k < tr->nwords; k++) total += tr->words[k].len;
    if (!(tr->sym = malloc(total * sizeof *tr->sym + 1))) return -1;
    size_t at = 0;
    for (int32_t k = 0; k < tr->nwords; k++) {
        word *w = &tr->words[k];
        for (size_t i = 0; i < w->len; i++) tr->sym[at + i] = text[w->at + i];
        w->at = at;
        at += w->len;
    }
    return 0;
fail:
    free(table);
    return -1;
}

/* ---- pairs ---------------------------------------------------------------------------------- */

static size_t slot_of(uint32_t key, size_t mask) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

/* The index of key's pair, creating it (count 0) when absent; -1 when out of memory. */
static int64_t pair_index(trainer *tr, uint32_t key) {
    size_t i = slot_of(key, tr->slot_mask);
    for (; tr->slots[i] >= 0; i = (i + 1) & tr->slot_mask)
        if (tr->pairs[tr->slots[i]].key == key) return tr->slots[i];
    if (tr->npairs == INT32_MAX ||
        grow(tr, (void **)&tr->pairs, &tr->cap_pairs, tr->npairs + 1, sizeof(pair)))
        return -1;
    if (grow(tr, (void **)&tr->fresh, &tr->cap_fresh, tr->nfresh + 1, sizeof(uint32_t)))
        return -1;
    tr->pairs[tr->npairs] = (pair){.key = key};
    tr->fresh[tr->nfresh++] = key;
    tr->slots[i] = (int32_t)tr->npairs++;
    if (tr->npairs * 2 > tr->slot_mask) { /* rehash at half full */
        size_t mask = tr->slot_mask * 2 + 1;
        int32_t *slots = malloc((mask + 1) * sizeof *slots);
        if (!slots) {
            tr->oom = 1;
            return -1;
        }
        memset(slots, 0xFF, (mask + 1) * sizeof *slots);
        for (size_t k = 0; k < tr->npairs; k++) {
            size_t j = slot_of(tr->pairs[k].key, mask);
            while (slots[j] >= 0) j = (j + 1) & mask;
            slots[j] = (int32_t)k;
        }
        free(tr->slots);
        tr->slots = slots;
        tr->slot_mask = mask;
    }
    return (int64_t)tr->npairs - 1;
}

/* count(left, right) += delta; a pair that gains records word w in its index. */
static void pair_add(trainer *tr, uint32_t left, uint32_t right, int64_t delta, int32_t w) {
    int64_t k = pair_index(tr, vkt_bpe_pair_key(left, right));
    if (k < 0) return;
    pair *p = &tr->pairs[k];
    p->count += delta;
    if (delta > 0 && (p->nwords == 0 || p->words[p->nwords - 1] != w)) {
        size_t cap = p->cap;
        if (grow(tr, (void **)&p->words, &cap, (size_t)p->nwords + 1, sizeof(int32_t))) return;
        p->cap = (uint32_t)cap;
        p->words[p->nwords++] = w;
    }
}

/* ---- the heap: highest count first, ties to the smaller (left, right) ----------------------- */

static int heap_before(heap_entry a, heap_entry b) {
    return a.count > b.count || (a.count == b.count && a.key < b.key);
}

static void heap_push(trainer *tr, heap_entry v) {
    if (grow(tr, (void **)&tr->heap, &tr->cap_heap, tr->nheap + 1, sizeof v)) return;
    size_t i = tr->nheap++;
    for (; i > 0 && heap_before(v, tr->heap[(i - 1) / 2]); i = (i - 1) / 2)
        tr->heap[i] = tr->heap[(i - 1) / 2];
    tr->heap[i] = v;
}

static heap_entry heap_pop(trainer *tr) {
    heap_entry top = tr->heap[0], last = tr->heap[--tr->nheap];
    size_t i = 0, n = tr->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_before(tr->heap[c + 1], tr->heap[c])) c++;
        if (!heap_before(tr->heap[c], last)) break;
        tr->heap[i] = tr->heap[c];
        i = c;
    }
    tr->heap[i] = last;
    return top;
}

/* Pushes the pairs created since the last call, with their final counts. */
static void push_fresh(trainer *tr) {
    for (size_t i = 0; i < tr->nfresh; i++) {
        pair *p = &tr->pairs[pair_index(tr, tr->fresh[i])];
        if (p->count > 0) heap_push(tr, (heap_entry){p->count, p->key});
    }
    tr->nfresh = 0;
}

/* The most frequent pair. A pair's count only falls once pushed (a merge creates only pairs
 * holding its new token, pushed when the merge is done), so an entry whose count is stale
 * overstates it: pushed again with the true count, it finds its place. */
static int best_pair(trainer *tr, heap_entry *best) {
    while (tr->nheap) {
        heap_entry e = heap_pop(tr);
        int64_t now = tr->pairs[pair_index(tr, e.key)].count;
        if (now == e.count) {
            *best = e;
            return 1;
        }
        if (now > 0) heap_push(tr, (heap_entry){now, e.key});
    }
    return 0;
}

/* ---- merging -------------------------------------------------------------------------------- */

/* Replaces (a, b) by x in word w, left to right without overlap, moving the counts of the
 * neighbouring pairs: (prev, a) becomes (prev, x) and (b, next) becomes (x, next). */
static void merge_in_word(trainer *tr, int32_t w, uint16_t a, uint16_t b, uint16_t x) {
    word *wd = &tr->words[w];
    uint16_t *s = tr->sym + wd->at;
    size_t n = wd->len, j = 0, hits = 0;
    int64_t f = wd->freq;
    for (size_t i = 0; i < n;) {
        if (i + 1 < n && s[i] == a && s[i + 1] == b) {
            if (j > 0) { /* s[j - 1] is already the merged output: its pair follows along */
                pair_add(tr, s[j - 1], a, -f, w);
                pair_add(tr, s[j - 1], x, f, w);
            }
            if (i + 2 < n) {
                pair_add(tr, b, s[i + 2], -f, w);
                pair_add(tr, x, s[i + 2], f, w);
            }
            s[j++] = x;
            i += 2;
            hits++;
        } else {
            s[j++] = s[i++];
        }
    }
    wd->len = j;
    if (hits) pair_add(tr, a, b, -(int64_t)hits * f, w);
}

static void apply_merge(trainer *tr, uint16_t a, uint16_t b, uint16_t x, int stamp) {
    pair *p = &tr->pairs[pair_index(tr, vkt_bpe_pair_key(a, b))];
    int32_t *list = p->words; /* taken: merging grows the pair array under p */
    uint32_t nlist = p->nwords;
    p->words = NULL;
    p->nwords = p->cap = 0;
    for (uint32_t k = 0; k < nlist; k++) {
        word *wd = &tr->words[list[k]];
        if (wd->stamp == stamp) continue; /* listed twice */
        wd->stamp = stamp;
        merge_in_word(tr, list[k], a, b, x);
    }
    free(list);
    push_fresh(tr);
}

static void trainer_free(trainer *tr) {
    for (size_t i = 0; i < tr->npairs; i++) free(tr->pairs[i].words);
    free(tr->pairs);
    free(tr->slots);
    free(tr->words);
    free(tr->sym);
    free(tr->heap);
    free(tr->fresh);
}

/* Up to max_merges merges of pairs that occur at least twice; NULL when out of memory. */
static uint16_t *learn_merges(const unsigned char *text, size_t len, int max_merges,
                              int *n_merges) {
    trainer tr = {0};
    uint16_t *merges = malloc(4 * (size_t)max_merges + 1);
    tr.slot_mask = 4095;
    tr.slots = malloc((tr.slot_mask + 1) * sizeof *tr.slots);
    if (!merges || !tr.slots || count_words(&tr, text, len) != 0) goto fail;
    memset(tr.slots, 0xFF, (tr.slot_mask + 1) * sizeof *tr.slots);
    for (int32_t w = 0; w < tr.nwords; w++) {
        const uint16_t *s = tr.sym + tr.words[w].at;
        for (size_t i = 0; i + 1 < tr.words[w].len; i++)
            pair_add(&tr, s[i], s[i + 1], tr.words[w].freq, w);
    }
    push_fresh(&tr);
    int m = 0;
    heap_entry best;
    while (m < max_merges && !tr.oom && best_pair(&tr, &best) && best.count >= 2) {
        uint16_t a = (uint16_t)(best.key >> 16), b = (uint16_t)(best.key & 0xFFFF);
        merges[2 * m] = a;
        merges[2 * m + 1] = b;
        apply_merge(&tr, a, b, (uint16_t)(256 + m), m + 1);
        m++;
    }
    if (tr.oom) goto fail;
    trainer_free(&tr);
    *n_merges = m;
    return merges;
fail:
    trainer_free(&tr);
    free(merges);
    return NULL;
}

/* The texts are concatenated first (a copy when there are several), so a word may span two
 * of them, as the interface promises. */
vkt_tokenizer *vkt_tokenizer_train_bpe(const unsigned char *const *texts, const size_t *lens,
                                       int n, int vocab_size, char *err, size_t errlen) {
    if (vocab_size < VKT_BPE_MIN_VOCAB || vocab_size > VKT_BPE_MAX_VOCAB) {
        snprintf(err, errlen, "BPE training: vocab size %d is outside [%d, %d]", vocab_size,
                 VKT_BPE_MIN_VOCAB, VKT_BPE_MAX_VOCAB);
        return NULL;
    }
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (!texts || !lens || (!texts[i] && lens[i])) {
            snprintf(err, errlen, "BPE training: text %d is missing (NULL)", i);
            return NULL;
        }
        total += lens[i];
    }
    const unsigned char *text = n == 1 ? texts[0] : NULL;
    unsigned char *joined = NULL;
    if (n > 1 && !(text = joined = malloc(total + 1))) {
        snprintf(err, errlen, "BPE training: out of memory joining %zu bytes of text", total);
        return NULL;
    }
    for (size_t i = 0, at = 0; n > 1 && i < (size_t)n; at += lens[i], i++)
        if (lens[i]) memcpy(joined + at, texts[i], lens[i]);
    int n_merges = 0;
    uint16_t *merges = learn_merges(text, total, vocab_size - 256, &n_merges);
    free(joined);
    if (!merges) {
        snprintf(err, errlen, "BPE training: out of memory");
        return NULL;
    }
    return vkt_tokenizer_from_merges(merges, n_merges, "BPE training", err, errlen);
}
