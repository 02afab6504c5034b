/* llm.c interop: export -> import of model files gives identical parameters; llm.c's own
 * padding and bf16 files import; bad files are refused by name; [model] init_from with an
 * llm.c file takes its shape and its weights; GPT-2 token shards (vocab 50257) train. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "train_util.h"
#include "vkt_test.h"
#include "vktrain/checkpoint.h"
#include "vktrain/data.h"
#include "vktrain/train.h"

static char dir[] = "/tmp/vkt_test_llmc_XXXXXX";

static const char *path_of(const char *name) {
    static char buf[4][400];
    static int k = 0;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void write_raw(const char *name, const int32_t *header, const void *body, size_t bytes) {
    FILE *f = fopen(path_of(name), "wb");
    fwrite(header, 4, 256, f);
    fwrite(body, 1, bytes, f);
    fclose(f);
}

static void expect_bad(const char *name, const char *needle) {
    vkt_checkpoint ck;
    char err[512] = "";
    int rc = vkt_weights_read(path_of(name), &ck, err, sizeof err);
    CHECK(rc == 2 && strstr(err, path_of(name)) && strstr(err, needle),
          "%s: rc %d, '%s' (want '%s')", name, rc, err, needle);
    vkt_checkpoint_free(&ck);
}

static void test_files(void) {
    /* V = 65 (a character vocabulary): llm.c pads it to 128 rows, vktrain to 128 too; take
     * a file padded to exactly V rows to check that the padding is converted */
    vkt_gpt2_shape s = {.max_seq_len = 16, .vocab_size = 65, .padded_vocab_size = 128,
                        .num_layers = 2, .num_heads = 2, .channels = 8};
    vkt_param_tensor t[VKT_NUM_PARAM_TENSORS];
    size_t n = vkt_gpt2_param_layout(&s, t);
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = (float)((int)(i % 97) - 48) / 16.0f; /* bf16-exact */
    for (size_t i = (size_t)65 * 8; i < (size_t)128 * 8; i++) p[i] = 0; /* padded wte rows */
    char err[512];
    CHECK(vkt_llmc_model_write(path_of("m.bin"), &s, p, err, sizeof err) == 0, "%s", err);
    vkt_checkpoint ck;
    CHECK(vkt_weights_read(path_of("m.bin"), &ck, err, sizeof err) == 0, "%s", err);
    CHECK(ck.num_params == n && !memcmp(&ck.shape, &s, sizeof s) &&
              !memcmp(ck.params, p, n * sizeof *p) && !ck.adam && !ck.config_text,
          "export -> import changed the model");
    vkt_checkpoint_free(&ck);

    /* the same model as llm.c would write it with Vp = V = 65, fp32 and bf16 */
    vkt_gpt2_shape fs = s;
    fs.padded_vocab_size = 65;
    vkt_param_tensor ft[VKT_NUM_PARAM_TENSORS];
    size_t fn = vkt_gpt2_param_layout(&fs, ft);
    float *fp = malloc(fn * sizeof *fp);
    uint16_t *bf = malloc(fn * sizeof *bf);
    for (int i = 0; i < VKT_NUM_PARAM_TENSORS; i++) {
        size_t cnt = i == 0 ? (size_t)65 * 8 : t[i].size;
        memcpy(fp + ft[i].offset, p + t[i].offset, cnt * sizeof *fp);
    }
    for (size_t i = 0; i < fn; i++) {
        uint32_t u;
        memcpy(&u, &fp[i], 4);
        bf[i] = (uint16_t)(u >> 16);
    }
    int32_t h[256] = {20240326, 3, 16, 65, 2, 2, 8, 65};
    write_raw("llmc32.bin", h, fp, fn * 4);
    CHECK(vkt_weights_read(path_of("llmc32.bin"), &ck, err, sizeof err) == 0, "%s", err);
    CHECK(ck.num_params == n && ck.shape.padded_vocab_size == 128 &&
              !memcmp(ck.params, p, n * sizeof *p),
          "an llm.c fp32 file with Vp = V imports wrongly");
    vkt_checkpoint_free(&ck);
    h[1] = 5;
    write_raw("llmc16.bin", h, bf, fn * 2);
    CHECK(vkt_weights_read(path_of("llmc16.bin"), &ck, err, sizeof err) == 0, "%s", err);
    CHECK(ck.num_params == n && !memcmp(ck.params, p, n * sizeof *p),
          "an llm.c bf16 file imports wrongly");
    vkt_checkpoint_free(&ck);

    /* bad files */
    h[1] = 4;
    write_raw("v4.bin", h, fp, fn * 4);
    expect_bad("v4.bin", "version");
    h[1] = 3;
    write_raw("short.bin", h, fp, fn * 4 - 8);
    expect_bad("short.bin", "parameter bytes");
    h[5] = 3; /* 8 channels over 3 heads */
    write_raw("heads.bin", h, fp, fn * 4);
    expect_bad("heads.bin", "divisible");
    h[5] = 2;
    h[3] = 0;
    write_raw("zero.bin", h, fp, fn * 4);
    expect_bad("zero.bin", "vocab_size = 0 is outside");
    FILE *f = fopen(path_of("text.bin"), "wb");
    fputs("hello, I am not a model at all; a few more bytes to pass sixteen", f);
    fclose(f);
    expect_bad("text.bin", "neither a vktrain checkpoint nor an llm.c model");
    expect_bad("", "holds no checkpoint.bin"); /* the temp dir itself: no checkpoint */
    free(p);
    free(fp);
    free(bf);
}

