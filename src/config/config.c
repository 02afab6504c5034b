/* The run configuration: one table of every key drives defaults, INI parsing, --set overrides,
 * validation, printing and the Markdown reference, so the five can never disagree. */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* realpath (XSI), getcwd, strcasecmp */
#endif

#include "vktrain/config.h"

#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <iniparser.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fs.h"
#include "util/text.h"

/* ---- the table ------------------------------------------------------------------------------ */

typedef enum {
    K_INT,    /* int, strict base-10 */
    K_U64,    /* unsigned long long, strict base-10, no sign */
    K_DOUBLE, /* finite double */
    K_STR,    /* char[size] */
    K_BOOL,   /* int 0/1 */
    K_ENUM,   /* int-sized C enum: index into choices */
    K_CHOICE, /* char[size] holding one of choices (room for more values later) */
} key_kind;

enum {
    F_MIN = 1 << 0,      /* min applies */
    F_MAX = 1 << 1,      /* max applies */
    F_MIN_EXCL = 1 << 2, /* min is exclusive (> instead of >=) */
    F_MAX_EXCL = 1 << 3, /* max is exclusive */
    F_INPUT = 1 << 4,    /* a file we read: resolved against the config's dir, must be readable */
    F_REQUIRED = 1 << 5, /* must not be empty */
    F_DEVICE = 1 << 6,   /* device selector syntax */
    F_CACHE = 1 << 7,    /* empty = the XDG cache dir */
    F_DATA = 1 << 8,     /* with F_INPUT: may also be a directory or a glob of shards */
    F_DEVICE_LIST = 1 << 9, /* empty, or comma-separated devices in the F_DEVICE syntax */
};

typedef struct {
    const char *section, *key;
    key_kind kind;
    size_t off, size; /* where in vkt_config; size bounds strings */
    const char *def;  /* default, as INI text: parsed by the same code as user values */
    double min, max;
    unsigned flags;
    const char *const *choices; /* K_ENUM / K_CHOICE, NULL-terminated */
    const char *planned, *planned_why; /* a value we will accept later, and why not yet */
    const char *doc;
} key_def;

#define FIELD(f) offsetof(vkt_config, f), sizeof(((vkt_config *)0)->f)

static const char *const tokenizers[] = {"byte", "bpe", NULL};
/* Order must match vkt_data_order: the index is stored. */
static const char *const orders[] = {"random", "sequential", NULL};
static const char *const precisions[] = {"fp32", "fp16", NULL};
static const char *const matmul_tiers[] = {"auto",        "fp32",    "fp32_direct", "fp16",
                                           "fp16_direct", "coopmat", NULL};
static const char *const attention_kernels[] = {"flash", "exact", NULL};
static const char *const optimizers[] = {"adamw", NULL};
static const char *const balances[] = {"even", "auto", NULL};
/* Order must match vkt_sched_kind: the index is stored. */
static const char *const schedules[] = {"cosine", "linear", "wsd", "constant", NULL};

_Static_assert(sizeof(vkt_sched_kind) == sizeof(int), "K_ENUM stores an int");

