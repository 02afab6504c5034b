/* Hostile and damaged weight files: a generator hand-assembles checkpoints (sections with
 * correct CRCs, so only the field under test is wrong) and llm.c model files, and every bad
 * field must be refused with status 2 and a message naming it, never crash, allocate from it
 * or hang; the loader must handle any position a checkpoint can hand it in O(1).
 * `test_checkpoint_hostile --write DIR` writes crafted files for tests/cli_hostile.sh. */
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/crc32.h"
#include "vkt_test.h"
#include "vktrain/checkpoint.h"
#include "vktrain/data.h"

/* ---- the generator -------------------------------------------------------------------------- */

#define MAX_SECS 16

typedef struct sec {
    char tag[4];
    unsigned char *data;
    size_t len;
    int bad_crc;
} sec;

typedef struct ckfile {
    sec s[MAX_SECS];
    int n;
    int64_t nsec; /* < 0: the real count */
    size_t trailing; /* zero bytes appended after the last section */
} ckfile;

static void add_sec(ckfile *f, const char *tag, const void *data, size_t len) {
    sec *s = &f->s[f->n++];
    memcpy(s->tag, tag, 4);
    s->data = malloc(len ? len : 1);
    if (len) memcpy(s->data, data, len);
    s->len = len;
    s->bad_crc = 0;
}

static sec *find_sec(ckfile *f, const char *tag) {
    for (int i = 0; i < f->n; i++)
        if (!memcmp(f->s[i].tag, tag, 4)) return &f->s[i];
    return NULL;
}

static void drop_sec(ckfile *f, const char *tag) {
    sec *s = find_sec(f, tag);
    if (!s) return;
    free(s->data);
    int i = (int)(s - f->s);
    memmove(&f->s[i], &f->s[i + 1], (size_t)(f->n - i - 1) * sizeof *s);
    f->n--;
}

static void free_ck(ckfile *f) {
    for (int i = 0; i < f->n; i++) free(f->s[i].data);
    f->n = 0;
}

static void put_i32(ckfile *f, const char *tag, size_t off, int32_t v) {
    memcpy(find_sec(f, tag)->data + off, &v, 4);
}
static void put_u64(ckfile *f, const char *tag, size_t off, uint64_t v) {
    memcpy(find_sec(f, tag)->data + off, &v, 8);
}
static void put_f32(ckfile *f, const char *tag, size_t off, float v) {
    memcpy(find_sec(f, tag)->data + off, &v, 4);
}
static void resize_sec(ckfile *f, const char *tag, size_t len) {
    sec *s = find_sec(f, tag);
    s->data = realloc(s->data, len ? len : 1);
    if (len > s->len) memset(s->data + s->len, 0, len - s->len);
    s->len = len;
}

/* The file as vkt_checkpoint_save lays it out (format in include/vktrain/checkpoint.h). */
static unsigned char *assemble(const ckfile *f, size_t *len) {
    size_t n = 16 + f->trailing;
    for (int i = 0; i < f->n; i++) n += 16 + f->s[i].len;
    unsigned char *b = calloc(1, n), *p = b;
    uint32_t version = VKT_CHECKPOINT_VERSION, nsec = f->nsec < 0 ? (uint32_t)f->n : (uint32_t)f->nsec;
    memcpy(p, "VKTCKPT", 8);
    memcpy(p + 8, &version, 4);
    memcpy(p + 12, &nsec, 4);
    p += 16;
    for (int i = 0; i < f->n; i++) {
        const sec *s = &f->s[i];
        uint32_t crc = vkt_crc32(s->data, s->len) ^ (s->bad_crc ? 1u : 0u);
        uint64_t bytes = s->len;
        memcpy(p, s->tag, 4);
        memcpy(p + 4, &crc, 4);
        memcpy(p + 8, &bytes, 8);
        memcpy(p + 16, s->data, s->len);
        p += 16 + s->len;
    }
    *len = n;
    return b;
}

/* The CLI tests' model: [model] n_layer 1, n_head 2, n_embd 16, block_size 16, vocab 256
 * (the byte tokenizer), as tests/cli_hostile.sh configures it. */
static const vkt_gpt2_shape CLI_SHAPE = {.max_seq_len = 16, .vocab_size = 256,
                                         .padded_vocab_size = 256, .num_layers = 1,
                                         .num_heads = 2, .channels = 16};

