/* Tokenizers: byte and BPE round trips on arbitrary bytes, BPE training worked out by hand and
 * deterministic, encoding against a plain reference, safe cuts, compression of the sample
 * corpus, files (ours and llm.c's), and each kind of bad file refused with a message naming
 * it, without crashing on random or damaged input. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "data/tokenizer_impl.h" /* vkt_bpe_word_end: the pre-tokenizer's words, to check cuts */
#include "util/crc32.h"
#include "util/fs.h"
#include "vkt_test.h"
#include "vktrain/tokenizer.h"

static char dir[] = "/tmp/vkt_test_tokenizer_XXXXXX";
static char err[1024];

static const char *path_of(const char *name) {
    static char buf[4][256];
    static int k = 0;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void write_file(const char *name, const void *data, size_t len) {
    FILE *f = fopen(path_of(name), "wb");
    if (len) fwrite(data, 1, len, f);
    fclose(f);
}

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint32_t rnd(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}

static vkt_tokenizer *train1(const void *text, size_t len, int vocab) {
    const unsigned char *texts[1] = {text};
    vkt_tokenizer *t = vkt_tokenizer_train_bpe(texts, &len, 1, vocab, err, sizeof err);
    CHECK(t != NULL, "training failed: %s", err);
    return t;
}

/* Encodes text; the caller frees. Checks every id is in the vocabulary. */
static uint16_t *encode(const vkt_tokenizer *t, const void *text, size_t len, size_t *n) {
    uint16_t *ids = malloc((len + 1) * sizeof *ids);
    *n = vkt_tokenizer_encode(t, text, len, ids);
    int bad = 0;
    for (size_t i = 0; i < *n; i++) bad += ids[i] >= vkt_tokenizer_vocab_size(t);
    CHECK(*n <= len && !bad, "%zu ids for %zu bytes, %d out of the vocabulary", *n, len, bad);
    return ids;
}

static void check_round_trip(const vkt_tokenizer *t, const void *text, size_t len,
                             const char *what) {
    size_t n;
    uint16_t *ids = encode(t, text, len, &n);
    unsigned char *back = malloc(len + 1);
    size_t got = vkt_tokenizer_decode(t, ids, n, back, len);
    CHECK(got == len && !memcmp(back, text, len), "%s (%s): %zu bytes back of %zu", what,
          vkt_tokenizer_kind_name(t), got, len);
    free(ids);
    free(back);
}

static void check_round_trips(const vkt_tokenizer *t) {
    enum { N = 1 << 16 };
    unsigned char *buf = malloc(N);
    check_round_trip(t, "", 0, "empty");
    for (int i = 0; i < 256; i++) buf[i] = (unsigned char)i;
    check_round_trip(t, buf, 256, "all byte values");
    for (int i = 0; i < 256; i++) buf[i] = (unsigned char)(255 - i);
    check_round_trip(t, buf, 256, "all byte values backwards");
    for (int i = 0; i < N; i++) buf[i] = (unsigned char)rnd();
    check_round_trip(t, buf, N, "random binary");
    const char *bad_utf8 = "\xC3\x28 caf\xC3\xA9 \xE2\x82 \xF0\x9F\x98 \xFF\xFE \xC0\xAF\x80\x80";
    check_round_trip(t, bad_utf8, strlen(bad_utf8), "invalid UTF-8");
    const unsigned char runs[] = {'a', ' ', '\n', 0xFF, '7', '.'};
    for (size_t r = 0; r < sizeof runs; r++) {
        memset(buf, runs[r], N);
        check_round_trip(t, buf, N, "a long run");
    }
    free(buf);
}

/* ---- byte tokenizer ------------------------------------------------------------------------- */

static void test_byte(void) {
    vkt_tokenizer *t = vkt_tokenizer_byte();
    CHECK(vkt_tokenizer_kind_of(t) == VKT_TOKENIZER_BYTE && vkt_tokenizer_vocab_size(t) == 256 &&
              vkt_tokenizer_can_encode(t) && !strcmp(vkt_tokenizer_kind_name(t), "byte"),
          "byte tokenizer basics");
    unsigned char all[256];
    uint16_t ids[256];
    for (int i = 0; i < 256; i++) all[i] = (unsigned char)i;
    CHECK(vkt_tokenizer_encode(t, all, 256, ids) == 256, "byte encode count");
    int same = 1;
    for (int i = 0; i < 256; i++) same &= ids[i] == i;
    CHECK(same, "byte ids differ from the bytes");
    size_t len;
    const unsigned char *b = vkt_tokenizer_token_bytes(t, 200, &len);
    CHECK(b && len == 1 && b[0] == 200, "token_bytes(200)");
    CHECK(!vkt_tokenizer_token_bytes(t, 256, &len) && len == 0, "token_bytes(256) exists");
    CHECK(!vkt_tokenizer_token_bytes(t, -1, &len) && len == 0, "token_bytes(-1) exists");
    /* decode: a short buffer gets a prefix and the full size back; unknown ids vanish */
    uint16_t hello[] = {'h', 'e', 300, 'l', 'l', 'o'};
    unsigned char out[8] = {0};
    CHECK(vkt_tokenizer_decode(t, hello, 6, out, 3) == 5 && !memcmp(out, "hel", 3) && !out[3],
          "decode into a short buffer: '%s'", out);
    CHECK(vkt_tokenizer_decode(t, hello, 6, NULL, 0) == 5, "decode size query");
    CHECK(vkt_tokenizer_safe_cut(t, all, 256, 17) == 17 && vkt_tokenizer_safe_cut(t, all, 256,
          999) == 256, "byte safe_cut");
    check_round_trips(t);
    vkt_tokenizer_free(t);
}

/* ---- BPE training by hand ------------------------------------------------------------------- */

static void expect_merge(const vkt_tokenizer *t, int id, const char *bytes) {
    size_t len;
    const unsigned char *b = vkt_tokenizer_token_bytes(t, id, &len);
    CHECK(b && len == strlen(bytes) && !memcmp(b, bytes, len), "token %d is '%.*s', want '%s'",
          id, (int)len, b ? (const char *)b : "", bytes);
}

static void test_bpe_by_hand(void) {
    /* one word; pairs aa 4, ab 2, then 1s. aa -> 256: [aa a b d aa a b a c]; now (a,b) and
     * (aa,a) both occur twice, and (97, 98) < (256, 97): ab -> 257; then (aa,ab) twice ->
     * 258 "aaab"; after that every pair occurs once: training stops at vocab 259 */
    const char *text = "aaabdaaabac";
    vkt_tokenizer *t = train1(text, strlen(text), 1000);
    CHECK(vkt_tokenizer_vocab_size(t) == 259, "vocab %d, want 259", vkt_tokenizer_vocab_size(t));
    expect_merge(t, 256, "aa");
    expect_merge(t, 257, "ab");
    expect_merge(t, 258, "aaab");
    size_t n;
    uint16_t *ids = encode(t, text, strlen(text), &n);
    uint16_t want[] = {258, 'd', 258, 'a', 'c'};
    CHECK(n == 5 && !memcmp(ids, want, sizeof want), "encode: %zu ids", n);
    free(ids);
    vkt_tokenizer_free(t);

    /* three words "ab", " ab", " ab": no merge crosses a word, so (b, ' ') is never a pair */
    t = train1("ab ab ab", 8, 1000);
    CHECK(vkt_tokenizer_vocab_size(t) == 258, "vocab %d, want 258", vkt_tokenizer_vocab_size(t));
    expect_merge(t, 256, "ab");
    expect_merge(t, 257, " ab");
    vkt_tokenizer_free(t);

    /* bad vocab sizes and missing texts are refused */
    const unsigned char *texts[1] = {(const unsigned char *)"abc"};
    size_t len = 3;
    CHECK(!vkt_tokenizer_train_bpe(texts, &len, 1, 256, err, sizeof err) && strstr(err, "vocab"),
          "vocab 256: '%s'", err);
    CHECK(!vkt_tokenizer_train_bpe(texts, &len, 1, 65537, err, sizeof err), "vocab 65537");
    texts[0] = NULL;
    CHECK(!vkt_tokenizer_train_bpe(texts, &len, 1, 300, err, sizeof err), "NULL text");
    /* no text at all: a BPE with no merges */
    t = vkt_tokenizer_train_bpe(NULL, NULL, 0, 300, err, sizeof err);
    CHECK(t && vkt_tokenizer_vocab_size(t) == 256, "no text: %s", t ? "" : err);
    if (t) check_round_trip(t, "xyz", 3, "no merges");
    vkt_tokenizer_free(t);
}

/* ---- BPE against a plain reference -----------------------------------------------------------
 * GPT-2's bpe() on one word, with the merges read back from the serialised form. */

static size_t ref_encode_word(const uint16_t *merges, int nm, const unsigned char *w, size_t len,
                              uint16_t *ids) {
    size_t n = len;
    for (size_t i = 0; i < n; i++) ids[i] = w[i];
    while (n > 1) {
        int best = nm;
        for (size_t i = 0; i + 1 < n; i++)
            for (int r = 0; r < best; r++)
                if (merges[2 * r] == ids[i] && merges[2 * r + 1] == ids[i + 1]) best = r;
        if (best == nm) break;
        size_t j = 0;
        for (size_t i = 0; i < n; j++) {
            int hit = i + 1 < n && ids[i] == merges[2 * best] && ids[i + 1] == merges[2 * best + 1];
            ids[j] = hit ? (uint16_t)(256 + best) : ids[i];
            i += hit ? 2 : 1;
        }
        n = j;
    }
    return n;
}

static void test_bpe_reference(void) {
    /* words of a and b with odd runs, so merges nest in many ways */
    enum { N = 20000 };
    unsigned char *text = malloc(N);
    for (int i = 0; i < N; i++) text[i] = rnd() % 7 == 0 ? ' ' : (rnd() % 3 ? 'a' : 'b');
    vkt_tokenizer *t = train1(text, N, 400);
    unsigned char *ser;
    size_t serlen;
    CHECK(vkt_tokenizer_serialize(t, &ser, &serlen) == 0, "serialize");
    int nm = vkt_tokenizer_vocab_size(t) - 256;
    uint16_t *merges = malloc(4 * (size_t)nm + 1);
    for (int i = 0; i < 2 * nm; i++) merges[i] = (uint16_t)(ser[24 + 2 * i] | ser[25 + 2 * i] << 8);
    /* one-word inputs of every length across the short/long switch and beyond */
    unsigned char w[300];
    uint16_t want[300], got[300];
    int bad = 0;
    for (size_t len = 1; len <= sizeof w; len++) {
        for (size_t i = 0; i < len; i++) w[i] = rnd() % 3 ? 'a' : 'b';
        size_t nw = ref_encode_word(merges, nm, w, len, want);
        size_t ng = vkt_tokenizer_encode(t, w, len, got);
        if (nw != ng || memcmp(want, got, nw * sizeof *got)) bad++;
    }
    CHECK(bad == 0, "%d words encode differently from the reference", bad);
    free(merges);
    free(ser);
    free(text);
    vkt_tokenizer_free(t);
}

/* ---- safe cuts ------------------------------------------------------------------------------ */

/* Encoding text cut at cut equals encoding it whole. */
static int cut_is_safe(const vkt_tokenizer *t, const unsigned char *text, size_t len,
                       const uint16_t *whole, size_t nwhole, size_t cut) {
    uint16_t *ids = malloc((len + 1) * sizeof *ids);
    size_t n = vkt_tokenizer_encode(t, text, cut, ids);
    n += vkt_tokenizer_encode(t, text + cut, len - cut, ids + n);
    int ok = n == nwhole && !memcmp(ids, whole, n * sizeof *ids);
    free(ids);
    return ok;
}

static void test_safe_cuts(const vkt_tokenizer *t, const unsigned char *corpus, size_t len) {
    /* random cuts of a 100 KB slice */
    size_t slice = len < 100000 ? len : 100000, n;
    uint16_t *whole = encode(t, corpus, slice, &n);
    int bad = 0;
    for (int k = 0; k < 100; k++) {
        size_t pos = rnd() % (slice + 1), cut = vkt_tokenizer_safe_cut(t, corpus, slice, pos);
        if (cut < pos || cut > slice || !cut_is_safe(t, corpus, slice, whole, n, cut)) bad++;
    }
    CHECK(bad == 0, "%d unsafe cuts in tinyshakespeare", bad);
    free(whole);

    /* the whole corpus in about 16 chunks, as prepare encodes it */
    whole = encode(t, corpus, len, &n);
    uint16_t *ids = malloc((len + 1) * sizeof *ids);
    size_t m = 0, chunks = 0;
    for (size_t at = 0; at < len; chunks++) {
        size_t end = vkt_tokenizer_safe_cut(t, corpus, len, at + len / 16);
        m += vkt_tokenizer_encode(t, corpus + at, end - at, ids + m);
        at = end;
    }
    CHECK(m == n && !memcmp(ids, whole, n * sizeof *ids) && chunks >= 16,
          "chunked encoding differs (%zu ids in %zu chunks, %zu whole)", m, chunks, n);
    free(ids);
    free(whole);

    /* every position of a text made of the classes' edge cases: the cut is the next word
     * start the pre-tokenizer itself finds, and it is safe */
    enum { M = 1500 };
    const unsigned char alphabet[] = "a Z  \n\t\r7.-\xC3\xA9";
    unsigned char text[M];
    for (int i = 0; i < M; i++) text[i] = alphabet[rnd() % (sizeof alphabet - 1)];
    whole = encode(t, text, M, &n);
    size_t next_start = 0;
    int bad_cut = 0, unsafe = 0;
    for (size_t pos = 0; pos <= M; pos++) {
        while (next_start < pos) next_start = vkt_bpe_word_end(text, M, next_start);
        size_t cut = vkt_tokenizer_safe_cut(t, text, M, pos);
        bad_cut += cut != next_start;
        unsafe += !cut_is_safe(t, text, M, whole, n, cut);
    }
    CHECK(bad_cut == 0 && unsafe == 0, "%d cuts off a word start, %d unsafe", bad_cut, unsafe);
    free(whole);
}

/* ---- threads: one tokenizer shared by encoders running at once ------------------------------ */

typedef struct job {
    const vkt_tokenizer *t;
    const unsigned char *text;
    size_t len, n;
    uint16_t *ids;
} job;

static void *encode_job(void *arg) {
    job *j = arg;
    j->n = vkt_tokenizer_encode(j->t, j->text, j->len, j->ids);
    return NULL;
}

static void test_threads(const vkt_tokenizer *t, const unsigned char *corpus, size_t len) {
    enum { THREADS = 4 };
    size_t n;
    uint16_t *want = encode(t, corpus, len, &n);
    job jobs[THREADS];
    pthread_t th[THREADS];
    int started[THREADS] = {0};
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (job){.t = t, .text = corpus, .len = len, .ids = malloc(len * sizeof(uint16_t))};
        if (pthread_create(&th[i], NULL, encode_job, &jobs[i]) != 0) encode_job(&jobs[i]);
        else started[i] = 1;
    }
    for (int i = 0; i < THREADS; i++) {
        if (started[i]) pthread_join(th[i], NULL);
        CHECK(jobs[i].n == n && !memcmp(jobs[i].ids, want, n * sizeof *want),
              "thread %d encodes differently", i);
        free(jobs[i].ids);
    }
    free(want);
}