static const key_def keys[] = {
    {"model", "n_layer", K_INT, FIELD(model.n_layer), "4", 1, 0, F_MIN, NULL, NULL, NULL,
     "Number of transformer blocks."},
    {"model", "n_head", K_INT, FIELD(model.n_head), "4", 1, 0, F_MIN, NULL, NULL, NULL,
     "Attention heads per block; must divide n_embd."},
    {"model", "n_embd", K_INT, FIELD(model.n_embd), "128", 1, 0, F_MIN, NULL, NULL, NULL,
     "Embedding (channel) width."},
    {"model", "vocab_size", K_INT, FIELD(model.vocab_size), "256", 1, 65536, F_MIN | F_MAX, NULL,
     NULL, NULL, "Vocabulary size (tokens are stored as uint16)."},
    {"model", "block_size", K_INT, FIELD(model.block_size), "128", 1, 0, F_MIN, NULL, NULL, NULL,
     "Maximum context length (positional embeddings)."},
    {"model", "init_from", K_STR, FIELD(model.init_from), "", 0, 0, F_INPUT, NULL, NULL, NULL,
     "Start from these weights instead of a random init: a vktrain checkpoint, or an llm.c model "
     "file (gpt2_124M.bin etc.; its shape replaces the [model] shape keys). A relative path is "
     "resolved against the config file's directory (from --set: the current directory)."},

    {"data", "train", K_STR, FIELD(data.train), "", 0, 0, F_INPUT | F_DATA | F_REQUIRED, NULL,
     NULL, NULL,
     "Required: a text file (tokenized once into cache_dir), a directory written by `vktrain "
     "prepare`, an llm.c token shard, or a glob of shards such as data/fineweb_train_*.bin. A "
     "relative path is resolved against the config file's directory (from --set: the current "
     "directory)."},
    {"data", "val", K_STR, FIELD(data.val), "", 0, 0, F_INPUT | F_DATA, NULL, NULL, NULL,
     "Validation data, in the same forms as train; empty = the validation shards of a prepared "
     "train directory, else the last val_fraction of train."},
    {"data", "val_fraction", K_DOUBLE, FIELD(data.val_fraction), "0.1", 0, 0.5, F_MIN | F_MAX,
     NULL, NULL, NULL, "Share of train held out for validation when val is empty."},
    {"data", "tokenizer", K_CHOICE, FIELD(data.tokenizer), "byte", 0, 0, 0, tokenizers, NULL,
     NULL,
     "Tokenizer for text inputs: byte (vocab 256) or bpe (byte-level BPE trained on train with "
     "[model] vocab_size tokens)."},
    {"data", "order", K_ENUM, FIELD(data.order), "random", 0, 0, 0, orders, NULL, NULL,
     "random = each sequence starts at a random token (seeded); sequential = consecutive "
     "windows through the shards in order."},
    {"data", "prefetch", K_INT, FIELD(data.prefetch), "4", 0, 64, F_MIN | F_MAX, NULL, NULL, NULL,
     "Batches a background thread prepares ahead of training; 0 = none."},

    {"train", "batch_size", K_INT, FIELD(train.batch_size), "8", 1, 0, F_MIN, NULL, NULL, NULL,
     "Sequences per micro-batch."},
    {"train", "seq_len", K_INT, FIELD(train.seq_len), "128", 1, 0, F_MIN, NULL, NULL, NULL,
     "Tokens per sequence; at most model.block_size."},
    {"train", "grad_accum_steps", K_INT, FIELD(train.grad_accum_steps), "1", 1, 0, F_MIN, NULL,
     NULL, NULL, "Micro-batches accumulated per optimizer step."},
    {"train", "max_steps", K_INT, FIELD(train.max_steps), "1000", 1, 0, F_MIN, NULL, NULL, NULL,
     "Optimizer steps of the whole run; the LR schedule spans them."},
    {"train", "stop_step", K_INT, FIELD(train.stop_step), "0", 0, 0, F_MIN, NULL, NULL, NULL,
     "0 = run to max_steps; N (at most max_steps) = stop and checkpoint after step N while the "
     "LR schedule still spans max_steps (time-sliced runs)."},
    {"train", "eval_interval", K_INT, FIELD(train.eval_interval), "100", 0, 0, F_MIN, NULL, NULL,
     NULL, "Evaluate every N steps; 0 = only at the end."},
    {"train", "eval_batches", K_INT, FIELD(train.eval_batches), "10", 1, 0, F_MIN, NULL, NULL,
     NULL, "Validation batches per evaluation."},
    {"train", "checkpoint_interval", K_INT, FIELD(train.checkpoint_interval), "0", 0, 0, F_MIN,
     NULL, NULL, NULL, "Checkpoint every N steps; 0 = only at the end."},
    {"train", "out_dir", K_STR, FIELD(train.out_dir), "out", 0, 0, F_REQUIRED, NULL, NULL, NULL,
     "Directory for checkpoints and metrics.jsonl, relative to the current directory."},
    {"train", "seed", K_U64, FIELD(train.seed), "1337", 0, 0, 0, NULL, NULL, NULL,
     "Seed of init and data order."},
    {"train", "precision", K_CHOICE, FIELD(train.precision), "fp32", 0, 0, 0, precisions, NULL,
     NULL,
     "fp32, or fp16 mixed precision: matmul operands rounded to fp16 with fp32 accumulation, "
     "fp32 master weights and optimizer state, dynamic loss scaling."},
    {"train", "loss_scale_init", K_DOUBLE, FIELD(train.loss_scale_init), "65536", 1, 16777216,
     F_MIN | F_MAX, NULL, NULL, NULL,
     "fp16: the first loss scale. It halves on every step whose gradients overflow fp16 (the "
     "step is skipped) and doubles after loss_scale_window clean steps."},
    {"train", "loss_scale_window", K_INT, FIELD(train.loss_scale_window), "1000", 1, 0, F_MIN,
     NULL, NULL, NULL, "fp16: clean steps before the loss scale doubles."},
    {"train", "skip_outliers", K_DOUBLE, FIELD(train.skip_outliers), "0", 0, 0, F_MIN, NULL,
     NULL, NULL,
     "Outlier guard: z > 0 skips the update of a step whose loss or gradient norm is more than "
     "z standard deviations above its mean over the last 100 steps (active once 100 steps "
     "are in the window, so from step 101, and 100 steps after a resume); skipped steps are "
     "counted in metrics.jsonl and the progress line. 0 = off. On, the update waits for the "
     "host's decision and goes out with the next step's work (no extra round trip)."},
    {"train", "resume", K_BOOL, FIELD(train.resume), "false", 0, 0, 0, NULL, NULL, NULL,
     "Continue from the latest checkpoint in out_dir."},
    {"train", "log_interval", K_INT, FIELD(train.log_interval), "1", 1, 0, F_MIN, NULL, NULL,
     NULL, "Print a progress line every N steps."},

    {"optim", "name", K_CHOICE, FIELD(optim.name), "adamw", 0, 0, 0, optimizers, NULL, NULL,
     "Optimizer."},
    {"optim", "lr", K_DOUBLE, FIELD(optim.lr), "1e-3", 0, 0, F_MIN, NULL, NULL, NULL,
     "Peak learning rate."},
    {"optim", "min_lr", K_DOUBLE, FIELD(optim.min_lr), "1e-4", 0, 0, F_MIN, NULL, NULL, NULL,
     "Learning rate at the end of the decay; at most lr."},
    {"optim", "warmup_steps", K_INT, FIELD(optim.warmup_steps), "0", 0, 0, F_MIN, NULL, NULL, NULL,
     "Linear warmup steps; more than train.max_steps is allowed (the LR then never reaches lr: a short smoke run of a long config)."},
    {"optim", "schedule", K_ENUM, FIELD(optim.schedule), "cosine", 0, 0, 0, schedules, NULL, NULL,
     "LR schedule after warmup (wsd = warmup, stable, decay)."},
    {"optim", "decay_fraction", K_DOUBLE, FIELD(optim.decay_fraction), "0.2", 0, 1, F_MIN | F_MAX,
     NULL, NULL, NULL, "wsd: share of max_steps spent in the final decay."},
    {"optim", "weight_decay", K_DOUBLE, FIELD(optim.weight_decay), "0.1", 0, 0, F_MIN, NULL, NULL,
     NULL, "AdamW decoupled weight decay."},
    {"optim", "beta1", K_DOUBLE, FIELD(optim.beta1), "0.9", 0, 1, F_MIN | F_MAX | F_MAX_EXCL,
     NULL, NULL, NULL, "AdamW first-moment decay."},
    {"optim", "beta2", K_DOUBLE, FIELD(optim.beta2), "0.95", 0, 1, F_MIN | F_MAX | F_MAX_EXCL,
     NULL, NULL, NULL, "AdamW second-moment decay."},
    {"optim", "eps", K_DOUBLE, FIELD(optim.eps), "1e-8", 0, 0, F_MIN | F_MIN_EXCL, NULL, NULL,
     NULL, "AdamW epsilon."},
    {"optim", "grad_clip", K_DOUBLE, FIELD(optim.grad_clip), "1.0", 0, 0, F_MIN, NULL, NULL, NULL,
     "Clip the global gradient norm to this; 0 = off."},

    {"backend", "device", K_STR, FIELD(backend.device), "auto", 0, 0, F_DEVICE, NULL, NULL, NULL,
     "auto = the device with the highest estimated peak FLOP/s; N = index from --list-devices; "
     "backend:N such as cpu:0 or vulkan:1."},
    {"backend", "cache_dir", K_STR, FIELD(backend.cache_dir), "", 0, 0, F_CACHE, NULL, NULL, NULL,
     "Cache for prepared data and compiled kernels; empty = $XDG_CACHE_HOME/vktrain, else "
     "$HOME/.cache/vktrain. Relative to the current directory."},
    {"backend", "matmul", K_CHOICE, FIELD(backend.matmul), "auto", 0, 0, 0, matmul_tiers, NULL,
     NULL,
     "GEMM kernel tier (vulkan). auto = the fastest tier of the run's precision on the model's "
     "shapes (timed once per device, cached). fp32 = shared-memory tiles; fp32_direct = "
     "subgroup kernel without shared memory (CPU drivers); fp16, fp16_direct = the same with "
     "operands rounded to fp16; coopmat = cooperative matrices (tensor cores). fp16, "
     "fp16_direct and coopmat need precision = fp16. Other backends ignore it."},
    {"backend", "attention", K_CHOICE, FIELD(backend.attention), "flash", 0, 0, 0,
     attention_kernels, NULL, NULL,
     "Attention kernel (vulkan). flash = FlashAttention-2 tiles through shared memory; exact "
     "= the earlier thread-per-row kernel, a diagnostic. Other backends ignore it."},

    {"parallel", "devices", K_STR, FIELD(parallel.devices), "", 0, 0, F_DEVICE_LIST, NULL, NULL,
     NULL,
     "MPI runs (mpirun -np K): the device of each rank in order, e.g. cpu:0,vulkan:0,opencl:0 "
     "(at least K entries). Empty = rank r takes the r-th GPU of its machine (by local rank), "
     "or cpu:0 when there are fewer. A single-process run ignores it ([backend] device)."},
    {"parallel", "balance", K_CHOICE, FIELD(parallel.balance), "even", 0, 0, 0, balances, NULL,
     NULL,
     "MPI runs: how the global batch (batch_size x ranks sequences) is shared. even = "
     "batch_size each; auto = in proportion to each rank's measured throughput (timed over "
     "the first steps, re-split when a better split would make the step 10% faster), so a "
     "fast device takes more; a rank's share runs in micro-batches of at most batch_size."},
    {"parallel", "check_every", K_INT, FIELD(parallel.check_every), "100", 0, 0, F_MIN, NULL,
     NULL, NULL,
     "MPI runs: every N steps the ranks compare a hash of their parameters and stop, naming "
     "the first rank that differs, if they are not identical; 0 = never."},
};

#define NKEYS ((int)(sizeof keys / sizeof keys[0]))

static const char *const sections[] = {"model", "data", "train", "optim", "backend", "parallel"};
#define NSECTIONS ((int)(sizeof sections / sizeof sections[0]))

/* ---- small helpers -------------------------------------------------------------------------- */

static void *at(vkt_config *cfg, const key_def *k) { return (char *)cfg + k->off; }
static const void *cat(const vkt_config *cfg, const key_def *k) {
    return (const char *)cfg + k->off;
}

/* Zero-fills the tail so that two configs with equal values compare equal with memcmp. */
static int set_str(char *dst, size_t size, const char *s) {
    size_t n = strlen(s);
    if (n >= size) return -1;
    memset(dst, 0, size);
    memcpy(dst, s, n);
    return 0;
}