/* Small deterministic weights (a real model's scale), LayerNorm weights 1. */
static float *make_params(const vkt_gpt2_shape *s, size_t *np) {
    vkt_param_tensor t[VKT_NUM_PARAM_TENSORS];
    *np = vkt_gpt2_param_layout(s, t);
    float *p = malloc(*np * sizeof *p);
    uint32_t x = 12345;
    for (size_t i = 0; i < *np; i++) {
        x = x * 1664525u + 1013904223u;
        p[i] = ((float)(x >> 8) / 16777216.0f - 0.5f) * 0.1f;
    }
    for (int i = 0; i < VKT_NUM_PARAM_TENSORS; i++)
        if (!strcmp(t[i].name, "ln1w") || !strcmp(t[i].name, "ln2w") ||
            !strcmp(t[i].name, "lnfw"))
            for (size_t j = 0; j < t[i].size; j++) p[t[i].offset + j] = 1.0f;
    return p;
}

/* A valid checkpoint of shape s at step 2 (4 batches drawn), with the byte tokenizer. */
static void base_ck(ckfile *f, const vkt_gpt2_shape *s) {
    memset(f, 0, sizeof *f);
    f->nsec = -1;
    int32_t shape[6] = {s->max_seq_len, s->vocab_size, s->padded_vocab_size, s->num_layers,
                        s->num_heads, s->channels};
    add_sec(f, "SHPE", shape, sizeof shape);
    unsigned char scal[12] = {0};
    float one = 1.0f;
    memcpy(scal, &one, 4);
    add_sec(f, "SCAL", scal, sizeof scal);
    unsigned char step[20] = {0};
    int32_t st = 2;
    uint64_t seed = 99, batches = 4;
    memcpy(step, &st, 4);
    memcpy(step + 4, &seed, 8);
    memcpy(step + 12, &batches, 8);
    add_sec(f, "STEP", step, sizeof step);
    const char conf[] = "[model]\nn_layer = 1\n[train]\nseq_len = 16\n";
    add_sec(f, "CONF", conf, sizeof conf - 1);
    size_t np;
    float *p = make_params(s, &np);
    add_sec(f, "PARM", p, np * 4);
    float *adam = calloc(2 * np, sizeof *adam);
    for (size_t i = 0; i < np; i++) adam[i] = 1e-3f * p[i], adam[np + i] = 1e-6f * p[i] * p[i];
    add_sec(f, "ADAM", adam, 2 * np * 4);
    free(adam);
    free(p);
    vkt_tokenizer *tok = vkt_tokenizer_byte();
    unsigned char *td;
    size_t tl;
    if (tok && vkt_tokenizer_serialize(tok, &td, &tl) == 0) {
        add_sec(f, "TOKN", td, tl);
        free(td);
    }
    vkt_tokenizer_free(tok);
}

/* An llm.c model file (version 3 fp32 or 5 bf16) of shape s, its wte padded to Vp rows. */
static unsigned char *make_llmc(const vkt_gpt2_shape *s, int version, int Vp, size_t *len) {
    vkt_gpt2_shape fs = *s;
    fs.padded_vocab_size = Vp;
    size_t np;
    float *p = make_params(&fs, &np);
    size_t elem = version == VKT_LLMC_VERSION_FP32 ? 4 : 2;
    *len = 1024 + np * elem;
    unsigned char *b = calloc(1, *len);
    int32_t h[256] = {VKT_LLMC_MODEL_MAGIC, version, s->max_seq_len, s->vocab_size,
                      s->num_layers, s->num_heads, s->channels, Vp};
    memcpy(b, h, sizeof h);
    for (size_t i = 0; i < np; i++) {
        if (elem == 4) {
            memcpy(b + 1024 + 4 * i, &p[i], 4);
        } else {
            uint32_t u;
            memcpy(&u, &p[i], 4);
            uint16_t hb = (uint16_t)(u >> 16);
            memcpy(b + 1024 + 2 * i, &hb, 2);
        }
    }
    free(p);
    return b;
}

static void set_header(unsigned char *b, int i, int32_t v) { memcpy(b + 4 * i, &v, 4); }

/* Element `elem` of tensor `name` of an llm.c file body (fp32 or bf16), set to bits. */
static void poke_llmc(unsigned char *b, const vkt_gpt2_shape *s, int Vp, int version,
                      const char *name, size_t elem, uint32_t fbits) {
    vkt_gpt2_shape fs = *s;
    fs.padded_vocab_size = Vp;
    vkt_param_tensor t[VKT_NUM_PARAM_TENSORS];
    vkt_gpt2_param_layout(&fs, t);
    for (int i = 0; i < VKT_NUM_PARAM_TENSORS; i++) {
        if (strcmp(t[i].name, name)) continue;
        size_t at = t[i].offset + elem;
        if (version == VKT_LLMC_VERSION_FP32) {
            memcpy(b + 1024 + 4 * at, &fbits, 4);
        } else {
            uint16_t hb = (uint16_t)(fbits >> 16);
            memcpy(b + 1024 + 2 * at, &hb, 2);
        }
    }
}

