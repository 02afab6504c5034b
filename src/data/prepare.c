/* prepare: text files -> tokenizer + train/val token shards in a directory (layout in
 * data.h). Everything is built in a temporary directory beside the target and renamed into
 * place at the end, so an interrupted or failed prepare never leaves a directory that looks
 * complete. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fs.h"
#include "util/progress.h"
#include "vktrain/data.h"

/* ---- inputs --------------------------------------------------------------------------------- */

typedef struct input {
    const char *path;
    const unsigned char *data; /* mapped read-only */
    size_t len;
} input;

static int map_input(input *in, const char *path, char *err, size_t errlen) {
    in->path = path;
    int rc = vkt_map_file(path, POSIX_MADV_SEQUENTIAL, (const void **)&in->data, &in->len, err,
                          errlen);
    if (!rc && in->len == 0) {
        snprintf(err, errlen, "%s: is empty: nothing to tokenize", path);
        rc = 2;
    }
    return rc;
}

static void unmap_inputs(input *in, int n) {
    for (int i = 0; i < n; i++) vkt_unmap_file(in[i].data, in[i].len);
}

/* A piece of one input that goes to one split. */
typedef struct piece {
    const unsigned char *data;
    size_t len;
} piece;

typedef struct plan {
    piece *train, *val;
    int n_train, n_val;
    size_t train_bytes, val_bytes;
} plan;

/* Without explicit validation inputs, the last val_fraction of the concatenated bytes is
 * validation data; the cut lands on a word start so both sides encode as the whole would. */
static void split_inputs(const input *in, int n, double fraction, const vkt_tokenizer *tok,
                         plan *p) {
    size_t total = 0;
    for (int i = 0; i < n; i++) total += in[i].len;
    size_t cut = (size_t)(total * (1.0 - fraction)); /* in concatenated bytes */
    for (int i = 0; i < n; i++) {
        if (cut >= in[i].len) { /* wholly train (also when fraction is 0) */
            p->train[p->n_train++] = (piece){in[i].data, in[i].len};
            cut -= in[i].len;
            continue;
        }
        size_t at = tok ? vkt_tokenizer_safe_cut(tok, in[i].data, in[i].len, cut) : cut;
        if (at > 0) p->train[p->n_train++] = (piece){in[i].data, at};
        if (at < in[i].len) p->val[p->n_val++] = (piece){in[i].data + at, in[i].len - at};
        cut = 0;
    }
    for (int i = 0; i < p->n_train; i++) p->train_bytes += p->train[i].len;
    for (int i = 0; i < p->n_val; i++) p->val_bytes += p->val[i].len;
}

/* ---- shard output --------------------------------------------------------------------------- */

/* Collects tokens and writes a shard each time shard_tokens are full. */
typedef struct shard_out {
    const char *dir, *split;
    uint16_t *buf;
    size_t n, cap, limit;
    int shards;
    uint64_t tokens;
} shard_out;

static int flush_shard(shard_out *o, char *err, size_t errlen) {
    if (o->n == 0) return 0;
    char path[VKT_PATH_MAX + 64];
    vkt_prepared_shard_path(path, sizeof path, o->dir, o->split, o->shards);
    int rc = vkt_shard_write(path, o->buf, o->n, err, errlen);
    if (rc) return rc;
    o->shards++;
    o->tokens += o->n;
    o->n = 0;
    return 0;
}

static int emit(shard_out *o, const uint16_t *ids, size_t n, char *err, size_t errlen) {
    while (n > 0) {
        if (o->n == o->cap) { /* grow towards the shard limit */
            size_t cap = o->cap ? o->cap * 2 : 1 << 20;
            if (cap > o->limit) cap = o->limit;
            uint16_t *b = realloc(o->buf, cap * sizeof *b);
            if (!b) {
                snprintf(err, errlen, "out of host memory for a shard of %zu tokens", cap);
                return 1;
            }
            o->buf = b;
            o->cap = cap;
        }
        size_t take = o->cap - o->n < n ? o->cap - o->n : n;
        memcpy(o->buf + o->n, ids, take * sizeof *ids);
        o->n += take;
        ids += take;
        n -= take;
        if (o->n == o->limit) {
            int rc = flush_shard(o, err, errlen);
            if (rc) return rc;
        }
    }
    return 0;
}