static void put(char *buf, size_t len, const char *fmt, ...) {
    if (!buf || !len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* ---- text hygiene: what a value or a file may hold, and how messages quote it -------------- */

/* iniparser 4.x reads a line into a 1024-byte buffer with fgets: at most 1022 characters and
 * the newline. Longer lines are an error, continued lines ("\" at the end) share the buffer. */
#define INI_LINE_BUF 1024
#define INI_MAX_LINE (INI_LINE_BUF - 2)
/* A config is a few KiB; anything this large is another kind of file given by mistake. */
#define CONFIG_MAX_BYTES (1 << 20)

/* Length of the valid UTF-8 sequence at p (n bytes left) and its code point, or 0 when the
 * bytes there are not valid UTF-8 (overlong forms, surrogates and > U+10FFFF included). */
static size_t utf8_seq(const unsigned char *p, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if ((p[0] & 0xE0) == 0xC0) len = 2, v = p[0] & 0x1F, min = 0x80;
    else if ((p[0] & 0xF0) == 0xE0) len = 3, v = p[0] & 0x0F, min = 0x800;
    else if ((p[0] & 0xF8) == 0xF0) len = 4, v = p[0] & 0x07, min = 0x10000;
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        v = v << 6 | (p[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

/* C0 controls, DEL and the C1 controls (which some terminals obey as escape sequences). */
static int is_control(uint32_t cp) { return cp < 0x20 || (cp >= 0x7F && cp < 0xA0); }

/* Copies n bytes of s into out (always terminated) with every control character, and every
 * byte that is not valid UTF-8, written as an escape (\n, \t, \x1b, \u009b): what a message
 * quotes from a file or an argument can never move the cursor or recolour the terminal. */
static void escape_text(const char *s, size_t n, char *out, size_t outlen) {
    if (!outlen) return;
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        uint32_t cp = 0;
        size_t l = utf8_seq(p + i, n - i, &cp);
        char esc[12];
        const char *piece = esc;
        size_t plen;
        if (l && !is_control(cp)) {
            piece = s + i;
            plen = l;
        } else {
            if (!l) snprintf(esc, sizeof esc, "\\x%02x", p[i]), l = 1;
            else if (cp == '\n') snprintf(esc, sizeof esc, "\\n");
            else if (cp == '\r') snprintf(esc, sizeof esc, "\\r");
            else if (cp == '\t') snprintf(esc, sizeof esc, "\\t");
            else if (cp < 0x80) snprintf(esc, sizeof esc, "\\x%02x", (unsigned)cp);
            else snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
            plen = strlen(esc);
        }
        if (o + plen >= outlen) break; /* truncated, never mid-sequence */
        memcpy(out + o, piece, plen);
        o += plen;
        i += l;
    }
    out[o] = 0;
}

/* In place, for a whole message. */
static void escape_message(char *msg, size_t len) {
    if (!msg || !len) return;
    size_t n = strlen(msg);
    char *copy = malloc(n + 1);
    if (!copy) return;
    memcpy(copy, msg, n + 1);
    escape_text(copy, n, msg, len);
    free(copy);
}

/* Where s (n bytes) stops being printable UTF-8 text; *cp the code point there, or -1 for a
 * byte that is not UTF-8. n when all of it is fine. Tabs are allowed: they are whitespace to
 * iniparser and a value keeps an inner tab through print and parse. */
static size_t first_bad_char(const char *s, size_t n, long *cp) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        uint32_t c = 0;
        size_t l = utf8_seq(p + i, n - i, &c);
        if (!l) {
            *cp = -1;
            return i;
        }
        if (is_control(c) && c != '\t') {
            *cp = (long)c;
            return i;
        }
        i += l;
    }
    return n;
}

/* "a control character (\n)" / "a byte that is not UTF-8 (\xff)" for the char at s. */
static void bad_char_desc(const char *s, size_t n, long cp, char *buf, size_t len) {
    char esc[16];
    size_t l = 1;
    uint32_t c;
    if (cp >= 0) l = utf8_seq((const unsigned char *)s, n, &c);
    escape_text(s, l ? l : 1, esc, sizeof esc);
    put(buf, len, cp >= 0 ? "a control character (%s)" : "a byte that is not UTF-8 (%s)", esc);
}

/* The INI form of a string value that iniparser 4.1 and 4.2 both read back as exactly s
 * (4.2 also takes backslash escapes inside quotes, 4.1 does not): "s" when it has no '"' and
 * no '\'; 's' when it has a '"' but no '\'' and no '\'; bare when nothing in it means anything
 * bare (no ';' '#', no quote first, no outer spaces, no '\' last). -1 when none of the three
 * can hold it; the caller refuses such a value up front. */
static int ini_quote(const char *s, char *buf, size_t len) {
    size_t n = strlen(s);
    int dq = strchr(s, '"') != NULL, sq = strchr(s, '\'') != NULL,
        bs = strchr(s, '\\') != NULL;
    int rc = -1;
    if (!dq && !bs) rc = snprintf(buf, len, "\"%s\"", s);
    else if (!sq && !bs) rc = snprintf(buf, len, "'%s'", s);
    else if (n && !strpbrk(s, ";#") && s[0] != '"' && s[0] != '\'' &&
             !isspace((unsigned char)s[0]) && !isspace((unsigned char)s[n - 1]) &&
             s[n - 1] != '\\')
        rc = snprintf(buf, len, "%s", s);
    return rc >= 0 && (size_t)rc < len ? 0 : -1;
}

static int find_key(const char *section, const char *key) {
    for (int i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].section, section) && !strcmp(keys[i].key, key)) return i;
    return -1;
}

static int is_section(const char *s) {
    for (int i = 0; i < NSECTIONS; i++)
        if (!strcmp(sections[i], s)) return 1;
    return 0;
}


/* Typos are the usual cause of an unknown name, so name the likely intended one. */
static const char *near(const char *name, const char *const *cands, int n) {
    const char *best = NULL;
    size_t bd = 3; /* more than 2 edits away is a different word, not a typo */
    for (int i = 0; i < n; i++) {
        size_t d = vkt_edit_distance(name, cands[i]);
        if (d < bd) { bd = d; best = cands[i]; }
    }
    return best;
}

static void append(char *buf, size_t len, size_t *pos, const char *fmt, ...) {
    if (*pos >= len) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *pos, len - *pos, fmt, ap);
    va_end(ap);
    if (n > 0) *pos += (size_t)n;
}

/* "unknown key [s] k (did you mean ...? known keys in [s]: a, b, c)" */
static void unknown_key_msg(char *buf, size_t len, const char *src, const char *section,
                            const char *key) {
    const char *cands[NKEYS];
    int n = 0;
    for (int i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].section, section)) cands[n++] = keys[i].key;
    size_t pos = 0;
    append(buf, len, &pos, "%s: unknown key [%s] %s (", src, section, key);
    const char *guess = near(key, cands, n);
    int elsewhere = -1;
    for (int i = 0; i < NKEYS && !guess; i++)
        if (!strcmp(keys[i].key, key)) elsewhere = i;
    if (guess) append(buf, len, &pos, "did you mean %s? ", guess);
    else if (elsewhere >= 0)
        append(buf, len, &pos, "%s belongs in [%s]; ", key, keys[elsewhere].section);
    append(buf, len, &pos, "known keys in [%s]: ", section);
    for (int i = 0; i < n; i++) append(buf, len, &pos, "%s%s", i ? ", " : "", cands[i]);
    append(buf, len, &pos, ")");
}

static void unknown_section_msg(char *buf, size_t len, const char *src, const char *section) {
    size_t pos = 0;
    append(buf, len, &pos, "%s: unknown section [%s] (", src, section);
    const char *guess = near(section, sections, NSECTIONS);
    if (guess) append(buf, len, &pos, "did you mean [%s]? ", guess);
    append(buf, len, &pos, "known sections: ");
    for (int i = 0; i < NSECTIONS; i++)
        append(buf, len, &pos, "%s%s", i ? ", " : "", sections[i]);
    append(buf, len, &pos, ")");
}