static size_t tensor_offset(const vkt_gpt2_shape *s, const char *name) {
    vkt_param_tensor t[VKT_NUM_PARAM_TENSORS];
    vkt_gpt2_param_layout(s, t);
    for (int i = 0; i < VKT_NUM_PARAM_TENSORS; i++)
        if (!strcmp(t[i].name, name)) return t[i].offset;
    return 0;
}

static int write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static int write_ck(const char *path, const ckfile *f) {
    size_t len;
    unsigned char *b = assemble(f, &len);
    int rc = write_file(path, b, len);
    free(b);
    return rc;
}

/* ---- the checks ----------------------------------------------------------------------------- */

static char dir[] = "/tmp/vkt_test_ckhostile_XXXXXX";

/* The same bytes as a file, through vkt_weights_read (what --resume, init_from, eval and
 * sample call): refused with exit status 2, naming the file and the field. */
static void expect_refused_on_disk(const char *label, const unsigned char *b, size_t len,
                                   const char *needle) {
    char path[256], err[1024] = "";
    snprintf(path, sizeof path, "%s/%s.bin", dir, label);
    write_file(path, b, len);
    vkt_checkpoint ck;
    int rc = vkt_weights_read(path, &ck, err, sizeof err);
    CHECK(rc == 2 && strstr(err, path) && strstr(err, needle), "%s: read rc %d, '%s'", label,
          rc, err);
    vkt_checkpoint_free(&ck);
    remove(path);
}

/* Refused in memory (vkt_checkpoint_parse) and from a file (vkt_weights_read, what init_from,
 * eval and sample use): status 2, the file named, needle in the message. */
static void expect_bad_ck(const char *label, const ckfile *f, const char *needle) {
    size_t len;
    unsigned char *b = assemble(f, &len);
    vkt_checkpoint ck;
    char err[1024] = "";
    int rc = vkt_checkpoint_parse(b, len, "crafted.bin", &ck, err, sizeof err);
    CHECK(rc == 2 && strstr(err, "crafted.bin") && strstr(err, needle),
          "%s: parse rc %d, '%s' (want '%s')", label, rc, err, needle);
    CHECK(ck.params == NULL && ck.adam == NULL && ck.tokenizer == NULL && !ck.config_text,
          "%s: a refused checkpoint kept allocations", label);
    vkt_checkpoint_free(&ck);
    expect_refused_on_disk(label, b, len, needle);
    free(b);
}

static void expect_good_ck(const char *label, const ckfile *f) {
    size_t len;
    unsigned char *b = assemble(f, &len);
    vkt_checkpoint ck;
    char err[1024] = "";
    int rc = vkt_checkpoint_parse(b, len, "crafted.bin", &ck, err, sizeof err);
    CHECK(rc == 0 && ck.params && ck.adam && ck.config_text, "%s: rc %d, '%s'", label, rc, err);
    vkt_checkpoint_free(&ck);
    free(b);
}

/* One SHPE field changed, PARM and ADAM resized to what that shape would need (when it can be
 * computed), so only the shape check can catch it. */
static void bad_shape(const char *label, int field, int32_t v, const char *needle) {
    ckfile f;
    base_ck(&f, &CLI_SHAPE);
    put_i32(&f, "SHPE", 4 * (size_t)field, v);
    int32_t s[6];
    memcpy(s, find_sec(&f, "SHPE")->data, 24);
    vkt_gpt2_shape sh = {s[0], s[1], s[2], s[3], s[4], s[5]};
    int small = 1;
    for (int i = 0; i < 6; i++) small &= s[i] >= 0 && s[i] <= 4096;
    if (small) { /* sizes that match the crafted shape */
        vkt_param_tensor t[VKT_NUM_PARAM_TENSORS];
        size_t np = vkt_gpt2_param_layout(&sh, t);
        resize_sec(&f, "PARM", np * 4);
        resize_sec(&f, "ADAM", np * 8);
    }
    expect_bad_ck(label, &f, needle);
    free_ck(&f);
}