#define CHUNK_BYTES (4u << 20)

/* Encodes pieces in chunks cut at word starts (so chunking never changes the tokens). */
static int encode_pieces(const vkt_tokenizer *tok, const piece *pc, int n, shard_out *o,
                         vkt_progress *prog, double *done, char *err, size_t errlen) {
    uint16_t *ids = malloc((CHUNK_BYTES + 64) * sizeof *ids);
    if (!ids) {
        snprintf(err, errlen, "out of host memory");
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        size_t pos = 0;
        while (pos < pc[i].len && !rc) {
            size_t end = pc[i].len;
            if (end - pos > CHUNK_BYTES) {
                end = vkt_tokenizer_safe_cut(tok, pc[i].data, pc[i].len, pos + CHUNK_BYTES / 2);
                if (end - pos > CHUNK_BYTES) end = pos + CHUNK_BYTES; /* one giant word */
            }
            size_t k = vkt_tokenizer_encode(tok, pc[i].data + pos, end - pos, ids);
            rc = emit(o, ids, k, err, errlen);
            *done += (double)(end - pos);
            vkt_progress_update(prog, *done);
            pos = end;
        }
    }
    if (!rc) rc = flush_shard(o, err, errlen);
    free(ids);
    free(o->buf);
    o->buf = NULL;
    return rc;
}

/* ---- the output directory ------------------------------------------------------------------- */

/* What prepare writes, and so the only things --force or a clean-up ever removes: manifest.ini,
 * tokenizer.bin, train_NNNNNN.bin and val_NNNNNN.bin (six digits or more, as %06d writes
 * them), and the "<one of those>.tmp.<pid>" of an atomic write a kill interrupted. */
static int digits(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return n > 0;
}

static int is_own_name(const char *name) {
    size_t n = strlen(name);
    const char *t = strstr(name, ".tmp."); /* an interrupted atomic write: the name before it */
    if (t && digits(t + 5, strlen(t + 5))) n = (size_t)(t - name);
    if ((n == strlen(VKT_PREPARED_MANIFEST) && !strncmp(name, VKT_PREPARED_MANIFEST, n)) ||
        (n == 13 && !strncmp(name, "tokenizer.bin", n)))
        return 1;
    size_t p = !strncmp(name, "train_", 6) ? 6 : !strncmp(name, "val_", 4) ? 4 : 0;
    return p && n >= p + 10 && !strncmp(name + n - 4, ".bin", 4) && digits(name + p, n - p - 4);
}

/* The first line of every manifest.ini prepare has written (prepared.c), in every version:
 * with the file names above, what tells prepare's output from a directory that merely holds a
 * file called manifest.ini. */
static const char SIGNATURE[] = "# written by vktrain prepare";

static int has_signature(const char *dir) {
    char path[VKT_PATH_MAX + 64], line[64] = "";
    snprintf(path, sizeof path, "%s/%s", dir, VKT_PREPARED_MANIFEST);
    FILE *f = vkt_file_exists(path) ? fopen(path, "r") : NULL;
    if (!f) return 0;
    int ok = fgets(line, sizeof line, f) && !strncmp(line, SIGNATURE, sizeof SIGNATURE - 1);
    fclose(f);
    return ok;
}

static int is_empty_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n == 0;
}

/* 0 when dir is prepare's output and nothing else: its manifest.ini starts with the signature
 * and every entry is a regular file with one of prepare's names (or dir is empty: nothing to
 * lose). Else 2, err naming the directory as `shown` and what in it prepare did not write. */
