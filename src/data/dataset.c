/* The data set of a config: classifies [data] train and val (text, prepared directory, shard,
 * glob of shards), prepares text through the cache, maps the shards, holds out validation
 * tokens and checks every token against the model's vocabulary. */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fs.h"

#include "vktrain/data.h"

typedef enum { SRC_NONE, SRC_TEXT, SRC_DIR, SRC_SHARDS } source_kind;

static source_kind classify(const char *path) {
    if (!path[0]) return SRC_NONE;
    if (strpbrk(path, "*?[")) return SRC_SHARDS;
    struct stat st;
    if (stat(path, &st) != 0) st.st_size = 0;
    else if (S_ISDIR(st.st_mode)) return SRC_DIR;
    int32_t h[3] = {0};
    /* only a regular file is peeked at: open() on a FIFO would block. Anything else is
     * classified by its name, and its reader refuses it ("not a regular file"). */
    char why[8];
    int fd = st.st_size > 0 && S_ISREG(st.st_mode) ? vkt_open_regular(path, NULL, why, sizeof why) : -1;
    if (fd >= 0) {
        if (read(fd, h, sizeof h) != (ssize_t)sizeof h) h[0] = 0;
        close(fd);
    }
    /* What is meant as binary token data goes to the shard reader, which names what is wrong
     * with it (a damaged magic, an llm.c model file) instead of training on its bytes as text:
     * a .bin name, or a header that fits the file but for its magic. */
    size_t n = strlen(path);
    int bin_name = n > 4 && !strcmp(path + n - 4, ".bin");
    int shard_like = h[1] == VKT_SHARD_VERSION && h[2] > 0 &&
                     (off_t)VKT_SHARD_HEADER_BYTES + 2 * (off_t)h[2] == st.st_size;
    if (h[0] == VKT_SHARD_MAGIC || h[0] == VKT_LLMC_MODEL_MAGIC || bin_name || shard_like)
        return SRC_SHARDS;
    return SRC_TEXT;
}

int vkt_data_is_text(const char *path) { return classify(path) == SRC_TEXT; }

/* Maps one more shard into d; its tokens become a span of view. */
static int add_shard(vkt_data *d, vkt_token_view *view, const char *path, char *err,
                     size_t errlen) {
    vkt_shard *sh = realloc(d->shards, (size_t)(d->n_shards + 1) * sizeof *sh);
    if (!sh) goto oom;
    d->shards = sh;
    vkt_span *sp = realloc(view->spans, (size_t)(view->n_spans + 1) * sizeof *sp);
    if (!sp) goto oom;
    view->spans = sp;
    int rc = vkt_shard_open(path, &d->shards[d->n_shards], err, errlen);
    if (rc) return rc;
    vkt_shard *s = &d->shards[d->n_shards++];
    view->spans[view->n_spans++] = (vkt_span){s->ids, s->n};
    view->n_tokens += s->n;
    return 0;
oom:
    snprintf(err, errlen, "%s: out of host memory", path);
    return 1;
}

static int open_glob(vkt_data *d, vkt_token_view *view, const char *pattern, char *err,
                     size_t errlen) {
    glob_t g;
    if (glob(pattern, 0, NULL, &g) != 0) { /* sorted: shard 000 comes before shard 001 */
        snprintf(err, errlen, "%s: no file matches the pattern", pattern);
        globfree(&g);
        return 2;
    }
    int rc = 0;
    for (size_t i = 0; i < g.gl_pathc && !rc; i++) rc = add_shard(d, view, g.gl_pathv[i], err,
                                                                  errlen);
    globfree(&g);
    return rc;
}