static void test_checkpoint_fields(void) {
    ckfile f;
    base_ck(&f, &CLI_SHAPE);
    expect_good_ck("valid", &f);
    free_ck(&f);

    /* SHPE: maxT V Vp L NH C */
    bad_shape("heads0", 4, 0, "n_head = 0");
    bad_shape("heads_neg", 4, -2, "n_head = -2");
    bad_shape("heads3", 4, 3, "not divisible by n_head = 3");
    bad_shape("channels0", 5, 0, "n_embd (channels) = 0");
    bad_shape("layers0", 3, 0, "n_layer = 0");
    bad_shape("maxT0", 0, 0, "block_size (max sequence length) = 0");
    bad_shape("vocab0", 1, 0, "vocab_size = 0");
    bad_shape("vocab_above_padded", 1, 300, "padded_vocab_size = 256");
    bad_shape("padded_big", 2, 320, "padded_vocab_size = 320");
    bad_shape("padded_small", 2, 192, "padded_vocab_size = 192");
    bad_shape("padded_huge", 2, INT32_MAX, "padded_vocab_size = 2147483647");
    bad_shape("vocab_huge", 1, 70000, "vocab_size = 70000");
    bad_shape("maxT_huge", 0, INT32_MAX, "block_size");
    bad_shape("layers_huge", 3, INT32_MAX, "n_layer = 2147483647");
    {   /* each dimension in range, the product not: the parameter count */
        base_ck(&f, &CLI_SHAPE);
        put_i32(&f, "SHPE", 12, 65536);
        put_i32(&f, "SHPE", 16, 1);
        put_i32(&f, "SHPE", 20, 65536);
        expect_bad_ck("params_overflow", &f, "parameters");
        free_ck(&f);
    }
    /* wrong-size fixed sections are errors, not silently skipped */
    const char *fixed[] = {"SHPE", "STEP", "SCAL"};
    for (int i = 0; i < 3; i++) {
        base_ck(&f, &CLI_SHAPE);
        resize_sec(&f, fixed[i], find_sec(&f, fixed[i])->len + 4);
        char label[32], needle[64];
        snprintf(label, sizeof label, "size_%s", fixed[i]);
        snprintf(needle, sizeof needle, "section %s is", fixed[i]);
        expect_bad_ck(label, &f, needle);
        free_ck(&f);
    }
    /* STEP: int32 step, u64 seed, u64 batches */
    const struct { const char *label; int32_t step; uint64_t batches; const char *needle; } st[] = {
        {"step_neg", -5, 4, "step = -5"},
        {"step_max", INT32_MAX, (uint64_t)INT32_MAX, "step = 2147483647"},
        {"batches_huge", 2, UINT64_MAX, "loader batches drawn = 18446744073709551615"},
        {"batches_2_49", 2, 1ull << 49, "loader batches drawn"},
        {"batches_below_step", 2, 1, "loader batches drawn = 1"},
    };
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
        base_ck(&f, &CLI_SHAPE);
        put_i32(&f, "STEP", 0, st[i].step);
        put_u64(&f, "STEP", 12, st[i].batches);
        expect_bad_ck(st[i].label, &f, st[i].needle);
        free_ck(&f);
    }
    base_ck(&f, &CLI_SHAPE);
    put_u64(&f, "STEP", 12, 1ull << 48); /* the largest position accepted */
    expect_good_ck("batches_2_48", &f);
    free_ck(&f);
    /* SCAL: float scale, int32 clean steps, int32 skipped steps */
    const struct { const char *label; float scale; int32_t clean, skipped; const char *needle; } sc[] = {
        {"scale_nan", NAN, 0, 0, "loss scale = nan"},
        {"scale_inf", INFINITY, 0, 0, "loss scale = inf"},
        {"scale_zero", 0.0f, 0, 0, "loss scale = 0"},
        {"scale_neg", -8.0f, 0, 0, "loss scale = -8"},
        {"clean_neg", 1.0f, -1, 0, "clean steps = -1"},
        {"skipped_neg", 1.0f, 0, -1, "skipped steps = -1"},
        {"skipped_above_step", 1.0f, 0, 3, "skipped steps = 3"},
    };
    for (size_t i = 0; i < sizeof sc / sizeof sc[0]; i++) {
        base_ck(&f, &CLI_SHAPE);
        put_f32(&f, "SCAL", 0, sc[i].scale);
        put_i32(&f, "SCAL", 4, sc[i].clean);
        put_i32(&f, "SCAL", 8, sc[i].skipped);
        expect_bad_ck(sc[i].label, &f, sc[i].needle);
        free_ck(&f);
    }
    /* SPLT: int32 ranks K, then K shares (balance = auto) */
    {
        const struct { const char *label; int32_t v[4]; size_t n; const char *needle; } sp[] = {
            {"split_no_ranks", {0}, 1, "do not hold a batch split"},
            {"split_count_mismatch", {3, 4, 4}, 3, "do not hold a batch split"},
            {"split_too_many_ranks", {1000, 1}, 2, "do not hold a batch split"},
            {"split_negative_share", {2, 7, -1}, 3, "rank 1's share -1"},
        };
        for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++) {
            base_ck(&f, &CLI_SHAPE);
            add_sec(&f, "SPLT", sp[i].v, sp[i].n * 4);
            expect_bad_ck(sp[i].label, &f, sp[i].needle);
            free_ck(&f);
        }
        int32_t good[3] = {2, 7, 1};
        base_ck(&f, &CLI_SHAPE);
        add_sec(&f, "SPLT", good, sizeof good);
        expect_good_ck("split_7_1", &f);
        free_ck(&f);
    }
    /* PARM / ADAM sizes */
    base_ck(&f, &CLI_SHAPE);
    resize_sec(&f, "PARM", find_sec(&f, "PARM")->len - 4);
    expect_bad_ck("parm_short", &f, "section PARM is");
    free_ck(&f);
    base_ck(&f, &CLI_SHAPE);
    resize_sec(&f, "ADAM", find_sec(&f, "ADAM")->len + 8);
    expect_bad_ck("adam_long", &f, "section ADAM is");
    free_ck(&f);
    /* missing and duplicate sections */
    const char *req[] = {"SHPE", "STEP", "PARM"};
    for (int i = 0; i < 3; i++) {
        base_ck(&f, &CLI_SHAPE);
        drop_sec(&f, req[i]);
        char label[32], needle[64];
        snprintf(label, sizeof label, "missing_%s", req[i]);
        snprintf(needle, sizeof needle, "lacks its %s section", req[i]);
        expect_bad_ck(label, &f, needle);
        free_ck(&f);
    }
    const char *dups[] = {"SHPE", "STEP", "SCAL", "PARM", "ADAM", "TOKN", "CONF"};
    for (int i = 0; i < 7; i++) {
        base_ck(&f, &CLI_SHAPE);
        sec *s = find_sec(&f, dups[i]);
        add_sec(&f, dups[i], s->data, s->len);
        char label[32], needle[64];
        snprintf(label, sizeof label, "dup_%s", dups[i]);
        snprintf(needle, sizeof needle, "section %s appears twice", dups[i]);
        expect_bad_ck(label, &f, needle);
        free_ck(&f);
    }
    /* a section this vktrain does not know is skipped (a later version's) */
    base_ck(&f, &CLI_SHAPE);
    add_sec(&f, "XTRA", "hello", 5);
    expect_good_ck("unknown_section", &f);
    free_ck(&f);
    /* the section table against the file */
    base_ck(&f, &CLI_SHAPE);
    f.nsec = 0xFFFFFFFF;
    expect_bad_ck("nsec_huge", &f, "announces 4294967295 sections");
    f.nsec = f.n + 1;
    expect_bad_ck("nsec_one_more", &f, "truncated");
    f.nsec = f.n - 1;
    expect_bad_ck("nsec_one_less", &f, "unexpected bytes after its last section");
    f.nsec = -1;
    f.trailing = 3;
    expect_bad_ck("trailing", &f, "3 unexpected bytes");
    f.trailing = 0;
    find_sec(&f, "STEP")->bad_crc = 1;
    expect_bad_ck("crc", &f, "section STEP is corrupt");
    free_ck(&f);
    {   /* a section length beyond the file: no allocation, no read */
        base_ck(&f, &CLI_SHAPE);
        size_t len;
        unsigned char *b = assemble(&f, &len);
        uint64_t huge = UINT64_MAX - 8;
        memcpy(b + 16 + 8, &huge, 8); /* the first section's length */
        vkt_checkpoint ck;
        char err[512] = "";
        int rc = vkt_checkpoint_parse(b, len, "crafted.bin", &ck, err, sizeof err);
        CHECK(rc == 2 && strstr(err, "SHPE announces"), "length beyond the file: %d '%s'", rc,
              err);
        memcpy(b + 16, "\x01\xff\n\x1b", 4); /* control bytes in a tag are not echoed */
        rc = vkt_checkpoint_parse(b, len, "crafted.bin", &ck, err, sizeof err);
        CHECK(rc == 2 && strstr(err, "????"), "raw tag bytes: '%s'", err);
        free(b);
        free_ck(&f);
    }
    /* TOKN: a tokenizer with more tokens than the model */
    vkt_gpt2_shape s64 = CLI_SHAPE;
    s64.vocab_size = s64.padded_vocab_size = 64;
    base_ck(&f, &s64);
    expect_bad_ck("tokn_vocab", &f, "section TOKN: the tokenizer has 256 tokens");
    free_ck(&f);
    /* header */
    base_ck(&f, &CLI_SHAPE);
    size_t len;
    unsigned char *b = assemble(&f, &len);
    for (size_t cut = 0; cut < len; cut += len / 97 + 1) { /* every truncation refused */
        vkt_checkpoint ck;
        char err[512] = "";
        int rc = vkt_checkpoint_parse(b, cut, "crafted.bin", &ck, err, sizeof err);
        CHECK(rc == 2 && err[0], "truncated to %zu: rc %d '%s'", cut, rc, err);
    }
    uint32_t v2 = 2;
    memcpy(b + 8, &v2, 4);
    vkt_checkpoint ck;
    char err[512] = "";
    CHECK(vkt_checkpoint_parse(b, len, "crafted.bin", &ck, err, sizeof err) == 2 &&
              strstr(err, "version 2"), "version: '%s'", err);
    free(b);
    free_ck(&f);
}