/* What a key accepts, as the tail of "must be ...". */
static void describe(const key_def *k, char *buf, size_t len) {
    size_t pos = 0;
    switch (k->kind) {
    case K_INT:
    case K_DOUBLE: {
        const char *what = k->kind == K_INT ? "an integer" : "a number";
        if ((k->flags & F_MIN) && (k->flags & F_MAX) && !(k->flags & (F_MIN_EXCL | F_MAX_EXCL)))
            append(buf, len, &pos, "%s from %g to %g", what, k->min, k->max);
        else {
            append(buf, len, &pos, "%s", what);
            if (k->flags & F_MIN)
                append(buf, len, &pos, " %s %g", k->flags & F_MIN_EXCL ? ">" : ">=", k->min);
            if (k->flags & F_MAX)
                append(buf, len, &pos, "%s %s %g", k->flags & F_MIN ? " and" : "",
                       k->flags & F_MAX_EXCL ? "<" : "<=", k->max);
        }
        break;
    }
    case K_U64: append(buf, len, &pos, "an integer from 0 to %llu", ULLONG_MAX); break;
    case K_BOOL: append(buf, len, &pos, "true or false (also yes/no, 1/0)"); break;
    case K_ENUM:
    case K_CHOICE:
        append(buf, len, &pos, "one of: ");
        for (int i = 0; k->choices[i]; i++)
            append(buf, len, &pos, "%s%s", i ? ", " : "", k->choices[i]);
        break;
    case K_STR:
        if (k->flags & F_DEVICE)
            append(buf, len, &pos,
                   "auto, a device index N from vktrain --list-devices, or backend:N such as "
                   "cpu:0 or vulkan:1");
        else if (k->flags & F_DEVICE_LIST)
            append(buf, len, &pos,
                   "empty, or a comma-separated list of devices (an index N from vktrain "
                   "--list-devices, or backend:N such as cpu:0 or vulkan:1)");
        else
            append(buf, len, &pos, "a path");
        break;
    }
}

static int device_syntax_ok(const char *s) {
    if (!strcmp(s, "auto")) return 1;
    const char *p = s;
    if (isalpha((unsigned char)*p)) {
        while (isalnum((unsigned char)*p) || *p == '_') p++;
        if (*p++ != ':') return 0;
    }
    size_t nd = strspn(p, "0123456789");
    return nd >= 1 && nd <= 6 && p[nd] == '\0';
}

static int within(const key_def *k, double v) {
    if (k->flags & F_MIN) {
        if (k->flags & F_MIN_EXCL ? !(v > k->min) : !(v >= k->min)) return 0;
    }
    if (k->flags & F_MAX) {
        if (k->flags & F_MAX_EXCL ? !(v < k->max) : !(v <= k->max)) return 0;
    }
    return 1;
}

/* Parses text into the key's field. On failure fills why with what follows "key = value: ". */
static int parse_value(const key_def *k, const char *text, vkt_config *cfg, char *why,
                       size_t wlen) {
    char acc[256];
    describe(k, acc, sizeof acc);
    char *end = NULL;
    switch (k->kind) {
    case K_INT: {
        errno = 0;
        long v = strtol(text, &end, 10);
        if (!*text || *end || errno) goto bad;
        if (v < INT_MIN || v > INT_MAX) {
            /* acc does not mention the int limit, so say it where it is the reason. */
            put(why, wlen, "must be %s (and at most %d)", acc, INT_MAX);
            return -1;
        }
        if (!within(k, (double)v)) goto bad;
        int iv = (int)v;
        memcpy(at(cfg, k), &iv, sizeof iv);
        return 0;
    }
    case K_U64: {
        /* strtoull accepts "-1" and wraps it, so a sign is rejected up front. */
        if (!isdigit((unsigned char)*text)) goto bad;
        errno = 0;
        unsigned long long v = strtoull(text, &end, 10);
        if (*end || errno) goto bad;
        memcpy(at(cfg, k), &v, sizeof v);
        return 0;
    }
    case K_DOUBLE: {
        errno = 0;
        double v = strtod(text, &end);
        if (!*text || *end || errno || !isfinite(v) || !within(k, v)) goto bad;
        memcpy(at(cfg, k), &v, sizeof v);
        return 0;
    }
    case K_BOOL: {
        int v;
        if (!strcasecmp(text, "true") || !strcasecmp(text, "yes") || !strcmp(text, "1")) v = 1;
        else if (!strcasecmp(text, "false") || !strcasecmp(text, "no") || !strcmp(text, "0"))
            v = 0;
        else goto bad;
        memcpy(at(cfg, k), &v, sizeof v);
        return 0;
    }
    case K_ENUM:
    case K_CHOICE:
        for (int i = 0; k->choices[i]; i++) {
            if (strcasecmp(text, k->choices[i])) continue;
            if (k->kind == K_ENUM) memcpy(at(cfg, k), &i, sizeof i);
            else set_str(at(cfg, k), k->size, k->choices[i]);
            return 0;
        }
        if (k->planned && !strcasecmp(text, k->planned)) {
            put(why, wlen, "%s; accepted: %s", k->planned_why, acc + strlen("one of: "));
            return -1;
        }
        goto bad;
    case K_STR: {
        char low[64];
        if (k->flags & F_DEVICE) {
            /* Backend names are matched in lowercase elsewhere; normalise once here. */
            size_t n = strlen(text);
            if (n >= sizeof low || n >= k->size) goto bad;
            for (size_t i = 0; i <= n; i++) low[i] = (char)tolower((unsigned char)text[i]);
            if (!device_syntax_ok(low)) goto bad;
            text = low;
        }
        char list[256];
        if (k->flags & F_DEVICE_LIST) { /* lowercased, spaces dropped, each entry checked */
            size_t n = 0;
            for (const char *c = text; *c; c++) {
                if (*c == ' ' || *c == '\t') continue;
                if (n + 1 >= sizeof list || n + 1 >= k->size) {
                    put(why, wlen, "too long (at most %zu characters)", k->size - 1);
                    return -1;
                }
                list[n++] = (char)tolower((unsigned char)*c);
            }
            list[n] = 0;
            for (char *e = list; n > 0;) {
                size_t len = strcspn(e, ",");
                char one[64];
                if (len == 0 || len >= sizeof one) goto bad;
                memcpy(one, e, len);
                one[len] = 0;
                if (!strcmp(one, "auto") || !device_syntax_ok(one)) goto bad;
                if (!e[len]) break;
                e += len + 1;
            }
            text = list;
        }
        if (set_str(at(cfg, k), k->size, text)) {
            put(why, wlen, "too long (at most %zu characters)", k->size - 1);
            return -1;
        }
        return 0;
    }
    }
bad:
    put(why, wlen, "must be %s", acc);
    return -1;
}

/* ---- load ------------------------------------------------------------------------------------ */

enum { SRC_DEFAULT = -2, SRC_FILE = -1 }; /* >= 0: index of the --set override */

typedef struct {
    const char *path;
    const char *const *overrides;
    const char *text[NKEYS]; /* raw value per key; NULL = default */
    int src[NKEYS];
    char *owned[NKEYS]; /* override values we copied (trimmed, unquoted) */
    char *err;
    size_t errlen;
} load_ctx;

static void source_name(const load_ctx *c, int i, char *buf, size_t len) {
    int s = c->src[i];
    if (s >= 0) put(buf, len, "--set %s", c->overrides[s]);
    else put(buf, len, "%s", c->path ? c->path : "(defaults)");
}

/* "<source>: [section] key = value: <why>" */
static int fail_key(load_ctx *c, int i, const char *why, ...) {
    char src[VKT_PATH_MAX + 64], msg[1024];
    source_name(c, i, src, sizeof src);
    va_list ap;
    va_start(ap, why);
    vsnprintf(msg, sizeof msg, why, ap);
    va_end(ap);
    const char *v = c->text[i] ? c->text[i] : keys[i].def;
    put(c->err, c->errlen, "%s: [%s] %s = %s: %s", src, keys[i].section, keys[i].key,
        *v ? v : "\"\"", msg);
    return 2;
}