/* ---- files ---------------------------------------------------------------------------------- */

static void expect_load_error(const char *name, const char *needle) {
    vkt_tokenizer *t = vkt_tokenizer_load(path_of(name), err, sizeof err);
    CHECK(!t && strstr(err, path_of(name)) && strstr(err, needle),
          "%s: %s, message '%s' (want '%s')", name, t ? "loaded" : "refused", err, needle);
    vkt_tokenizer_free(t);
}

/* Parses data with a freshly computed CRC: for header fields a writer could get wrong. */
static void expect_parse_error(unsigned char *data, size_t len, const char *needle) {
    uint32_t crc = vkt_crc32(data, len - 4);
    for (int i = 0; i < 4; i++) data[len - 4 + i] = (unsigned char)(crc >> 8 * i);
    vkt_tokenizer *t = vkt_tokenizer_parse(data, len, "mem", err, sizeof err);
    CHECK(!t && strstr(err, "mem: ") && strstr(err, needle), "want '%s', got '%s'", needle, err);
    vkt_tokenizer_free(t);
}

static void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> 8 * i);
}

static void test_files(const vkt_tokenizer *bpe, const unsigned char *corpus, size_t len) {
    /* save and load: the same tokenizer */
    CHECK(vkt_tokenizer_save(bpe, path_of("bpe.tok"), err, sizeof err) == 0, "%s", err);
    vkt_tokenizer *t = vkt_tokenizer_load(path_of("bpe.tok"), err, sizeof err);
    CHECK(t, "load: %s", err);
    if (!t) return;
    CHECK(vkt_tokenizer_fingerprint(t) == vkt_tokenizer_fingerprint(bpe) &&
              vkt_tokenizer_kind_of(t) == VKT_TOKENIZER_BPE &&
              vkt_tokenizer_vocab_size(t) == vkt_tokenizer_vocab_size(bpe),
          "loaded BPE differs");
    size_t slice = len < 50000 ? len : 50000, n1, n2;
    uint16_t *a = encode(bpe, corpus, slice, &n1), *b = encode(t, corpus, slice, &n2);
    CHECK(n1 == n2 && !memcmp(a, b, n1 * sizeof *a), "loaded BPE encodes differently");
    free(a);
    free(b);
    vkt_tokenizer *byte = vkt_tokenizer_byte();
    CHECK(vkt_tokenizer_fingerprint(byte) != vkt_tokenizer_fingerprint(bpe), "fingerprints");
    CHECK(vkt_tokenizer_save(byte, path_of("byte.tok"), err, sizeof err) == 0, "%s", err);
    vkt_tokenizer *t2 = vkt_tokenizer_load(path_of("byte.tok"), err, sizeof err);
    CHECK(t2 && vkt_tokenizer_kind_of(t2) == VKT_TOKENIZER_BYTE &&
              vkt_tokenizer_fingerprint(t2) == vkt_tokenizer_fingerprint(byte),
          "byte tokenizer load: %s", t2 ? "" : err);
    vkt_tokenizer_free(t2);
    vkt_tokenizer_free(byte);

    /* bad files, each named with its problem */
    unsigned char *good;
    size_t glen;
    CHECK(vkt_tokenizer_serialize(t, &good, &glen) == 0, "serialize");
    unsigned char *buf = malloc(glen);
    write_file("empty.tok", "", 0);
    expect_load_error("empty.tok", "empty");
    write_file("magic.tok", "this is not a tokenizer file", 28);
    expect_load_error("magic.tok", "magic");
    memcpy(buf, good, glen);
    buf[8] = 2; /* version 2 */
    write_file("version.tok", buf, glen);
    expect_load_error("version.tok", "version");
    write_file("truncated.tok", good, glen - 10);
    expect_load_error("truncated.tok", "truncated");
    write_file("short.tok", good, 20);
    expect_load_error("short.tok", "truncated");
    memcpy(buf, good, glen);
    buf[glen / 2] ^= 0x10;
    write_file("flipped.tok", buf, glen);
    expect_load_error("flipped.tok", "CRC");
    expect_load_error("missing.tok", "cannot open");
    expect_load_error("", "not a regular file"); /* the directory itself */

    /* headers a writer could get wrong, with a valid CRC */
    unsigned char hdr[24 + 4 * 3 + 4];
    memcpy(hdr, "VKTTOKEN", 8);
    uint32_t fields[4] = {1, VKT_TOKENIZER_BPE, 259, 3};
    for (int i = 0; i < 4; i++) put32(hdr + 8 + 4 * i, fields[i]);
    uint16_t merges[6] = {'a', 'b', 256, 'c', 257, 258}; /* 258 used by merge 2, which makes it */
    for (int i = 0; i < 6; i++) {
        hdr[24 + 2 * i] = (unsigned char)merges[i];
        hdr[25 + 2 * i] = (unsigned char)(merges[i] >> 8);
    }
    expect_parse_error(hdr, sizeof hdr, "not defined");
    memcpy(hdr + 24 + 8, "a\0b\0", 4); /* merge 2 is (a, b) again */
    expect_parse_error(hdr, sizeof hdr, "repeats");
    put32(hdr + 16, 300); /* vocab != 256 + merges */
    expect_parse_error(hdr, sizeof hdr, "inconsistent");
    put32(hdr + 16, 259);
    put32(hdr + 12, 7); /* no such kind */
    expect_parse_error(hdr, sizeof hdr, "kind");
    /* merges that double a token's length each time: refused, not allocated */
    enum { DOUBLINGS = 40 };
    unsigned char big[24 + 4 * DOUBLINGS + 4];
    memcpy(big, hdr, 24);
    put32(big + 12, VKT_TOKENIZER_BPE);
    put32(big + 16, 256 + DOUBLINGS);
    put32(big + 20, DOUBLINGS);
    for (int i = 0; i < DOUBLINGS; i++) {
        int id = i ? 255 + i : 'a';
        big[24 + 4 * i] = big[26 + 4 * i] = (unsigned char)id;
        big[25 + 4 * i] = big[27 + 4 * i] = (unsigned char)(id >> 8);
    }
    expect_parse_error(big, sizeof big, "exceed");

    /* fuzz: every single-bit flip of a small file, and random bytes behind both magics */
    vkt_tokenizer *small = train1("ab ab abc abc abcd", 18, 300);
    unsigned char *sdata;
    size_t slen;
    vkt_tokenizer_serialize(small, &sdata, &slen);
    int accepted = 0;
    for (size_t i = 0; i < slen * 8; i++) {
        sdata[i / 8] ^= (unsigned char)(1 << i % 8);
        vkt_tokenizer *f = vkt_tokenizer_parse(sdata, slen, "fuzz", err, sizeof err);
        accepted += f != NULL;
        vkt_tokenizer_free(f);
        sdata[i / 8] ^= (unsigned char)(1 << i % 8);
    }
    CHECK(accepted == 0, "%d damaged files accepted", accepted);
    unsigned char noise[3000];
    for (int k = 0; k < 2000; k++) {
        size_t nl = rnd() % sizeof noise;
        for (size_t i = 0; i < nl; i++) noise[i] = (unsigned char)rnd();
        if (k % 3 == 0 && nl >= 8) memcpy(noise, "VKTTOKEN", 8);
        if (k % 3 == 1 && nl >= 12) {
            put32(noise, VKT_LLMC_TOKENIZER_MAGIC);
            put32(noise + 4, 1 + k % 2);
            put32(noise + 8, rnd() % 8);
        }
        vkt_tokenizer_free(vkt_tokenizer_parse(noise, nl, "noise", err, sizeof err));
    }
    free(sdata);
    vkt_tokenizer_free(small);
    free(buf);
    free(good);
    vkt_tokenizer_free(t);
}