static void test_checkpoint_nonfinite(void) {
    ckfile f;
    size_t qkvw = tensor_offset(&CLI_SHAPE, "qkvw"), lnfb = tensor_offset(&CLI_SHAPE, "lnfb");
    base_ck(&f, &CLI_SHAPE);
    put_f32(&f, "PARM", 4 * (qkvw + 5), NAN);
    put_f32(&f, "PARM", 4 * (lnfb + 1), INFINITY); /* a later one: the first is named */
    expect_bad_ck("nan_parm", &f, "tensor qkvw element 5 of the parameters is NaN");
    free_ck(&f);
    base_ck(&f, &CLI_SHAPE);
    put_f32(&f, "PARM", 4 * (lnfb + 15), -INFINITY);
    expect_bad_ck("inf_parm", &f, "tensor lnfb element 15 of the parameters is -inf");
    free_ck(&f);
    base_ck(&f, &CLI_SHAPE);
    put_f32(&f, "ADAM", 4 * 7, NAN);
    expect_bad_ck("nan_adam_m", &f, "tensor wte element 7 of AdamW's first moment");
    free_ck(&f);
    size_t np;
    float *p = make_params(&CLI_SHAPE, &np);
    free(p);
    base_ck(&f, &CLI_SHAPE);
    put_f32(&f, "ADAM", 4 * (np + 3), -1.0f);
    expect_bad_ck("neg_adam_v", &f, "second moment 3 is negative");
    free_ck(&f);
}