/* For a cross-field message: where the other key came from, when that is not where this one
 * did, so the user knows which of the two places to edit. */
static void other_src(const load_ctx *c, int i, int j, char *buf, size_t len) {
    buf[0] = 0;
    if (c->src[i] == c->src[j]) return;
    if (c->src[j] == SRC_DEFAULT) {
        put(buf, len, "; %s is the default", keys[j].key);
        return;
    }
    char s[VKT_PATH_MAX + 64];
    source_name(c, j, s, sizeof s);
    put(buf, len, "; %s from %s", keys[j].key, s);
}

/* iniparser reports syntax errors through a callback without a user pointer, so the text has
 * to land in a static; _Thread_local keeps concurrent loads from mixing messages. */
static _Thread_local char ini_msg[512];
static int capture_ini_error(const char *fmt, ...) {
    if (ini_msg[0]) return 0; /* first error wins */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(ini_msg, sizeof ini_msg, fmt, ap);
    va_end(ap);
    return n;
}

static int syntax_error(load_ctx *c) {
    /* iniparser says "iniparser: syntax error in FILE (LINE):\n-> TEXT\n". */
    const char *open = strstr(ini_msg, " (");
    const char *arrow = strstr(ini_msg, "-> ");
    int line = 0;
    if (open && arrow && sscanf(open, " (%d)", &line) == 1) {
        char text[256];
        snprintf(text, sizeof text, "%s", arrow + 3);
        text[strcspn(text, "\n")] = 0;
        put(c->err, c->errlen,
            "%s: line %d: syntax error: `%s` (expected `key = value`, `[section]` or a "
            "# comment)", c->path, line, text);
    } else {
        char text[sizeof ini_msg];
        snprintf(text, sizeof text, "%s", ini_msg[0] ? ini_msg : "cannot parse the file");
        for (char *p = text; *p; p++)
            if (*p == '\n') *p = ' ';
        size_t n = strlen(text);
        while (n && text[n - 1] == ' ') text[--n] = 0;
        const char *t = strncmp(text, "iniparser: ", 11) ? text : text + 11;
        put(c->err, c->errlen, "%s: %s", c->path, t);
    }
    return 2;
}

/* ---- pre-scan: what iniparser would misread, truncate or echo raw ---------------------------- */