/* A short run; its out_dir is then exported, re-imported and fine-tuned from. */
static void test_roundtrip_and_init_from(void) {
    vkt_config cfg;
    const char *steps[] = {"train.max_steps=3", "optim.warmup_steps=0"};
    if (small_config(&cfg, path_of("run"), steps, 2)) {
        vkt_test_failures++;
        return;
    }
    char err[1024];
    int rc = vkt_train_run(&cfg, NULL, NULL, err, sizeof err);
    CHECK(rc == 0, "train: %s", err);
    vkt_checkpoint a, b;
    CHECK(vkt_weights_read(path_of("run"), &a, err, sizeof err) == 0, "%s", err);
    CHECK(a.tokenizer != NULL, "the checkpoint does not carry the tokenizer");
    CHECK(vkt_llmc_model_write(path_of("run.bin"), &a.shape, a.params, err, sizeof err) == 0,
          "%s", err);
    CHECK(vkt_weights_read(path_of("run.bin"), &b, err, sizeof err) == 0, "%s", err);
    CHECK(a.num_params == b.num_params && !memcmp(&a.shape, &b.shape, sizeof a.shape) &&
              !memcmp(a.params, b.params, a.num_params * sizeof(float)),
          "checkpoint -> llm.c file -> import changed the parameters");

    /* init_from the llm.c file with other [model] keys: the file's shape wins, and with lr 0
     * and no weight decay the parameters stay the imported ones */
    char from[500];
    snprintf(from, sizeof from, "model.init_from=%s", path_of("run.bin"));
    const char *ft[] = {from, "model.n_layer=5", "model.n_embd=64", "train.max_steps=1",
                        "optim.warmup_steps=0", "optim.lr=0", "optim.min_lr=0",
                        "optim.weight_decay=0"};
    if (small_config(&cfg, path_of("ft"), ft, 8)) {
        vkt_test_failures++;
    } else {
        rc = vkt_train_run(&cfg, NULL, NULL, err, sizeof err);
        CHECK(rc == 0, "fine-tune from an llm.c file: %s", err);
        vkt_checkpoint c;
        CHECK(vkt_weights_read(path_of("ft"), &c, err, sizeof err) == 0, "%s", err);
        CHECK(!memcmp(&c.shape, &a.shape, sizeof a.shape) && c.num_params == a.num_params &&
                  !memcmp(c.params, a.params, a.num_params * sizeof(float)),
              "init_from did not take the llm.c file's shape and weights");
        CHECK(c.config_text && strstr(c.config_text, "n_layer = 2"),
              "the saved config does not record the imported shape");
        vkt_checkpoint_free(&c);
    }
    vkt_checkpoint_free(&a);
    vkt_checkpoint_free(&b);
}

/* Shards as llm.c's GPT-2 data scripts write them (vocab 50257) train directly. */
static void test_gpt2_shards(void) {
    uint16_t *t = malloc(20000 * sizeof *t);
    for (int i = 0; i < 20000; i++) t[i] = (uint16_t)((i * 7919u + i / 3) % 50257);
    t[5] = 50256; /* <|endoftext|>, the largest id */
    char err[1024], tr[500], va[500];
    CHECK(vkt_shard_write(path_of("gpt2_train.bin"), t, 16000, err, sizeof err) == 0, "%s", err);
    CHECK(vkt_shard_write(path_of("gpt2_val.bin"), t + 16000, 4000, err, sizeof err) == 0, "%s",
          err);
    free(t);
    snprintf(tr, sizeof tr, "data.train=%s", path_of("gpt2_train.bin"));
    snprintf(va, sizeof va, "data.val=%s", path_of("gpt2_val.bin"));
    const char *ov[] = {tr, va, "model.vocab_size=50257", "train.max_steps=2",
                        "optim.warmup_steps=0"};
    vkt_config cfg;
    if (small_config(&cfg, path_of("gpt2run"), ov, 5)) {
        vkt_test_failures++;
        return;
    }
    vkt_train_result res;
    int rc = vkt_train_run(&cfg, &res, NULL, err, sizeof err);
    /* a fresh model predicts about uniformly: loss near ln(50257) = 10.8 */
    CHECK(rc == 0 && res.steps_done == 2 && fabsf(res.last_val_loss - 10.82f) < 0.5f,
          "GPT-2 shards: rc %d, val %g: %s", rc, res.last_val_loss, err);
    vkt_checkpoint ck;
    CHECK(vkt_weights_read(path_of("gpt2run"), &ck, err, sizeof err) == 0 && !ck.tokenizer &&
              ck.shape.padded_vocab_size == 50304,
          "GPT-2 run: %s", err);
    vkt_checkpoint_free(&ck);
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    test_files();
    test_roundtrip_and_init_from();
    test_gpt2_shards();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "cleanup failed\n");
    return vkt_test_failures ? 1 : 0;
}