static void expect_bad_llmc(const char *label, const unsigned char *b, size_t len,
                            const char *needle) {
    vkt_checkpoint ck;
    char err[1024] = "";
    int rc = vkt_llmc_model_parse(b, len, "crafted.bin", &ck, err, sizeof err);
    CHECK(rc == 2 && strstr(err, "crafted.bin") && strstr(err, needle),
          "%s: rc %d, '%s' (want '%s')", label, rc, err, needle);
    CHECK(!ck.params, "%s: a refused file kept its parameters", label);
    vkt_checkpoint_free(&ck);
    expect_refused_on_disk(label, b, len, needle);
}

static void test_llmc(void) {
    const vkt_gpt2_shape *s = &CLI_SHAPE;
    for (int version = VKT_LLMC_VERSION_FP32; version <= VKT_LLMC_VERSION_BF16; version += 2) {
        size_t len;
        unsigned char *good = make_llmc(s, version, 320, &len), *b = malloc(len);
        vkt_checkpoint ck;
        char err[512] = "";
        CHECK(vkt_llmc_model_parse(good, len, "ok.bin", &ck, err, sizeof err) == 0 &&
                  ck.shape.padded_vocab_size == 256,
              "version %d: a valid file: %s", version, err);
        vkt_checkpoint_free(&ck);
        /* header fields: magic version maxT V L NH C Vp */
        const struct { int field; int32_t v; const char *needle; } h[] = {
            {2, 0, "block_size (max sequence length) = 0"},
            {3, 0, "vocab_size = 0"},
            {3, 70000, "vocab_size = 70000"},
            {4, 0, "n_layer = 0"},
            {5, 0, "n_head = 0"},
            {5, 3, "not divisible by n_head = 3"},
            {6, -16, "n_embd (channels) = -16"},
            {7, 255, "padded vocab 255 is outside"},
            {7, INT32_MAX, "padded vocab 2147483647"},
            /* the signed-int overflow of the old check: L 12 C C with C near 2^31 */
            {6, INT32_MAX - 1, "n_embd (channels) = 2147483646"},
            {4, INT32_MAX, "n_layer = 2147483647"},
            {2, INT32_MAX, "block_size"},
        };
        for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) {
            memcpy(b, good, len);
            set_header(b, h[i].field, h[i].v);
            char label[48];
            snprintf(label, sizeof label, "llmc%d_h%d_%zu", version, h[i].field, i);
            expect_bad_llmc(label, b, len, h[i].needle);
        }
        {   /* in range one by one, the parameter count not */
            memcpy(b, good, len);
            set_header(b, 4, 65536);
            set_header(b, 5, 1);
            set_header(b, 6, 65536);
            expect_bad_llmc("llmc_params_overflow", b, len, "parameters");
        }
        memcpy(b, good, len);
        expect_bad_llmc("llmc_short", b, len - 2, "parameter bytes");
        set_header(b, 1, 4);
        expect_bad_llmc("llmc_version", b, len, "neither 3 (fp32) nor 5 (bf16)");
        /* non-finite weights, fp32 and bf16 alike */
        memcpy(b, good, len);
        poke_llmc(b, s, 320, version, "fcw", 11, 0x7fc00000u);
        expect_bad_llmc("llmc_nan", b, len, "tensor fcw element 11 of the parameters is NaN");
        memcpy(b, good, len);
        poke_llmc(b, s, 320, version, "wpe", 0, 0xff800000u);
        expect_bad_llmc("llmc_inf", b, len, "tensor wpe element 0 of the parameters is -inf");
        memcpy(b, good, len);
        poke_llmc(b, s, 320, version, "wte", 256 * 16 + 3, 0x7fc00000u); /* a pad row: dropped */
        CHECK(vkt_llmc_model_parse(b, len, "pad.bin", &ck, err, sizeof err) == 0,
              "NaN in llm.c's padding rows (not read): %s", err);
        vkt_checkpoint_free(&ck);
        for (size_t cut = 0; cut < len; cut += len / 31 + 1) {
            int rc = vkt_llmc_model_parse(good, cut, "cut.bin", &ck, err, sizeof err);
            CHECK(rc == 2 && err[0], "llm.c file cut to %zu: rc %d", cut, rc);
        }
        free(good);
        free(b);
    }
}