/* Reads at most CONFIG_MAX_BYTES + 1 bytes of path into a new buffer (terminated). */
static char *slurp(load_ctx *c, size_t *n) {
    FILE *f = fopen(c->path, "rb");
    if (!f) {
        put(c->err, c->errlen, "%s: cannot read the file: %s", c->path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(CONFIG_MAX_BYTES + 2);
    size_t got = buf ? fread(buf, 1, CONFIG_MAX_BYTES + 1, f) : 0;
    int bad = buf && ferror(f);
    fclose(f);
    if (!buf || bad) {
        put(c->err, c->errlen, "%s: cannot read the file: %s", c->path,
            buf ? strerror(errno) : "out of memory");
        free(buf);
        return NULL;
    }
    buf[got] = 0;
    *n = got;
    return buf;
}

/* The first line with something that is not printable UTF-8 text. NUL bytes and invalid
 * UTF-8 mean the file is not text at all (a binary given by mistake); other control bytes
 * are refused too: iniparser would keep them in values, and messages would echo them. */
static int check_text(load_ctx *c, const char *buf, size_t n) {
    /* binary first: an ELF file starts with a DEL byte, but "not text" is the news */
    const char *nul = memchr(buf, 0, n);
    size_t bin = nul ? (size_t)(nul - buf) : n;
    for (size_t i = 0; i < bin;) {
        uint32_t cp;
        size_t l = utf8_seq((const unsigned char *)buf + i, n - i, &cp);
        if (!l) {
            bin = i;
            break;
        }
        i += l;
    }
    if (bin < n) {
        int line = 1;
        for (size_t i = 0; i < bin; i++) line += buf[i] == '\n';
        put(c->err, c->errlen,
            "%s: not a text INI file (%s at line %d, byte %zu of the file). HINT: give the "
            "config (.ini) file; see configs/README.md",
            c->path, buf[bin] ? "a byte that is not UTF-8" : "a NUL byte", line, bin + 1);
        return 2;
    }
    int line = 1;
    size_t line_start = 0;
    for (size_t i = 0; i < n;) {
        long cp;
        size_t bad = i + first_bad_char(buf + i, n - i, &cp);
        for (; i < bad; i++)
            if (buf[i] == '\n') line++, line_start = i + 1;
        if (bad >= n) break;
        if (cp == '\n') { /* a line break is what it should be */
            line++, i++, line_start = i;
            continue;
        }
        if (cp == '\r' && (bad + 1 == n || buf[bad + 1] == '\n')) { /* CRLF files are fine */
            i++;
            continue;
        }
        char what[64], text[160];
        bad_char_desc(buf + bad, n - bad, cp, what, sizeof what);
        size_t end = line_start;
        while (end < n && buf[end] != '\n' && end - line_start < 60) end++;
        escape_text(buf + line_start, end - line_start, text, sizeof text);
        put(c->err, c->errlen,
            "%s: line %d: %s in `%s%s`: a config file holds printable text only. HINT: remove "
            "it",
            c->path, line, what, text, end < n && buf[end] != '\n' ? "..." : "");
        return 2;
    }
    return 0;
}

typedef struct {
    char name[2 * INI_LINE_BUF + 2]; /* "section:key" as iniparser names it */
    int line;
} seen_key;

static void strip_lower(char *s, int lower) {
    char *b = s;
    while (isspace((unsigned char)*b)) b++;
    size_t n = strlen(b);
    while (n && isspace((unsigned char)b[n - 1])) n--;
    memmove(s, b, n);
    s[n] = 0;
    if (lower)
        for (; *s; s++) *s = (char)tolower((unsigned char)*s);
}

/* What a line (its start, len bytes) sets, for a message: "[train] batch_size", "the section
 * header [x]" or "a comment". */
static void line_subject(const char *text, size_t len, const char *section, char *buf,
                         size_t blen) {
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%.*s", (int)(len < 255 ? len : 255), text);
    strip_lower(tmp, 0);
    char *eq = strchr(tmp, '=');
    if (tmp[0] == '#' || tmp[0] == ';') put(buf, blen, "a comment");
    else if (tmp[0] == '[') put(buf, blen, "a section header");
    else if (eq) {
        *eq = 0;
        strip_lower(tmp, 1);
        put(buf, blen, "[%s] %s", section, tmp);
    } else put(buf, blen, "a line");
}

/* One logical line (continuations joined, trailing space stripped, as iniparser sees it):
 * tracks the section and refuses a key set twice. 1 when the line is no INI syntax we know:
 * the scan stops there and iniparser reports the syntax error. */
static int scan_line(load_ctx *c, char *text, int line, char *section, seen_key *seen,
                     int *nseen) {
    strip_lower(text, 0);
    size_t len = strlen(text);
    if (!len || text[0] == '#' || text[0] == ';') return 0;
    if (text[0] == '[' && text[len - 1] == ']') {
        size_t e = strcspn(text + 1, "]");
        snprintf(section, INI_LINE_BUF + 1, "%.*s", (int)e, text + 1);
        strip_lower(section, 1);
        return 0;
    }
    char *eq = strchr(text, '=');
    if (!eq || eq == text) return 1;
    *eq = 0;
    strip_lower(text, 1);
    if (!*text) return 1;
    seen_key k;
    snprintf(k.name, sizeof k.name, "%s:%s", section, text);
    k.line = line;
    for (int i = 0; i < *nseen; i++) {
        if (strcmp(seen[i].name, k.name)) continue;
        put(c->err, c->errlen,
            "%s: [%s] %s is set twice, on line %d and on line %d (only one value can count). "
            "HINT: remove one of them",
            c->path, section, text, seen[i].line, line);
        return -1;
    }
    /* A valid file has at most NKEYS keys; past that some key is unknown, which the load
     * reports, so the list need not grow. */
    if (*nseen < NKEYS + 1) seen[(*nseen)++] = k;
    return 0;
}

/* Our own pass over the file before iniparser reads it: iniparser cuts nothing silently here
 * but says only "input line too long" without the key, keeps the last of two values of a
 * key, and echoes the raw bytes of a binary file in its syntax error. Fills err and returns 2
 * for: a file too large to be a config, a byte-order mark, a file that is not text (NUL
 * bytes, invalid UTF-8), control characters, a line longer than iniparser's buffer (naming
 * the line and its key), a key set twice (naming both lines). */
static int prescan_ini(load_ctx *c) {
    size_t n = 0;
    char *buf = slurp(c, &n);
    if (!buf) return 2;
    int rc = 0;
    seen_key *seen = malloc((NKEYS + 1) * sizeof *seen);
    char *logical = malloc(INI_LINE_BUF + 1), *section = malloc(INI_LINE_BUF + 1);
    if (!seen || !logical || !section) {
        put(c->err, c->errlen, "%s: out of memory", c->path);
        rc = 2;
    } else if (n > CONFIG_MAX_BYTES) {
        put(c->err, c->errlen,
            "%s: too large for a config file (more than %d KiB). HINT: give the config (.ini) "
            "file; data goes in [data] train",
            c->path, CONFIG_MAX_BYTES >> 10);
        rc = 2;
    } else if (n >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3)) {
        put(c->err, c->errlen,
            "%s: starts with a UTF-8 byte-order mark, which the INI reader takes for text of "
            "the first line. HINT: save the file as UTF-8 without BOM",
            c->path);
        rc = 2;
    } else {
        rc = check_text(c, buf, n);
    }
    int nseen = 0, line = 0, first_line = 1;
    size_t last = 0; /* bytes of a continued line already in logical, as iniparser's `last` */
    if (section) section[0] = 0;
    for (size_t s = 0; !rc && s < n;) {
        size_t e = s;
        while (e < n && buf[e] != '\n') e++;
        int nl = e < n;
        size_t len = e - s;
        line++;
        if (!last) first_line = line;
        /* iniparser's fgets takes INI_LINE_BUF - 1 - last bytes, the newline included; a last
         * line without newline must also end before that (else it is taken as cut off) */
        size_t room = INI_LINE_BUF - 1 - last;
        if (nl ? len + 1 > room : len >= room) {
            char subj[300];
            memcpy(logical + last, buf + s, len < room ? len : room);
            line_subject(logical, last + (len < room ? len : room), section, subj,
                         sizeof subj);
            if (last)
                put(c->err, c->errlen,
                    "%s: line %d: %s: the line, continued from line %d, is %zu characters "
                    "long; an INI line holds at most %d. HINT: shorten it (for a path: a "
                    "shorter directory, a symlink, or a path relative to the config file)",
                    c->path, line, subj, first_line, last + len, INI_MAX_LINE);
            else
                put(c->err, c->errlen,
                    "%s: line %d: %s: the line is %zu characters long; an INI line holds at "
                    "most %d. HINT: shorten it (for a path: a shorter directory, a symlink, or "
                    "a path relative to the config file)",
                    c->path, line, subj, len, INI_MAX_LINE);
            rc = 2;
            break;
        }
        memcpy(logical + last, buf + s, len);
        size_t l = last + len;
        while (l && isspace((unsigned char)logical[l - 1])) l--;
        logical[l] = 0;
        s = nl ? e + 1 : e;
        if (l && logical[l - 1] == '\\') { /* continues on the next line */
            last = l - 1;
            continue;
        }
        last = 0;
        int r = scan_line(c, logical, first_line, section, seen, &nseen);
        if (r < 0) rc = 2;
        if (r) break; /* syntax: iniparser's message */
    }
    free(seen);
    free(logical);
    free(section);
    free(buf);
    return rc;
}

static int read_file(load_ctx *c, vkt_config *cfg) {
    const char *path = c->path;
    if (set_str(cfg->path, sizeof cfg->path, path)) {
        put(c->err, c->errlen, "%s: config path too long (at most %d characters)", path,
            VKT_PATH_MAX - 1);
        return 2;
    }
    /* Check readability ourselves: iniparser only says "cannot open", without errno, and
     * happily "reads" a directory as an empty file. */
    struct stat st;
    FILE *f = NULL;
    /* a FIFO or a device would block fopen() below, or read for ever: refused unopened */
    if (stat(path, &st) == 0 && !S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
        return vkt_check_regular_file(path, c->err, c->errlen);
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) errno = EISDIR;
    else f = fopen(path, "r");
    if (!f) {
        put(c->err, c->errlen, "%s: cannot read the file: %s", path, strerror(errno));
        return 2;
    }
    fclose(f);
    int pre = prescan_ini(c);
    if (pre) return pre;

    ini_msg[0] = 0;
    iniparser_set_error_callback(capture_ini_error);
    dictionary *d = iniparser_load(path);
    iniparser_set_error_callback(NULL); /* back to iniparser's default for other users */
    if (!d) return syntax_error(c);

    /* Entries come in file order; a section is an entry without ':' and a NULL value.
     * dictionary.size is ssize_t in iniparser 4.1 (Debian 12) and size_t in 4.2 (Debian 13):
     * never negative, so the cast serves both without a sign-compare warning. */
    int rc = 0;
    for (size_t e = 0; e < (size_t)d->size && !rc; e++) {
        const char *name = d->key[e];
        if (!name) continue;
        const char *colon = strchr(name, ':');
        if (!colon) {
            if (!is_section(name)) {
                unknown_section_msg(c->err, c->errlen, path, name);
                rc = 2;
            }
            continue;
        }
        char section[128];
        size_t sl = (size_t)(colon - name);
        if (sl == 0) {
            put(c->err, c->errlen,
                "%s: key %s is outside any section (put it under [model], [data], [train], "
                "[optim] or [backend])", path, colon + 1);
            rc = 2;
            break;
        }
        snprintf(section, sizeof section, "%.*s", (int)sl, name);
        if (!is_section(section)) continue; /* reported with its section entry */
        int i = find_key(section, colon + 1);
        if (i < 0) {
            unknown_key_msg(c->err, c->errlen, path, section, colon + 1);
            rc = 2;
            break;
        }
        /* d is freed before we return, so keep a copy of the value. */
        const char *v = d->val[e] ? d->val[e] : "";
        c->owned[i] = malloc(strlen(v) + 1);
        if (!c->owned[i]) {
            put(c->err, c->errlen, "%s: out of memory", path);
            rc = 2;
            break;
        }
        strcpy(c->owned[i], v);
        c->text[i] = c->owned[i];
        c->src[i] = SRC_FILE;
    }
    iniparser_freedict(d);
    return rc;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = 0;
    return s;
}

static int apply_override(load_ctx *c, int o) {
    const char *ov = c->overrides[o];
    char src[1100];
    snprintf(src, sizeof src, "--set %s", ov);
    size_t n = strlen(ov);
    char *buf = malloc(n + 1);
    if (!buf) {
        put(c->err, c->errlen, "%s: out of memory", src);
        return 2;
    }
    memcpy(buf, ov, n + 1);
    char *eq = strchr(buf, '=');
    char *dot = eq ? memchr(buf, '.', (size_t)(eq - buf)) : NULL;
    char *section = NULL, *key = NULL;
    if (dot) {
        *eq = 0;
        *dot = 0;
        section = trim(buf);
        key = trim(dot + 1);
    }
    if (!dot || !*section || !*key) {
        put(c->err, c->errlen,
            "%s: malformed override (expected section.key=value, e.g. train.batch_size=16)",
            src);
        free(buf);
        return 2;
    }
    /* Match iniparser, which lowercases names read from files. */
    for (char *p = section; *p; p++) *p = (char)tolower((unsigned char)*p);
    for (char *p = key; *p; p++) *p = (char)tolower((unsigned char)*p);
    int rc = 0, i = -1;
    if (!is_section(section)) {
        unknown_section_msg(c->err, c->errlen, src, section);
        rc = 2;
    } else if ((i = find_key(section, key)) < 0) {
        unknown_key_msg(c->err, c->errlen, src, section, key);
        rc = 2;
    }
    if (rc) {
        free(buf);
        return rc;
    }
    /* Quotes as iniparser strips them, so a value reads the same from a file or from --set. */
    char *v = trim(eq + 1);
    size_t vl = strlen(v);
    if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
        v[vl - 1] = 0;
        v++;
    }
    long cp;
    size_t vl2 = strlen(v), bad = first_bad_char(v, vl2, &cp);
    if (bad < vl2) {
        /* it would land in the checkpoint's saved config, which then no longer parses */
        char what[64];
        bad_char_desc(v + bad, vl2 - bad, cp, what, sizeof what);
        put(c->err, c->errlen,
            "%s: [%s] %s: the value has %s at character %zu; values are printable text (a "
            "tab aside). HINT: check the quoting of the --set argument",
            src, section, key, what, bad + 1);
        free(buf);
        return 2;
    }
    memmove(buf, v, strlen(v) + 1);
    free(c->owned[i]); /* a later --set of the same key wins over the file and earlier ones */
    c->owned[i] = buf;
    c->text[i] = buf;
    c->src[i] = o;
    return 0;
}

