/* Token loading (byte-level text and llm.c shards), the validation split, and the loader:
 * determinism from a seed, resume from a saved state, fixed evaluation batches, and each kind
 * of bad file refused with a message naming it. */
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

/* An llm.c shard: 256 int32 header {magic, version, ntok}, then ntok uint16 tokens; body_tokens
 * lets a test write fewer tokens than the header claims. */
static void write_shard(const char *name, int32_t magic, int32_t version, int32_t ntok,
                        const uint16_t *toks, int body_tokens) {
    int32_t header[256] = {magic, version, ntok};
    FILE *f = fopen(path_of(name), "wb");
    fwrite(header, sizeof header, 1, f);
    fwrite(toks, sizeof(uint16_t), (size_t)body_tokens, f);
    fclose(f);
}

static void write_text(const char *name, const void *data, size_t len) {
    FILE *f = fopen(path_of(name), "wb");
    fwrite(data, 1, len, f);
    fclose(f);
}

static void expect_error(const char *name, int vocab, const char *needle) {
    vkt_tokens t;
    char err[512] = "";
    int rc = vkt_tokens_load(path_of(name), vocab, &t, err, sizeof err);
    CHECK(rc == 2 && strstr(err, path_of(name)) && strstr(err, needle),
          "%s: rc %d, message '%s' (want '%s')", name, rc, err, needle);
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    char err[512];
    vkt_tokens t, v;

    /* byte-level text: every byte value round-trips as its own token */
    unsigned char bytes[512];
    for (int i = 0; i < 512; i++) bytes[i] = (unsigned char)(i * 7 + 3);
    write_text("bytes.txt", bytes, sizeof bytes);
    CHECK(vkt_tokens_load(path_of("bytes.txt"), 256, &t, err, sizeof err) == 0, "%s", err);
    CHECK(t.n == 512, "n %zu", t.n);
    int same = 1;
    for (size_t i = 0; i < t.n && i < 512; i++) same &= t.ids[i] == bytes[i];
    CHECK(same, "byte tokens differ from the bytes");

    /* split: the last 10% becomes validation, in order */
    CHECK(vkt_tokens_split(&t, 0.1, &v, err, sizeof err) == 0, "%s", err);
    CHECK(t.n == 461 && v.n == 51 && v.ids[0] == bytes[461] && v.ids[50] == bytes[511],
          "split %zu / %zu", t.n, v.n);

    /* loader: the same seed gives the same batches; targets are inputs shifted by one */
    enum { B = 3, T = 8 };
    int32_t in1[B * T], tg1[B * T], in2[B * T], tg2[B * T];
    vkt_loader a, b;
    vkt_loader_init(&a, &t, 7);
    vkt_loader_init(&b, &t, 7);
    for (int step = 0; step < 5; step++) {
        vkt_loader_next(&a, B, T, in1, tg1);
        vkt_loader_next(&b, B, T, in2, tg2);
        CHECK(!memcmp(in1, in2, sizeof in1) && !memcmp(tg1, tg2, sizeof tg1), "step %d", step);
    }
    for (int i = 0; i + 1 < T; i++) CHECK(tg1[i] == in1[i + 1], "shift at %d", i);
    /* resume: a loader given a saved state continues with the same next batch */
    vkt_loader_state saved = a.state;
    vkt_loader_next(&a, B, T, in1, tg1);
    vkt_loader c;
    vkt_loader_init(&c, &t, 12345);
    c.state = saved;
    vkt_loader_next(&c, B, T, in2, tg2);
    CHECK(!memcmp(in1, in2, sizeof in1) && a.state.batches == 6, "resumed loader differs");
    vkt_loader_init(&c, &t, 8);
    vkt_loader_next(&c, B, T, in2, tg2);
    CHECK(memcmp(in1, in2, sizeof in1) != 0, "another seed gives the same batch");
    /* evaluation batches are fixed windows laid end to end */
    vkt_loader_eval_batch(&v, 0, 2, 8, in1, tg1);
    CHECK(in1[0] == v.ids[0] && in1[8] == v.ids[8] && tg1[15] == v.ids[16], "eval batch 0");
    vkt_tokens_free(&t);
    vkt_tokens_free(&v);

    /* an llm.c shard trains as it is */
    uint16_t toks[300];
    for (int i = 0; i < 300; i++) toks[i] = (uint16_t)(i * 131 % 50257);
    write_shard("good.bin", VKT_SHARD_MAGIC, VKT_SHARD_VERSION, 300, toks, 300);
    CHECK(vkt_tokens_load(path_of("good.bin"), 50257, &t, err, sizeof err) == 0, "%s", err);
    CHECK(t.n == 300 && t.ids[299] == toks[299], "shard tokens");
    vkt_tokens_free(&t);

    /* bad input: each is refused with exit status 2 and the file named */
    write_shard("version.bin", VKT_SHARD_MAGIC, 7, 300, toks, 300);
    expect_error("version.bin", 50257, "version 7");
    write_shard("short.bin", VKT_SHARD_MAGIC, VKT_SHARD_VERSION, 300, toks, 100);
    expect_error("short.bin", 50257, "truncated");
    write_text("header.bin", (int32_t[]){VKT_SHARD_MAGIC, 1, 5}, 12);
    expect_error("header.bin", 50257, "truncated");
    expect_error("good.bin", 1000, "vocab_size");
    write_text("empty.txt", "", 0);
    expect_error("empty.txt", 256, "empty");
    expect_error("missing.txt", 256, "cannot open");
    write_text("small_vocab.txt", "hello", 5);
    expect_error("small_vocab.txt", 100, "vocab_size >= 256");
    expect_error("", 256, "cannot"); /* the directory itself */

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "cleanup failed\n");
    return vkt_test_finish("test_data");
}
