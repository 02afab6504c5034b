/* Loading token arrays: llm.c shards as they are, text through the byte tokenizer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fs.h"
#include "util/rng.h"
#include "vktrain/data.h"

static int parse_shard(const char *path, const unsigned char *data, size_t len, vkt_tokens *out,
                       char *err, size_t errlen) {
    int32_t header[256];
    if (len < sizeof header) {
        snprintf(err, errlen, "%s: token shard is truncated: %zu bytes, the header alone is 1024",
                 path, len);
        return 2;
    }
    memcpy(header, data, sizeof header);
    if (header[1] != VKT_SHARD_VERSION) {
        snprintf(err, errlen, "%s: token shard version %d, expected %d", path, header[1],
                 VKT_SHARD_VERSION);
        return 2;
    }
    if (header[2] < 0 || len - sizeof header < (size_t)header[2] * 2) {
        snprintf(err, errlen,
                 "%s: token shard is truncated: header says %d tokens, the body holds %zu", path,
                 header[2], (len - sizeof header) / 2);
        return 2;
    }
    out->n = (size_t)header[2];
    out->ids = malloc(out->n * sizeof(uint16_t) + 1);
    if (!out->ids) {
        snprintf(err, errlen, "%s: out of memory", path);
        return 1;
    }
    memcpy(out->ids, data + sizeof header, out->n * sizeof(uint16_t));
    return 0;
}

int vkt_tokens_load(const char *path, int vocab_size, vkt_tokens *out, char *err, size_t errlen) {
    unsigned char *data;
    size_t len;
    memset(out, 0, sizeof *out);
    int rc = vkt_read_file(path, &data, &len, err, errlen);
    if (rc) return rc;
    int32_t magic = 0;
    if (len >= 4) memcpy(&magic, data, 4);
    if (magic == VKT_SHARD_MAGIC) {
        rc = parse_shard(path, data, len, out, err, errlen);
    } else {
        /* byte tokenizer: token = byte value */
        if (vocab_size < 256) {
            snprintf(err, errlen,
                     "%s: text with the byte tokenizer needs [model] vocab_size >= 256 (it is %d)",
                     path, vocab_size);
            rc = 2;
        } else {
            out->n = len;
            out->ids = malloc(len * sizeof(uint16_t) + 1);
            if (!out->ids) {
                snprintf(err, errlen, "%s: out of memory", path);
                rc = 1;
            } else {
                for (size_t i = 0; i < len; i++) out->ids[i] = data[i];
            }
        }
    }
    free(data);
    if (rc) return rc;
    if (out->n == 0) {
        snprintf(err, errlen, "%s: holds no tokens (empty file)", path);
        vkt_tokens_free(out);
        return 2;
    }
    for (size_t i = 0; i < out->n; i++) {
        if (out->ids[i] >= vocab_size) {
            snprintf(err, errlen,
                     "%s: token %u at position %zu is >= [model] vocab_size = %d. HINT: set "
                     "vocab_size to the tokenizer's vocabulary",
                     path, out->ids[i], i, vocab_size);
            vkt_tokens_free(out);
            return 2;
        }
    }
    return 0;
}

int vkt_tokens_split(vkt_tokens *t, double fraction, vkt_tokens *val, char *err, size_t errlen) {
    size_t nval = (size_t)(t->n * fraction);
    val->n = nval;
    val->ids = malloc(nval * sizeof(uint16_t) + 1);
    if (!val->ids) {
        snprintf(err, errlen, "out of memory splitting the validation set");
        return 1;
    }
    memcpy(val->ids, t->ids + (t->n - nval), nval * sizeof(uint16_t));
    t->n -= nval;
    return 0;
}

void vkt_tokens_free(vkt_tokens *t) {
    free(t->ids);
    t->ids = NULL;
    t->n = 0;
}

void vkt_loader_init(vkt_loader *l, const vkt_tokens *tokens, uint64_t seed) {
    l->tokens = tokens;
    l->state.rng = seed;
    l->state.batches = 0;
}

static void window(const vkt_tokens *t, size_t start, int T, int32_t *in, int32_t *tg) {
    for (int i = 0; i < T; i++) {
        in[i] = t->ids[start + i];
        tg[i] = t->ids[start + i + 1];
    }
}

void vkt_loader_next(vkt_loader *l, int B, int T, int32_t *inputs, int32_t *targets) {
    vkt_rng rng = {l->state.rng};
    size_t span = l->tokens->n - (size_t)T; /* valid starts: [0, n - T - 1] */
    for (int b = 0; b < B; b++)
        window(l->tokens, vkt_rng_below(&rng, span), T, inputs + (size_t)b * T,
               targets + (size_t)b * T);
    l->state.rng = rng.state;
    l->state.batches++;
}

void vkt_loader_eval_batch(const vkt_tokens *tokens, int i, int B, int T, int32_t *inputs,
                           int32_t *targets) {
    size_t span = tokens->n - (size_t)T;
    for (int b = 0; b < B; b++) {
        size_t start = ((size_t)i * B + b) * (size_t)T % span;
        window(tokens, start, T, inputs + (size_t)b * T, targets + (size_t)b * T);
    }
}