/* A glob of shards: kept as an absolute pattern; it must match at least one file. */
static int resolve_glob(load_ctx *c, vkt_config *cfg, int i, const char *pattern) {
    glob_t g;
    int rc = glob(pattern, 0, NULL, &g);
    size_t n = rc == 0 ? g.gl_pathc : 0;
    globfree(&g);
    if (n == 0) return fail_key(c, i, "no file matches the pattern (resolved to %s)", pattern);
    if (set_str(at(cfg, &keys[i]), keys[i].size, pattern))
        return fail_key(c, i, "resolved pattern %s is too long (at most %zu characters)", pattern,
                        keys[i].size - 1);
    return 0;
}

/* Resolves an input path (train/val/init_from) and checks that it is readable: a file, or for
 * data keys also a directory or a glob pattern. */
static int resolve_input(load_ctx *c, vkt_config *cfg, int i) {
    const key_def *k = &keys[i];
    char *val = at(cfg, k);
    if (!*val) return 0;
    char base[PATH_MAX], joined[2 * PATH_MAX + 2];
    if (val[0] == '/') {
        snprintf(joined, sizeof joined, "%s", val);
    } else {
        /* Relative to the file it was written in, so a config works from any directory. */
        if (c->src[i] == SRC_FILE) {
            char dir[PATH_MAX];
            snprintf(dir, sizeof dir, "%s", c->path);
            char *slash = strrchr(dir, '/');
            if (!slash) snprintf(dir, sizeof dir, ".");
            else if (slash == dir) dir[1] = 0;
            else *slash = 0;
            if (!realpath(dir, base)) return fail_key(c, i, "cannot resolve the config's "
                                                            "directory: %s", strerror(errno));
        } else if (!getcwd(base, sizeof base)) {
            return fail_key(c, i, "cannot get the current directory: %s", strerror(errno));
        }
        const char *rel = val;
        while (rel[0] == '.' && rel[1] == '/') rel += 2;
        snprintf(joined, sizeof joined, "%s%s%s", base, strcmp(base, "/") ? "/" : "", rel);
    }
    if ((k->flags & F_DATA) && strpbrk(joined, "*?[")) return resolve_glob(c, cfg, i, joined);
    struct stat st;
    if (stat(joined, &st) != 0) {
        if (errno == ENOENT)
            return fail_key(c, i, "file not found (resolved to %s)%s", joined,
                            c->src[i] == SRC_FILE && val[0] != '/'
                                ? "; relative paths in a config file are relative to its "
                                  "directory"
                                : "");
        return fail_key(c, i, "%s (resolved to %s)", strerror(errno), joined);
    }
    if (S_ISDIR(st.st_mode) && !(k->flags & F_DATA))
        return fail_key(c, i, "is a directory, not a file (resolved to %s)", joined);
    if (access(joined, R_OK) != 0)
        return fail_key(c, i, "cannot read: %s (resolved to %s)", strerror(errno), joined);
    char real[PATH_MAX];
    if (!realpath(joined, real))
        return fail_key(c, i, "cannot resolve: %s (resolved to %s)", strerror(errno), joined);
    if (set_str(val, k->size, real))
        return fail_key(c, i, "resolved path %s is too long (at most %zu characters)", real,
                        k->size - 1);
    return 0;
}

static int resolve_cache(load_ctx *c, vkt_config *cfg, int i) {
    char *dir = cfg->backend.cache_dir;
    if (*dir) return 0;
    char buf[PATH_MAX + 32];
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    /* The XDG spec says to ignore a relative XDG_CACHE_HOME. */
    if (xdg && xdg[0] == '/') snprintf(buf, sizeof buf, "%s/vktrain", xdg);
    else if (home && *home) snprintf(buf, sizeof buf, "%s/.cache/vktrain", home);
    else return fail_key(c, i, "neither XDG_CACHE_HOME nor HOME is set; set cache_dir");
    if (set_str(dir, keys[i].size, buf))
        return fail_key(c, i, "default %s is too long (at most %zu characters)", buf,
                        keys[i].size - 1);
    return 0;
}

static int cross_checks(load_ctx *c, const vkt_config *cfg) {
    char note[VKT_PATH_MAX + 128];
    int i, j;
#define IDX(s, k) find_key(s, k)
    i = IDX("model", "n_embd"), j = IDX("model", "n_head");
    if (cfg->model.n_embd % cfg->model.n_head) {
        other_src(c, i, j, note, sizeof note);
        return fail_key(c, i, "must be divisible by n_head (%d)%s", cfg->model.n_head, note);
    }
    i = IDX("train", "seq_len"), j = IDX("model", "block_size");
    if (cfg->train.seq_len > cfg->model.block_size) {
        other_src(c, i, j, note, sizeof note);
        return fail_key(c, i, "must be <= [model] block_size (%d)%s", cfg->model.block_size,
                        note);
    }
    i = IDX("train", "stop_step"), j = IDX("train", "max_steps");
    if (cfg->train.stop_step > cfg->train.max_steps) {
        other_src(c, i, j, note, sizeof note);
        return fail_key(c, i, "must be from 0 to max_steps (%d); 0 = run to max_steps%s",
                        cfg->train.max_steps, note);
    }
    /* warmup_steps > max_steps is allowed (a short smoke run of a long config): the LR simply
     * never finishes warming up, as in nanoGPT and llm.c; the trainer says so */
    i = IDX("optim", "min_lr"), j = IDX("optim", "lr");
    if (cfg->optim.min_lr > cfg->optim.lr) {
        other_src(c, i, j, note, sizeof note);
        return fail_key(c, i, "must be <= lr (%g)%s", cfg->optim.lr, note);
    }
    i = IDX("backend", "matmul"), j = IDX("train", "precision");
    if (strcmp(cfg->train.precision, "fp16") &&
        (!strcmp(cfg->backend.matmul, "fp16") || !strcmp(cfg->backend.matmul, "fp16_direct") ||
         !strcmp(cfg->backend.matmul, "coopmat"))) {
        other_src(c, i, j, note, sizeof note);
        return fail_key(c, i, "rounds matmul operands to fp16, which needs [train] precision = "
                        "fp16 (it is %s)%s", cfg->train.precision, note);
    }
#undef IDX
    return 0;
}