static int check_own_output(const char *dir, const char *shown, char *err, size_t errlen) {
    if (is_empty_dir(dir)) return 0;
    if (!has_signature(dir)) {
        snprintf(err, errlen,
                 "%s: is not a prepared data directory (no %s written by vktrain prepare); "
                 "refusing to replace it even with --force: nothing was changed. HINT: choose "
                 "another --out, or remove it yourself",
                 shown, VKT_PREPARED_MANIFEST);
        return 2;
    }
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "%s: cannot list: %s", shown, strerror(errno));
        return 2;
    }
    struct dirent *e;
    char path[VKT_PATH_MAX + 300];
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        int regular = lstat(path, &st) == 0 && S_ISREG(st.st_mode);
        if (regular && is_own_name(e->d_name)) continue;
        snprintf(err, errlen,
                 "%s: is not a prepared data directory as vktrain prepare writes it: it also "
                 "holds %s%s; refusing to replace it even with --force: nothing was changed. "
                 "HINT: move that out of it, choose another --out, or remove it yourself",
                 shown, e->d_name,
                 regular ? "" : S_ISDIR(st.st_mode) ? " (a directory)" : " (not a regular file)");
        rc = 2;
    }
    closedir(d);
    return rc;
}

/* Removes the files prepare writes from dir, then dir if that left it empty. 0 when dir is
 * gone; -1 when something else was in it (kept, with dir). */
static int remove_own(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    char path[VKT_PATH_MAX + 300];
    while ((e = readdir(d))) {
        if (!is_own_name(e->d_name)) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode)) unlink(path);
    }
    closedir(d);
    return rmdir(dir) == 0 ? 0 : -1;
}

/* Removes what killed prepares left beside out_dir: "<name>.tmp.<pid>" of processes that no
 * longer exist (a live pid may be a concurrent prepare of the same output: left alone). Only
 * prepare's own files go: a directory of the same name with anything else in it stays. */
static void remove_stale_temps(const char *parent, const char *name) {
    DIR *d = opendir(parent);
    if (!d) return;
    size_t nl = strlen(name);
    struct dirent *e;
    char path[VKT_PATH_MAX + 300];
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, name, nl) || strncmp(e->d_name + nl, ".tmp.", 5)) continue;
        char *end;
        long pid = strtol(e->d_name + nl + 5, &end, 10);
        if (*end || pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        snprintf(path, sizeof path, "%s/%s", parent, e->d_name);
        remove_own(path);
    }
    closedir(d);
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int check_opts(const vkt_prepare_opts *o, char *err, size_t errlen) {
    if (strcmp(o->tokenizer, "byte") && strcmp(o->tokenizer, "bpe")) {
        snprintf(err, errlen, "--tokenizer %s: accepted: byte, bpe", o->tokenizer);
        return 2;
    }
    if (!strcmp(o->tokenizer, "bpe") &&
        (o->vocab_size < VKT_BPE_MIN_VOCAB || o->vocab_size > VKT_BPE_MAX_VOCAB)) {
        snprintf(err, errlen, "--vocab-size %d: a BPE vocabulary has %d to %d tokens",
                 o->vocab_size, VKT_BPE_MIN_VOCAB, VKT_BPE_MAX_VOCAB);
        return 2;
    }
    if (!(o->val_fraction >= 0 && o->val_fraction < 1)) {
        snprintf(err, errlen, "--val-fraction %g: must be from 0 to below 1", o->val_fraction);
        return 2;
    }
    if (o->n_inputs < 1 || !o->out_dir || !o->out_dir[0]) {
        snprintf(err, errlen, "prepare needs --out DIR and at least one input file");
        return 2;
    }
    if (is_dir(o->out_dir) || vkt_file_exists(o->out_dir)) {
        if (!o->force) {
            snprintf(err, errlen, "%s: already exists. HINT: --force replaces it, or choose "
                     "another --out", o->out_dir);
            return 2;
        }
        if (!is_dir(o->out_dir)) {
            snprintf(err, errlen, "%s: exists and is not a prepared data directory (not a "
                     "directory); refusing to replace it even with --force", o->out_dir);
            return 2;
        }
        int rc = check_own_output(o->out_dir, o->out_dir, err, errlen);
        if (rc) return rc;
    }
    return 0;
}

/* Renames the finished temporary directory to out_dir. With --force an old out_dir is
 * renamed aside first and checked again there (it may have changed while we tokenized): still
 * prepare's own, it is removed; else it goes back and nothing is lost. */