/* The shape check on its own, and the scan (another caller names a gradient's tensor). */
static void test_model_layer(void) {
    char err[256];
    vkt_gpt2_shape s = CLI_SHAPE;
    CHECK(vkt_gpt2_shape_check(&s, err, sizeof err) == 0, "%s", err);
    s.num_heads = 0;
    CHECK(vkt_gpt2_shape_check(&s, err, sizeof err) == 2 && strstr(err, "n_head"), "%s", err);
    size_t np, elem = 99;
    float *p = make_params(&CLI_SHAPE, &np);
    CHECK(vkt_params_first_nonfinite(&CLI_SHAPE, p, &elem) == -1, "finite params flagged");
    p[np - 1] = NAN;
    int t = vkt_params_first_nonfinite(&CLI_SHAPE, p, &elem);
    CHECK(t == VKT_NUM_PARAM_TENSORS - 1 && elem == 15, "last element: tensor %d elem %zu", t,
          elem);
    free(p);
}

/* Any loader position is served in O(1): near 2^64 the prefetch window wraps (it once
 * deadlocked the loader and its thread), and batches stay pure functions of k. */
static void test_loader_positions(void) {
    enum { N = 1000, B = 2, T = 8 };
    uint16_t *ids = malloc(N * sizeof *ids);
    for (int i = 0; i < N; i++) ids[i] = (uint16_t)(i * 7 % 256);
    vkt_span span = {ids, N};
    vkt_token_view v = {.spans = &span, .n_spans = 1, .n_tokens = N};
    const uint64_t starts[] = {UINT64_MAX - 2, 1ull << 48, (1ull << 63) + 5};
    for (int order = 0; order < 2; order++)
        for (size_t si = 0; si < sizeof starts / sizeof starts[0]; si++) {
            char err[256];
            vkt_loader *l = vkt_loader_create(&v, (vkt_data_order)order, 7, B, T, 3, err,
                                              sizeof err);
            CHECK(l, "loader: %s", err);
            if (!l) continue;
            vkt_loader_set_state(l, (vkt_loader_state){7, starts[si]});
            for (int k = 0; k < 6; k++) {
                int32_t in[B * T], tg[B * T], win[B * T], wtg[B * T];
                vkt_loader_next(l, B, T, in, tg);
                vkt_batch_at(&v, (vkt_data_order)order, 7, starts[si] + (uint64_t)k, B, T, win,
                             wtg);
                CHECK(!memcmp(in, win, sizeof in) && !memcmp(tg, wtg, sizeof tg),
                      "order %d: batch %llu differs from its pure function", order,
                      (unsigned long long)(starts[si] + (uint64_t)k));
            }
            vkt_loader_destroy(l);
        }
    free(ids);
}