/* Every string as it will be printed (vkt_config_print, into each checkpoint) must read back
 * as itself: printable text, a quoting that holds it, one INI line. Resolved paths are checked
 * here, after resolution, since a short relative path can resolve to a long absolute one. */
static int check_printable(load_ctx *c, const vkt_config *cfg) {
    char q[VKT_PATH_MAX + 8];
    for (int i = 0; i < NKEYS; i++) {
        const key_def *k = &keys[i];
        if (k->kind != K_STR && k->kind != K_CHOICE) continue;
        const char *s = cat(cfg, k);
        long cp;
        size_t n = strlen(s), bad = first_bad_char(s, n, &cp);
        if (bad < n) {
            char what[64];
            bad_char_desc(s + bad, n - bad, cp, what, sizeof what);
            return fail_key(c, i, "resolves to %s, with %s at character %zu; config values "
                            "are printable text. HINT: rename the directory or file",
                            s, what, bad + 1);
        }
        if (ini_quote(s, q, sizeof q))
            return fail_key(c, i, "holds both kinds of quote (' and \") with a backslash, "
                            "';', '#' or an outer space, which no INI value can hold when the "
                            "config is saved. HINT: rename it");
        size_t line = strlen(k->key) + 3 + strlen(q);
        if (line > INI_MAX_LINE)
            return fail_key(c, i, "%s %zu characters long: saved with the config (in every "
                            "checkpoint) it needs a %zu-character line, but an INI line holds "
                            "at most %d. HINT: use a shorter path (a shorter directory or a "
                            "symlink)",
                            strcmp(s, c->text[i] ? c->text[i] : "") ? "resolves to a path"
                                                                   : "is",
                            n, line, INI_MAX_LINE);
    }
    return 0;
}

void vkt_config_defaults(vkt_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    char why[512];
    for (int i = 0; i < NKEYS; i++) {
        /* Empty required strings (data.train) are filled by the user; anything else failing
         * here is a bug in the table. */
        if (!*keys[i].def && keys[i].kind == K_STR) continue;
        if (parse_value(&keys[i], keys[i].def, cfg, why, sizeof why)) {
            fprintf(stderr, "%s:%d: internal error: default of [%s] %s: %s\n", __FILE__,
                    __LINE__, keys[i].section, keys[i].key, why);
            abort();
        }
    }
}

int vkt_config_load(vkt_config *cfg, const char *path, const char *const *overrides,
                    int n_overrides, char *err, size_t errlen) {
    load_ctx c = {.path = path, .overrides = overrides, .err = err, .errlen = errlen};
    for (int i = 0; i < NKEYS; i++) c.src[i] = SRC_DEFAULT;
    if (err && errlen) err[0] = 0;
    vkt_config_defaults(cfg);

    int rc = path ? read_file(&c, cfg) : 0;
    for (int o = 0; o < n_overrides && !rc; o++) rc = apply_override(&c, o);

    char why[1024];
    for (int i = 0; i < NKEYS && !rc; i++) {
        const char *t = c.text[i] ? c.text[i] : keys[i].def;
        if ((keys[i].flags & F_REQUIRED) && !*t) {
            rc = fail_key(&c, i, "required (set it in the config file or with --set %s.%s=...)",
                          keys[i].section, keys[i].key);
            break;
        }
        if (parse_value(&keys[i], t, cfg, why, sizeof why)) rc = fail_key(&c, i, "%s", why);
    }
    if (!rc) rc = cross_checks(&c, cfg);
    for (int i = 0; i < NKEYS && !rc; i++) {
        if (keys[i].flags & F_INPUT) rc = resolve_input(&c, cfg, i);
        else if (keys[i].flags & F_CACHE) rc = resolve_cache(&c, cfg, i);
    }
    if (!rc) rc = check_printable(&c, cfg);
    for (int i = 0; i < NKEYS; i++) free(c.owned[i]);
    /* every message may quote file content or an argument: no raw control bytes out */
    if (rc) escape_message(err, errlen);
    return rc;
}

/* iniparser reads only files: the text goes through a private temporary one. Its paths are
 * absolute (vkt_config_print writes resolved ones), so the file's location does not matter. */
int vkt_config_load_text(vkt_config *cfg, const char *text, const char *name,
                         const char *const *overrides, int n_overrides, char *err,
                         size_t errlen) {
    const char *dir = getenv("TMPDIR");
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/vktrain-config-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        if (fd >= 0) close(fd), unlink(tmp);
        put(err, errlen, "%s: cannot write a temporary file in %s", name, tmp);
        return 1;
    }
    int ok = fputs(text, f) >= 0;
    ok = fclose(f) == 0 && ok;
    int rc = ok ? vkt_config_load(cfg, tmp, overrides, n_overrides, err, errlen) : 1;
    unlink(tmp);
    if (!ok) put(err, errlen, "%s: cannot write a temporary file in %s", name, tmp);
    if (rc && err && errlen) { /* name the config for the user, not the temporary file */
        char *at = strstr(err, tmp);
        if (at) {
            char rest[2048];
            snprintf(rest, sizeof rest, "%s", at + strlen(tmp));
            snprintf(at, errlen - (size_t)(at - err), "%s%s", name, rest);
        }
    }
    if (!rc) set_str(cfg->path, sizeof cfg->path, name);
    return rc;
}

/* ---- print ----------------------------------------------------------------------------------- */

/* The shortest text that reads back as the same double, so printed configs round-trip
 * exactly and still look like what a person would write (0.001, not 0.0010000000000000000). */
static void format_double(double v, char *buf, size_t len) {
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

static void format_value(const vkt_config *cfg, const key_def *k, char *buf, size_t len) {
    const void *p = cat(cfg, k);
    switch (k->kind) {
    case K_INT: {
        int v;
        memcpy(&v, p, sizeof v);
        snprintf(buf, len, "%d", v);
        break;
    }
    case K_U64: {
        unsigned long long v;
        memcpy(&v, p, sizeof v);
        snprintf(buf, len, "%llu", v);
        break;
    }
    case K_DOUBLE: {
        double v;
        memcpy(&v, p, sizeof v);
        format_double(v, buf, len);
        break;
    }
    case K_BOOL: {
        int v;
        memcpy(&v, p, sizeof v);
        snprintf(buf, len, "%s", v ? "true" : "false");
        break;
    }
    case K_ENUM: {
        int v, n = 0;
        memcpy(&v, p, sizeof v);
        while (k->choices[n]) n++;
        snprintf(buf, len, "%s", v >= 0 && v < n ? k->choices[v] : "?");
        break;
    }
    case K_CHOICE:
    case K_STR: {
        const char *s = p;
        /* Quoted where it can be, because iniparser cuts an unquoted value at ';' or '#'.
         * vkt_config_load refuses values no form holds; a struct filled by hand goes out
         * bare then. */
        if (ini_quote(s, buf, len)) snprintf(buf, len, "%s", s);
        break;
    }
    }
}

void vkt_config_print(const vkt_config *cfg, FILE *f) {
    char buf[VKT_PATH_MAX + 8];
    for (int s = 0; s < NSECTIONS; s++) {
        fprintf(f, "%s[%s]\n", s ? "\n" : "", sections[s]);
        for (int i = 0; i < NKEYS; i++) {
            if (strcmp(keys[i].section, sections[s])) continue;
            format_value(cfg, &keys[i], buf, sizeof buf);
            fprintf(f, "%s = %s\n", keys[i].key, buf);
        }
    }
}

void vkt_config_print_reference(FILE *f) {
    char acc[256];
    for (int i = 0; i < NKEYS; i++) {
        const key_def *k = &keys[i];
        fprintf(f, "| %s | %s | `%s` | %s", k->section, k->key, *k->def ? k->def : "\"\"",
                k->doc);
        if (k->kind != K_STR) {
            describe(k, acc, sizeof acc);
            fprintf(f, " Accepted: %s.", acc);
        }
        fprintf(f, " |\n");
    }
}