/* llm.c's gpt2_tokenizer.bin: 256 u32 header, then (u8 length, bytes) per token. */
static size_t llmc_file(unsigned char *out, int version, int vocab, int ntokens) {
    static const char *tokens[] = {"a", "bc", " the", "<|endoftext|>", "\xE2\x82"};
    memset(out, 0, 1024);
    put32(out, VKT_LLMC_TOKENIZER_MAGIC);
    put32(out + 4, (uint32_t)version);
    put32(out + 8, (uint32_t)vocab);
    put32(out + 12, 3); /* eot (version 2) */
    size_t len = 1024;
    for (int i = 0; i < ntokens; i++) {
        out[len++] = (unsigned char)strlen(tokens[i]);
        memcpy(out + len, tokens[i], strlen(tokens[i]));
        len += strlen(tokens[i]);
    }
    return len;
}

static void test_llmc(void) {
    unsigned char file[1200];
    for (int version = 1; version <= 2; version++) {
        write_file("gpt2_tokenizer.bin", file, llmc_file(file, version, 5, 5));
        vkt_tokenizer *t = vkt_tokenizer_load(path_of("gpt2_tokenizer.bin"), err, sizeof err);
        CHECK(t, "llm.c v%d: %s", version, err);
        if (!t) continue;
        CHECK(vkt_tokenizer_kind_of(t) == VKT_TOKENIZER_LLMC && !vkt_tokenizer_can_encode(t) &&
                  vkt_tokenizer_vocab_size(t) == 5 && !strcmp(vkt_tokenizer_kind_name(t), "llmc"),
              "llm.c v%d basics", version);
        uint16_t ids[] = {2, 1, 0, 99, 3, 4};
        unsigned char out[64];
        size_t n = vkt_tokenizer_decode(t, ids, 6, out, sizeof out);
        const char *want = " thebca<|endoftext|>\xE2\x82";
        CHECK(n == strlen(want) && !memcmp(out, want, n), "llm.c decode: %zu bytes", n);
        uint16_t enc[4];
        CHECK(vkt_tokenizer_encode(t, (const unsigned char *)"abc", 3, enc) == 0, "llm.c encodes");
        /* through our format and back: the same token bytes, the same fingerprint */
        CHECK(vkt_tokenizer_save(t, path_of("llmc.tok"), err, sizeof err) == 0, "%s", err);
        vkt_tokenizer *t2 = vkt_tokenizer_load(path_of("llmc.tok"), err, sizeof err);
        CHECK(t2 && vkt_tokenizer_kind_of(t2) == VKT_TOKENIZER_LLMC &&
                  vkt_tokenizer_fingerprint(t2) == vkt_tokenizer_fingerprint(t) &&
                  vkt_tokenizer_decode(t2, ids, 6, out, sizeof out) == n && !memcmp(out, want, n),
              "llm.c through our format: %s", t2 ? "" : err);
        vkt_tokenizer_free(t2);
        vkt_tokenizer_free(t);
    }
    write_file("llmc_trunc.bin", file, llmc_file(file, 2, 5, 3));
    expect_load_error("llmc_trunc.bin", "truncated");
    write_file("llmc_short.bin", file, 500);
    expect_load_error("llmc_short.bin", "truncated");
    write_file("llmc_version.bin", file, llmc_file(file, 3, 5, 5));
    expect_load_error("llmc_version.bin", "version");
    write_file("llmc_trailing.bin", file, llmc_file(file, 2, 4, 5));
    expect_load_error("llmc_trailing.bin", "unexpected bytes");
    write_file("llmc_vocab.bin", file, llmc_file(file, 2, 0, 5));
    expect_load_error("llmc_vocab.bin", "vocab");
}