static int publish(const char *tmp, const vkt_prepare_opts *o, char *err, size_t errlen) {
    char old[VKT_PATH_MAX + 32] = "";
    if (o->force && is_dir(o->out_dir)) {
        snprintf(old, sizeof old, "%s.old.%ld", o->out_dir, (long)getpid());
        if (rename(o->out_dir, old) != 0) {
            snprintf(err, errlen, "%s: cannot replace: %s", o->out_dir, strerror(errno));
            return 1;
        }
        if (check_own_output(old, o->out_dir, err, errlen)) {
            if (rename(old, o->out_dir) != 0) {
                size_t n = strlen(err);
                snprintf(err + n, errlen - n, " (it is now %s)", old);
            }
            return 2;
        }
    }
    if (rename(tmp, o->out_dir) != 0) {
        int e = errno;
        if (old[0]) rename(old, o->out_dir);
        snprintf(err, errlen, "%s: %s", o->out_dir,
                 e == EEXIST || e == ENOTEMPTY ? "appeared while preparing (another prepare?)"
                                               : strerror(e));
        return e == EEXIST || e == ENOTEMPTY ? 2 : 1;
    }
    if (old[0] && remove_own(old) != 0)
        fprintf(stderr, "prepare: warning: %s, the directory replaced, keeps what it still "
                "holds\n", old);
    return 0;
}

static vkt_tokenizer *make_tokenizer(const vkt_prepare_opts *o, const input *in, int n,
                                     char *err, size_t errlen) {
    if (!strcmp(o->tokenizer, "byte")) return vkt_tokenizer_byte();
    /* BPE learns from the training text only: inputs up to the byte where validation begins
     * (the exact cut, a word start, is decided later with the trained tokenizer) */
    const unsigned char **texts = malloc((size_t)n * sizeof *texts);
    size_t *lens = malloc((size_t)n * sizeof *lens);
    if (!texts || !lens) {
        free(texts), free(lens);
        snprintf(err, errlen, "out of host memory");
        return NULL;
    }
    size_t total = 0;
    for (int i = 0; i < n; i++) total += in[i].len;
    size_t left = o->n_val_inputs ? total : (size_t)(total * (1.0 - o->val_fraction));
    int k = 0;
    for (int i = 0; i < n && left > 0; i++, k++) {
        texts[k] = in[i].data;
        lens[k] = in[i].len < left ? in[i].len : left;
        left -= lens[k];
    }
    if (o->progress) fprintf(stderr, "prepare: training a %d-token BPE tokenizer...\n",
                             o->vocab_size);
    vkt_tokenizer *t = vkt_tokenizer_train_bpe(texts, lens, k, o->vocab_size, err, errlen);
    free(texts);
    free(lens);
    return t;
}

