/* Shards, data sets and the loader: shard write/read round trip, each kind of bad shard refused
 * with a message naming it, data sets from shards, globs and splits, token ids checked
 * against the vocabulary, and the loader's determinism (seed, resume position, prefetch thread
 * giving exactly the batches computed on demand, sequential order across shards). */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "vkt_test.h"
#include "vktrain/data.h"

static char dir[] = "/tmp/vkt_test_data_XXXXXX";

static const char *path_of(const char *name) {
    static char buf[4][256];
    static int k = 0;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* A hand-made file: 256 int32 header {magic, version, ntok}, then body_tokens tokens. */
static void write_raw(const char *name, int32_t magic, int32_t version, int32_t ntok,
                      const uint16_t *toks, int body_tokens) {
    int32_t header[256] = {magic, version, ntok};
    FILE *f = fopen(path_of(name), "wb");
    fwrite(header, sizeof header, 1, f);
    fwrite(toks, sizeof(uint16_t), (size_t)body_tokens, f);
    fclose(f);
}

static void expect_bad_shard(const char *name, const char *needle) {
    vkt_shard s;
    char err[512] = "";
    int rc = vkt_shard_open(path_of(name), &s, err, sizeof err);
    CHECK(rc == 2 && strstr(err, path_of(name)) && strstr(err, needle),
          "%s: rc %d, message '%s' (want '%s')", name, rc, err, needle);
    CHECK(s.map == NULL, "%s: mapping left open", name);
}

static int config_for(vkt_config *cfg, const char *train, const char *val, int vocab,
                      const char *fraction) {
    char t[600], v[600], vs[64], fr[64], cache[600];
    snprintf(t, sizeof t, "data.train=%s", train);
    snprintf(v, sizeof v, "data.val=%s", val ? val : "");
    snprintf(vs, sizeof vs, "model.vocab_size=%d", vocab);
    snprintf(fr, sizeof fr, "data.val_fraction=%s", fraction);
    snprintf(cache, sizeof cache, "backend.cache_dir=%s/cache", dir);
    const char *ov[] = {t, v, vs, fr, cache, "train.seq_len=8", "model.block_size=8"};
    char err[1024];
    int rc = vkt_config_load(cfg, NULL, ov, 7, err, sizeof err);
    if (rc) fprintf(stderr, "config: %s\n", err);
    return rc;
}

static void test_shards(void) {
    uint16_t toks[1000];
    for (int i = 0; i < 1000; i++) toks[i] = (uint16_t)(i * 37 % 50257);
    char err[512];
    CHECK(vkt_shard_write(path_of("a.bin"), toks, 1000, err, sizeof err) == 0, "%s", err);
    vkt_shard s;
    CHECK(vkt_shard_open(path_of("a.bin"), &s, err, sizeof err) == 0, "%s", err);
    CHECK(s.n == 1000 && !memcmp(s.ids, toks, sizeof toks), "round trip differs (n %zu)", s.n);
    vkt_shard_close(&s);
    /* the header is llm.c's: magic, version, count at int32 0..2 */
    FILE *f = fopen(path_of("a.bin"), "rb");
    int32_t h[3] = {0};
    CHECK(f && fread(h, 4, 3, f) == 3, "read header");
    if (f) fclose(f);
    CHECK(h[0] == 20240520 && h[1] == 1 && h[2] == 1000, "header %d %d %d", h[0], h[1], h[2]);

    write_raw("magic.bin", 12345, 1, 10, toks, 10);
    expect_bad_shard("magic.bin", "magic");
    write_raw("model.bin", VKT_LLMC_MODEL_MAGIC, 3, 10, toks, 10);
    expect_bad_shard("model.bin", "llm.c model file");
    write_raw("version.bin", VKT_SHARD_MAGIC, 2, 10, toks, 10);
    expect_bad_shard("version.bin", "version 2");
    write_raw("short.bin", VKT_SHARD_MAGIC, 1, 100, toks, 60);
    expect_bad_shard("short.bin", "truncated");
    write_raw("empty.bin", VKT_SHARD_MAGIC, 1, 0, toks, 0);
    expect_bad_shard("empty.bin", "no tokens");
    f = fopen(path_of("tiny.bin"), "wb");
    fwrite("abc", 1, 3, f);
    fclose(f);
    expect_bad_shard("tiny.bin", "truncated");
    expect_bad_shard("missing.bin", "cannot open");
}

/* Two shards of 300 and 200 tokens: token value = its global position % 500. */
static void make_two_shards(void) {
    uint16_t t[500];
    for (int i = 0; i < 500; i++) t[i] = (uint16_t)i;
    char err[512];
    CHECK(vkt_shard_write(path_of("ds_train_000.bin"), t, 300, err, sizeof err) == 0, "%s", err);
    CHECK(vkt_shard_write(path_of("ds_train_001.bin"), t + 300, 200, err, sizeof err) == 0, "%s",
          err);
}

static void test_dataset(void) {
    make_two_shards();
    vkt_config cfg;
    vkt_data d;
    char err[1024];
    /* a glob: both shards, in name order; val = the last 10% (50 tokens) as a view */
    CHECK(config_for(&cfg, path_of("ds_train_*.bin"), NULL, 512, "0.1") == 0, "config");
    CHECK(vkt_data_open(&cfg, &d, err, sizeof err) == 0, "%s", err);
    CHECK(d.n_shards == 2 && d.train.n_tokens == 450 && d.val.n_tokens == 50,
          "shards %d train %zu val %zu", d.n_shards, d.train.n_tokens, d.val.n_tokens);
    CHECK(d.val.n_spans == 1 && d.val.spans[0].ids[0] == 450 && d.tokenizer == NULL,
          "val starts at token %u", d.val.n_spans ? d.val.spans[0].ids[0] : 0);
    CHECK(d.train.spans[0].ids[0] == 0 && d.train.spans[1].ids[0] == 300, "glob order");
    vkt_data_close(&d);

    /* the split may take whole spans and part of the one before */
    CHECK(config_for(&cfg, path_of("ds_train_*.bin"), NULL, 512, "0.5") == 0, "config");
    CHECK(vkt_data_open(&cfg, &d, err, sizeof err) == 0, "%s", err);
    CHECK(d.train.n_tokens == 250 && d.val.n_tokens == 250 && d.val.n_spans == 2 &&
              d.val.spans[0].ids[0] == 250 && d.val.spans[0].n == 50 && d.train.n_spans == 1,
          "half split: train %zu val %zu spans %d", d.train.n_tokens, d.val.n_tokens,
          d.val.n_spans);
    vkt_data_close(&d);

    /* explicit val shard; val_fraction then ignored */
    CHECK(config_for(&cfg, path_of("ds_train_000.bin"), path_of("ds_train_001.bin"), 512, "0.1") ==
              0,
          "config");
    CHECK(vkt_data_open(&cfg, &d, err, sizeof err) == 0, "%s", err);
    CHECK(d.train.n_tokens == 300 && d.val.n_tokens == 200, "train %zu val %zu",
          d.train.n_tokens, d.val.n_tokens);
    vkt_data_close(&d);

    /* a token id >= vocab is refused, naming the data and the token */
    CHECK(config_for(&cfg, path_of("ds_train_*.bin"), NULL, 400, "0.1") == 0, "config");
    int rc = vkt_data_open(&cfg, &d, err, sizeof err);
    CHECK(rc == 2 && strstr(err, "ds_train_") && strstr(err, "token 400") &&
              strstr(err, "vocab_size"),
          "rc %d: %s", rc, err);
    /* the largest id (499) must be below vocab_size: 499 is refused, 500 accepted */
    CHECK(config_for(&cfg, path_of("ds_train_*.bin"), NULL, 499, "0.1") == 0, "config");
    rc = vkt_data_open(&cfg, &d, err, sizeof err);
    CHECK(rc == 2 && strstr(err, "token 499"), "vocab 499: rc %d: %s", rc, err);
    CHECK(config_for(&cfg, path_of("ds_train_*.bin"), NULL, 500, "0.1") == 0, "config");
    rc = vkt_data_open(&cfg, &d, err, sizeof err);
    CHECK(rc == 0, "vocab 500: %s", err);
    if (!rc) vkt_data_close(&d);
    /* a file whose header fits it but for a damaged magic is reported, not read as text */
    uint16_t ten[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    write_raw("damaged.dat", 20240521, 1, 10, ten, 10);
    CHECK(config_for(&cfg, path_of("damaged.dat"), NULL, 512, "0.1") == 0, "config");
    rc = vkt_data_open(&cfg, &d, err, sizeof err);
    CHECK(rc == 2 && strstr(err, "damaged.dat: not a token shard: magic 20240521"), "rc %d: %s",
          rc, err);
    /* an llm.c model file named as data */
    uint16_t z[4] = {0};
    write_raw("gpt2.bin", VKT_LLMC_MODEL_MAGIC, 3, 4, z, 4);
    CHECK(config_for(&cfg, path_of("gpt2.bin"), NULL, 512, "0.1") == 0, "config");
    rc = vkt_data_open(&cfg, &d, err, sizeof err);
    CHECK(rc == 2 && strstr(err, "gpt2.bin") && strstr(err, "llm.c model file"), "rc %d: %s", rc,
          err);
}

static int same_batches(const vkt_token_view *v, vkt_data_order order, int prefetch) {
    char err[256];
    vkt_loader *a = vkt_loader_create(v, order, 42, 4, 16, 0, err, sizeof err);
    vkt_loader *b = vkt_loader_create(v, order, 42, 4, 16, prefetch, err, sizeof err);
    int32_t i1[128], t1[128], i2[128], t2[128];
    int same = a && b;
    for (int k = 0; k < 40 && same; k++) {
        /* a curriculum changes T mid-run; at k = 35 a shape beyond the ring's buffers */
        int T = k < 15 ? 16 : k < 25 ? 8 : k == 35 ? 24 : 16;
        vkt_loader_next(a, 4, T, i1, t1);
        vkt_loader_next(b, 4, T, i2, t2);
        same = !memcmp(i1, i2, sizeof(int32_t) * 4 * T) && !memcmp(t1, t2, sizeof(int32_t) * 4 * T);
        if (k == 30) { /* a seek, as a resume does */
            vkt_loader_state s = {42, 7};
            vkt_loader_set_state(a, s);
            vkt_loader_set_state(b, s);
        }
    }
    vkt_loader_destroy(a);
    vkt_loader_destroy(b);
    return same;
}

static void test_loader(void) {
    make_two_shards();
    vkt_config cfg;
    vkt_data d;
    char err[1024];
    CHECK(config_for(&cfg, path_of("ds_train_*.bin"), NULL, 512, "0") == 0, "config");
    CHECK(vkt_data_open(&cfg, &d, err, sizeof err) == 0, "%s", err);
    const int B = 4, T = 16;
    int32_t in[64], tg[64], in2[64], tg2[64];

    /* random order: windows are contiguous, inside one shard, targets shifted by one */
    int ok = 1;
    for (uint64_t k = 0; k < 200; k++) {
        vkt_batch_at(&d.train, VKT_ORDER_RANDOM, 9, k, B, T, in, tg);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                int v = in[b * T + t], w = tg[b * T + t];
                ok &= w == v + 1 && (t == 0 || v == in[b * T + t - 1] + 1);
                ok &= !(v < 300 && w >= 300); /* never across the shard boundary */
            }
    }
    CHECK(ok, "a random window is not contiguous or crosses shards");
    /* the same (seed, k) gives the same batch; another seed another */
    vkt_batch_at(&d.train, VKT_ORDER_RANDOM, 9, 5, B, T, in, tg);
    vkt_batch_at(&d.train, VKT_ORDER_RANDOM, 9, 5, B, T, in2, tg2);
    CHECK(!memcmp(in, in2, sizeof in), "batch 5 differs between calls");
    vkt_batch_at(&d.train, VKT_ORDER_RANDOM, 10, 5, B, T, in2, tg2);
    CHECK(memcmp(in, in2, sizeof in), "seed 10 gives seed 9's batch");
    vkt_batch_at(&d.train, VKT_ORDER_RANDOM, 9, 6, B, T, in2, tg2);
    CHECK(memcmp(in, in2, sizeof in), "batch 6 repeats batch 5");

    /* sequential: shard 0 has (300-1)/16 = 18 windows, shard 1 has 12; then it wraps */
    CHECK(vkt_view_windows(&d.train, T) == 30, "windows %zu", vkt_view_windows(&d.train, T));
    vkt_batch_at(&d.train, VKT_ORDER_SEQUENTIAL, 0, 4, B, T, in, tg); /* windows 16..19 */
    CHECK(in[0] == 256 && in[T] == 272 && in[2 * T] == 300 && in[3 * T] == 316,
          "sequential windows start at %d %d %d %d", in[0], in[T], in[2 * T], in[3 * T]);
    vkt_batch_at(&d.train, VKT_ORDER_SEQUENTIAL, 0, 7, B, T, in, tg); /* 28, 29, 0, 1 */
    CHECK(in[0] == 300 + 10 * 16 && in[2 * T] == 0 && in[3 * T] == 16, "wrap: %d %d %d", in[0],
          in[2 * T], in[3 * T]);
    vkt_eval_batch(&d.train, 1, B, T, in, tg);
    CHECK(in[0] == 64 && tg[0] == 65, "eval batch 1 starts at %d", in[0]);

    /* a rank's slice (MPI): rows [off, off + n) of the batch at global_B rows, in both orders
     * and for evaluation; and a loader set to a slice serves exactly those, prefetched too */
    for (int order = 0; order < 2; order++)
        for (int off = 0; off < B; off++) {
            int n = B - off;
            vkt_batch_at(&d.train, (vkt_data_order)order, 9, 5, B, T, in, tg);
            vkt_batch_slice_at(&d.train, (vkt_data_order)order, 9, 5, B, off, n, T, in2, tg2);
            CHECK(!memcmp(in + off * T, in2, sizeof(int32_t) * (size_t)(n * T)) &&
                      !memcmp(tg + off * T, tg2, sizeof(int32_t) * (size_t)(n * T)),
                  "order %d: rows %d.. of the slice differ from the whole batch's", order, off);
        }
    vkt_eval_batch(&d.train, 3, B, T, in, tg);
    vkt_eval_batch_slice(&d.train, 3, B, 2, 2, T, in2, tg2);
    CHECK(!memcmp(in + 2 * T, in2, sizeof(int32_t) * 2 * T), "an eval slice differs");
    for (int prefetch = 0; prefetch <= 2; prefetch += 2) {
        vkt_loader *l = vkt_loader_create(&d.train, VKT_ORDER_RANDOM, 9, 2, T, prefetch, err,
                                          sizeof err);
        CHECK(l != NULL, "%s", err);
        if (!l) continue;
        vkt_loader_set_slice(l, B, 2);
        int same = 1;
        for (uint64_t k = 0; k < 5; k++) {
            vkt_loader_next(l, 2, T, in2, tg2);
            vkt_batch_at(&d.train, VKT_ORDER_RANDOM, 9, k, B, T, in, tg);
            same &= !memcmp(in + 2 * T, in2, sizeof(int32_t) * 2 * T);
        }
        CHECK(same, "a loader on rows 2..3 of 4 (prefetch %d) serves other rows", prefetch);
        vkt_loader_destroy(l);
    }

    /* the loader hands out batch 0, 1, 2...; state = seed + next index, so a loader set to a
     * saved state continues with the same next batch */
    vkt_loader *l = vkt_loader_create(&d.train, VKT_ORDER_RANDOM, 77, B, T, 3, err, sizeof err);
    CHECK(l != NULL, "%s", err);
    for (int k = 0; k < 5; k++) vkt_loader_next(l, B, T, in, tg);
    vkt_loader_state saved = vkt_loader_get_state(l);
    CHECK(saved.seed == 77 && saved.batches == 5, "state %llu %llu",
          (unsigned long long)saved.seed, (unsigned long long)saved.batches);
    vkt_loader_next(l, B, T, in, tg);
    vkt_loader *r = vkt_loader_create(&d.train, VKT_ORDER_RANDOM, 1, B, T, 3, err, sizeof err);
    vkt_loader_set_state(r, saved);
    vkt_loader_next(r, B, T, in2, tg2);
    CHECK(!memcmp(in, in2, sizeof in) && !memcmp(tg, tg2, sizeof tg),
          "a loader set to the saved state gives another next batch");
    vkt_batch_at(&d.train, VKT_ORDER_RANDOM, 77, 5, B, T, in2, tg2);
    CHECK(!memcmp(in, in2, sizeof in), "loader batch 5 is not vkt_batch_at(5)");
    vkt_loader_destroy(l);
    vkt_loader_destroy(r);

    /* prefetching (any depth) changes nothing, across T changes and seeks */
    CHECK(same_batches(&d.train, VKT_ORDER_RANDOM, 1), "prefetch 1 differs");
    CHECK(same_batches(&d.train, VKT_ORDER_RANDOM, 4), "prefetch 4 differs");
    CHECK(same_batches(&d.train, VKT_ORDER_SEQUENTIAL, 2), "sequential prefetch differs");
    vkt_data_close(&d);
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    test_shards();
    test_dataset();
    test_loader();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "cleanup failed\n");
    return vkt_test_failures ? 1 : 0;
}