/* Loads dir/tokenizer.bin and checks it is the one the shards were made with. */
static vkt_tokenizer *prepared_tokenizer(const char *dir, const vkt_prepared *m, char *err,
                                         size_t errlen) {
    char path[VKT_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/tokenizer.bin", dir);
    vkt_tokenizer *t = vkt_tokenizer_load(path, err, errlen);
    if (t && vkt_tokenizer_fingerprint(t) != m->fingerprint) {
        snprintf(err, errlen,
                 "%s: does not match the shards of %s (they were prepared with another "
                 "tokenizer). HINT: prepare the directory again",
                 path, dir);
        vkt_tokenizer_free(t);
        return NULL;
    }
    return t;
}

/* Opens the split ("train" or "val") of a prepared directory; its tokenizer into *tok unless
 * tok is NULL (then it is only checked). */
static int open_prepared(vkt_data *d, vkt_token_view *view, const char *dir, const char *split,
                         vkt_tokenizer **tok, char *err, size_t errlen) {
    vkt_prepared m;
    int rc = vkt_prepared_read(dir, &m, err, errlen);
    if (rc) return rc;
    vkt_tokenizer *t = prepared_tokenizer(dir, &m, err, errlen);
    if (!t) return 2;
    if (tok) *tok = t;
    else vkt_tokenizer_free(t);
    int n = strcmp(split, "train") ? m.val_shards : m.train_shards;
    uint64_t want = strcmp(split, "train") ? m.val_tokens : m.train_tokens;
    size_t before = view->n_tokens;
    char path[VKT_PATH_MAX + 64];
    for (int i = 0; i < n; i++) {
        vkt_prepared_shard_path(path, sizeof path, dir, split, i);
        if ((rc = add_shard(d, view, path, err, errlen))) return rc;
    }
    if (view->n_tokens - before != want) {
        snprintf(err, errlen, "%s/%s: its %s shards hold %zu tokens, the manifest says %llu",
                 dir, VKT_PREPARED_MANIFEST, split, view->n_tokens - before,
                 (unsigned long long)want);
        return 2;
    }
    return 0;
}

/* Moves the last `fraction` of train's tokens into val (views only: no copy). */
static int split_tail(vkt_token_view *train, vkt_token_view *val, double fraction, char *err,
                      size_t errlen) {
    size_t want = (size_t)(train->n_tokens * fraction);
    if (want == 0) return 0;
    val->spans = calloc((size_t)train->n_spans, sizeof *val->spans);
    if (!val->spans) {
        snprintf(err, errlen, "out of host memory");
        return 1;
    }
    snprintf(val->name, sizeof val->name, "%s", train->name);
    size_t left = want;
    for (int i = train->n_spans - 1; i >= 0 && left > 0; i--) {
        vkt_span *s = &train->spans[i];
        size_t take = s->n < left ? s->n : left;
        s->n -= take;
        left -= take;
        val->spans[val->n_spans++] = (vkt_span){s->ids + s->n, take};
    }
    /* taken from the back: put the val spans back into file order */
    for (int a = 0, b = val->n_spans - 1; a < b; a++, b--) {
        vkt_span t = val->spans[a];
        val->spans[a] = val->spans[b];
        val->spans[b] = t;
    }
    while (train->n_spans > 0 && train->spans[train->n_spans - 1].n == 0) train->n_spans--;
    train->n_tokens -= want;
    val->n_tokens = want;
    return 0;
}

/* Every token id must be < vocab: a model indexes its embedding table with them. */
static int check_vocab(const vkt_token_view *v, int vocab, const char *key, char *err,
                       size_t errlen) {
    for (int i = 0; i < v->n_spans; i++) {
        const vkt_span *s = &v->spans[i];
        uint16_t max = 0;
        for (size_t j = 0; j < s->n; j++) max = s->ids[j] > max ? s->ids[j] : max;
        if (max < vocab) continue;
        size_t j = 0;
        while (s->ids[j] < vocab) j++;
        snprintf(err, errlen,
                 "%s ([data] %s): token %u at position %zu of span %d is >= [model] vocab_size "
                 "= %d. HINT: set vocab_size to the tokenizer's vocabulary (50257 for GPT-2 "
                 "tokens)",
                 v->name, key, s->ids[j], j, i, vocab);
        return 2;
    }
    return 0;
}

/* Opens one source (train or val) into view. */
static int open_source(vkt_data *d, vkt_token_view *view, source_kind kind, const char *path,
                       const char *split, vkt_tokenizer **tok, char *err, size_t errlen) {
    snprintf(view->name, sizeof view->name, "%s", path);
    if (kind == SRC_DIR) return open_prepared(d, view, path, split, tok, err, errlen);
    return open_glob(d, view, path, err, errlen); /* a single shard is a pattern too */
}

static int same_tokenizer(const vkt_tokenizer *a, const vkt_tokenizer *b) {
    return !a || !b || vkt_tokenizer_fingerprint(a) == vkt_tokenizer_fingerprint(b);
}

int vkt_data_open(const vkt_config *cfg, vkt_data *d, char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    const char *train = cfg->data.train, *val = cfg->data.val;
    source_kind tk = classify(train), vk = classify(val);
    char entry[VKT_PATH_MAX + 64];
    int rc = 0;
    /* a FIFO or device named directly: refused before any other source is prepared */
    const char *named[2] = {train, val};
    for (int i = 0; i < 2; i++) {
        struct stat st;
        if (named[i][0] && !strpbrk(named[i], "*?[") && stat(named[i], &st) == 0 &&
            !S_ISDIR(st.st_mode) && (rc = vkt_check_regular_file(named[i], err, errlen)))
            return rc;
    }
    if (vk == SRC_TEXT && tk != SRC_TEXT) {
        snprintf(err, errlen,
                 "[data] val = %s is text but train is not: both must share a tokenizer. "
                 "HINT: vktrain prepare --val %s ... --out DIR, then train = DIR",
                 val, val);
        return 2;
    }
    if (tk == SRC_TEXT) {
        int hit;
        rc = vkt_data_cache_entry(cfg->backend.cache_dir, train, vk == SRC_TEXT ? val : NULL,
                                  cfg->data.tokenizer, cfg->model.vocab_size,
                                  vk == SRC_NONE ? cfg->data.val_fraction : 0, entry,
                                  sizeof entry, &hit, err, errlen);
        if (rc) return rc;
        rc = open_prepared(d, &d->train, entry, "train", &d->tokenizer, err, errlen);
        snprintf(d->train.name, sizeof d->train.name, "%s", train);
        if (!rc && vk != SRC_SHARDS && vk != SRC_DIR) {
            rc = open_prepared(d, &d->val, entry, "val", NULL, err, errlen);
            snprintf(d->val.name, sizeof d->val.name, "%s", vk == SRC_TEXT ? val : train);
        }
        snprintf(d->source, sizeof d->source, "%s tokens cached in %s", cfg->data.tokenizer,
                 entry);
    } else {
        rc = open_source(d, &d->train, tk, train, "train", &d->tokenizer, err, errlen);
        if (!rc && tk == SRC_DIR && vk == SRC_NONE)
            rc = open_source(d, &d->val, SRC_DIR, train, "val", NULL, err,
                             errlen);
        snprintf(d->source, sizeof d->source, "%s", train);
    }
    if (!rc && (vk == SRC_SHARDS || vk == SRC_DIR)) {
        vkt_tokenizer *vt = NULL;
        rc = open_source(d, &d->val, vk, val, "val", &vt, err, errlen);
        if (!rc && !same_tokenizer(d->tokenizer, vt)) {
            snprintf(err, errlen,
                     "[data] val = %s was prepared with another tokenizer than train = %s", val,
                     train);
            rc = 2;
        }
        vkt_tokenizer_free(vt);
    }
    if (!rc && d->val.n_tokens == 0 && vk == SRC_NONE && cfg->data.val_fraction > 0)
        rc = split_tail(&d->train, &d->val, cfg->data.val_fraction, err, errlen);
    if (!rc && d->tokenizer && vkt_tokenizer_vocab_size(d->tokenizer) > cfg->model.vocab_size) {
        snprintf(err, errlen,
                 "[model] vocab_size = %d is smaller than the %d tokens of the tokenizer of %s. "
                 "HINT: set vocab_size = %d",
                 cfg->model.vocab_size, vkt_tokenizer_vocab_size(d->tokenizer), train,
                 vkt_tokenizer_vocab_size(d->tokenizer));
        rc = 2;
    }
    if (!rc) rc = check_vocab(&d->train, cfg->model.vocab_size, "train", err, errlen);
    if (!rc) rc = check_vocab(&d->val, cfg->model.vocab_size, "val", err, errlen);
    if (rc) vkt_data_close(d);
    return rc;
}

void vkt_data_close(vkt_data *d) {
    for (int i = 0; i < d->n_shards; i++) vkt_shard_close(&d->shards[i]);
    free(d->shards);
    free(d->train.spans);
    free(d->val.spans);
    vkt_tokenizer_free(d->tokenizer);
    memset(d, 0, sizeof *d);
}