/* ---- files for the CLI tests ------------------------------------------------------------- */

static int write_cli_files(const char *out) {
    char p[1024];
    ckfile f;
    int rc = 0;
#define CK(name, ...)                                                                      \
    do {                                                                                   \
        base_ck(&f, &CLI_SHAPE);                                                           \
        __VA_ARGS__;                                                                       \
        snprintf(p, sizeof p, "%s/%s", out, name);                                         \
        rc |= write_ck(p, &f);                                                             \
        free_ck(&f);                                                                       \
    } while (0)
    CK("good.ckpt", (void)0);
    CK("heads0.ckpt", put_i32(&f, "SHPE", 16, 0));
    CK("maxT0.ckpt", put_i32(&f, "SHPE", 0, 0); resize_sec(&f, "PARM", (7664 - 256) * 4);
       resize_sec(&f, "ADAM", (7664 - 256) * 8));
    CK("vocab_above_padded.ckpt", put_i32(&f, "SHPE", 4, 300));
    /* the padded vocab that crashed --resume: PARM and ADAM sized for it */
    CK("padded.ckpt", put_i32(&f, "SHPE", 8, 1024); resize_sec(&f, "PARM", (7664 + 768 * 16) * 4);
       resize_sec(&f, "ADAM", (7664 + 768 * 16) * 8));
    CK("step_neg.ckpt", put_i32(&f, "STEP", 0, -5));
    CK("step100.ckpt", put_i32(&f, "STEP", 0, 100); put_u64(&f, "STEP", 12, 100));
    CK("batches_huge.ckpt", put_u64(&f, "STEP", 12, UINT64_MAX - 1));
    CK("batches_max.ckpt", put_u64(&f, "STEP", 12, 1ull << 48));
    CK("scale_nan.ckpt", put_f32(&f, "SCAL", 0, NAN));
    CK("dup.ckpt", sec *s = find_sec(&f, "PARM"); add_sec(&f, "PARM", s->data, s->len));
    size_t qkvw = tensor_offset(&CLI_SHAPE, "qkvw");
    CK("nan.ckpt", put_f32(&f, "PARM", 4 * (qkvw + 5), NAN));
#undef CK
    size_t len;
    unsigned char *b = make_llmc(&CLI_SHAPE, VKT_LLMC_VERSION_FP32, 320, &len);
    snprintf(p, sizeof p, "%s/good.llmc", out);
    rc |= write_file(p, b, len);
    poke_llmc(b, &CLI_SHAPE, 320, VKT_LLMC_VERSION_FP32, "fcw", 11, 0x7fc00000u);
    snprintf(p, sizeof p, "%s/nan.llmc", out);
    rc |= write_file(p, b, len);
    free(b);
    b = make_llmc(&CLI_SHAPE, VKT_LLMC_VERSION_BF16, 256, &len);
    poke_llmc(b, &CLI_SHAPE, 256, VKT_LLMC_VERSION_BF16, "attprojw", 2, 0x7f800000u);
    snprintf(p, sizeof p, "%s/inf_bf16.llmc", out);
    rc |= write_file(p, b, len);
    free(b);
    /* GPT-2's vocabulary (50257, <|endoftext|> = 50256), tiny otherwise: the empty prompt */
    vkt_gpt2_shape g = {.max_seq_len = 16, .vocab_size = 50257, .padded_vocab_size = 50304,
                        .num_layers = 1, .num_heads = 2, .channels = 8};
    b = make_llmc(&g, VKT_LLMC_VERSION_FP32, 50304, &len);
    snprintf(p, sizeof p, "%s/gpt2vocab.llmc", out);
    rc |= write_file(p, b, len);
    free(b);
    if (rc) fprintf(stderr, "test_checkpoint_hostile: cannot write into %s\n", out);
    return rc ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--write")) return write_cli_files(argv[2]);
    alarm(30); /* a hang (the loader once deadlocked) fails the test instead of stalling ctest */
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_model_layer();
    test_checkpoint_fields();
    test_checkpoint_nonfinite();
    test_llmc();
    test_loader_positions();
    rmdir(dir);
    return vkt_test_finish("test_checkpoint_hostile");
}