/* The work of prepare, into the fresh directory tmp. */
static int prepare_into(const char *tmp, const vkt_prepare_opts *o, input *in, input *vin,
                        char *err, size_t errlen) {
    vkt_tokenizer *tok = make_tokenizer(o, in, o->n_inputs, err, errlen);
    if (!tok) return 2;
    int n = o->n_inputs + o->n_val_inputs;
    plan p = {.train = calloc((size_t)n, sizeof(piece)), .val = calloc((size_t)n, sizeof(piece))};
    int rc = 0;
    if (!p.train || !p.val) {
        snprintf(err, errlen, "out of host memory");
        rc = 1;
        goto out;
    }
    if (o->n_val_inputs) {
        split_inputs(in, o->n_inputs, 0, tok, &p);
        plan v = {.train = p.val, .val = NULL};
        split_inputs(vin, o->n_val_inputs, 0, tok, &v);
        p.n_val = v.n_train;
        p.val_bytes = v.train_bytes;
    } else {
        split_inputs(in, o->n_inputs, o->val_fraction, tok, &p);
    }
    size_t limit = o->shard_tokens ? o->shard_tokens : VKT_DEFAULT_SHARD_TOKENS;
    if (limit > VKT_SHARD_MAX_TOKENS) limit = VKT_SHARD_MAX_TOKENS;
    shard_out tr = {.dir = tmp, .split = "train", .limit = limit};
    shard_out va = {.dir = tmp, .split = "val", .limit = limit};
    vkt_progress prog;
    vkt_progress_start(&prog, "prepare: tokenizing", (double)(p.train_bytes + p.val_bytes),
                       o->progress);
    double done = 0;
    rc = encode_pieces(tok, p.train, p.n_train, &tr, &prog, &done, err, errlen);
    if (!rc) rc = encode_pieces(tok, p.val, p.n_val, &va, &prog, &done, err, errlen);
    vkt_progress_end(&prog, done);
    char path[VKT_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/tokenizer.bin", tmp);
    if (!rc) rc = vkt_tokenizer_save(tok, path, err, errlen) ? 1 : 0;
    vkt_prepared m = {.vocab_size = vkt_tokenizer_vocab_size(tok),
                      .fingerprint = vkt_tokenizer_fingerprint(tok),
                      .train_shards = tr.shards, .val_shards = va.shards,
                      .train_tokens = tr.tokens, .val_tokens = va.tokens};
    snprintf(m.tokenizer, sizeof m.tokenizer, "%s", vkt_tokenizer_kind_name(tok));
    if (!rc) rc = vkt_prepared_write(tmp, &m, o->inputs, o->n_inputs, err, errlen);
    if (!rc && o->progress)
        fprintf(stderr,
                "prepare: %s tokenizer, vocab %d: %llu train tokens in %d shard%s, %llu val "
                "tokens in %d; %.2f bytes per token\n",
                vkt_tokenizer_kind_name(tok), vkt_tokenizer_vocab_size(tok),
                (unsigned long long)tr.tokens, tr.shards, tr.shards == 1 ? "" : "s",
                (unsigned long long)va.tokens, va.shards,
                (double)(p.train_bytes + p.val_bytes) / (double)(tr.tokens + va.tokens + !tr.tokens));
out:
    free(p.train);
    free(p.val);
    vkt_tokenizer_free(tok);
    return rc;
}

int vkt_prepare(const vkt_prepare_opts *opts, char *err, size_t errlen) {
    /* "out/" names the same directory as "out"; the temporary one must sit beside it */
    char out[VKT_PATH_MAX];
    snprintf(out, sizeof out, "%s", opts->out_dir ? opts->out_dir : "");
    for (size_t n = strlen(out); n > 1 && out[n - 1] == '/'; n--) out[n - 1] = 0;
    vkt_prepare_opts copy = *opts;
    copy.out_dir = out;
    const vkt_prepare_opts *o = &copy;
    int rc = check_opts(o, err, errlen);
    if (rc) return rc;
    input *in = calloc((size_t)(o->n_inputs + o->n_val_inputs), sizeof *in);
    if (!in) {
        snprintf(err, errlen, "out of host memory");
        return 1;
    }
    input *vin = in + o->n_inputs;
    for (int i = 0; i < o->n_inputs && !rc; i++) rc = map_input(&in[i], o->inputs[i], err, errlen);
    for (int i = 0; i < o->n_val_inputs && !rc; i++)
        rc = map_input(&vin[i], o->val_inputs[i], err, errlen);
    /* the temporary directory sits beside out_dir: same file system, so rename works */
    char tmp[VKT_PATH_MAX + 32], parent[VKT_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", o->out_dir, (long)getpid());
    snprintf(parent, sizeof parent, "%s", o->out_dir);
    char *slash = strrchr(parent, '/');
    const char *name = o->out_dir;
    if (!rc && slash && slash != parent) {
        *slash = 0;
        name = slash + 1;
        if (vkt_mkdirs(parent, err, errlen)) rc = 1;
    } else if (!slash) {
        snprintf(parent, sizeof parent, ".");
    } else {
        snprintf(parent, sizeof parent, "/");
        name = o->out_dir + 1;
    }
    if (!rc) remove_stale_temps(parent, name);
    if (!rc && mkdir(tmp, 0777) != 0) {
        snprintf(err, errlen, "%s: cannot create directory: %s", tmp, strerror(errno));
        rc = 1;
    } else if (!rc) {
        rc = prepare_into(tmp, o, in, vin, err, errlen);
        if (!rc) rc = publish(tmp, o, err, errlen);
        if (rc) remove_own(tmp);
    }
    unmap_inputs(in, o->n_inputs + o->n_val_inputs);
    free(in);
    return rc;
}