/* ---- the corpus ----------------------------------------------------------------------------- */

static void test_corpus(void) {
    const char *src = getenv("VKT_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/data/tinyshakespeare.txt", src ? src : ".");
    unsigned char *corpus;
    size_t len;
    if (vkt_read_file(path, &corpus, &len, err, sizeof err) != 0) {
        CHECK(0, "%s (set VKT_SOURCE_DIR)", err);
        return;
    }
    /* deterministic: the same text twice, or in three pieces cut anywhere, the same merges */
    size_t slice = 200000;
    vkt_tokenizer *a = train1(corpus, slice, 1024), *b = train1(corpus, slice, 1024);
    const unsigned char *pieces[3] = {corpus, corpus + 777, corpus + 123457};
    size_t lens[3] = {777, 123457 - 777, slice - 123457};
    vkt_tokenizer *c = vkt_tokenizer_train_bpe(pieces, lens, 3, 1024, err, sizeof err);
    unsigned char *sa, *sb, *sc;
    size_t la, lb, lc;
    vkt_tokenizer_serialize(a, &sa, &la);
    vkt_tokenizer_serialize(b, &sb, &lb);
    CHECK(c && vkt_tokenizer_serialize(c, &sc, &lc) == 0, "pieces: %s", err);
    CHECK(la == lb && !memcmp(sa, sb, la), "training twice gives different merges");
    CHECK(c && la == lc && !memcmp(sa, sc, la), "training on pieces gives different merges");
    CHECK(vkt_tokenizer_vocab_size(a) == 1024, "slice vocab %d", vkt_tokenizer_vocab_size(a));
    free(sa);
    free(sb);
    if (c) free(sc);
    vkt_tokenizer_free(b);
    vkt_tokenizer_free(c);
    /* the vocabulary limit holds for a small one too */
    b = train1(corpus, slice, 300);
    CHECK(vkt_tokenizer_vocab_size(b) == 300, "vocab %d, want 300", vkt_tokenizer_vocab_size(b));
    size_t n;
    free(encode(b, corpus, slice, &n));
    vkt_tokenizer_free(b);
    vkt_tokenizer_free(a);

    /* the whole corpus at 1024 tokens: about 0.41 tokens per byte (0.31 at 4096) */
    vkt_tokenizer *t = train1(corpus, len, 1024);
    if (!t) return;
    uint16_t *ids = encode(t, corpus, len, &n);
    CHECK(n < 0.45 * len, "%zu tokens for %zu bytes (%.3f per byte)", n, len, (double)n / len);
    free(ids);
    check_round_trip(t, corpus, len, "tinyshakespeare");
    check_round_trips(t);
    test_safe_cuts(t, corpus, len);
    test_threads(t, corpus, len < 300000 ? len : 300000);
    test_files(t, corpus, len);
    vkt_tokenizer_free(t);
    free(corpus);
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    test_byte();
    test_bpe_by_hand();
    test_bpe_reference();
    test_llmc();
    test_corpus();
    /* tidy up: every file the test wrote, then the directory */
    const char *names[] = {"bpe.tok", "byte.tok", "empty.tok", "magic.tok", "version.tok",
                           "truncated.tok", "short.tok", "flipped.tok", "gpt2_tokenizer.bin",
                           "llmc.tok", "llmc_trunc.bin", "llmc_short.bin", "llmc_version.bin",
                           "llmc_trailing.bin", "llmc_vocab.bin"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) remove(path_of(names[i]));
    rmdir(dir);
    return vkt_test_finish("test_tokenizer");
}
