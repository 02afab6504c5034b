/* Sampling: greedy picks the largest logit, top-k never leaves the k largest, draws follow the
 * softmax at the temperature, and generation is deterministic in its seed. */
#include <math.h>
#include <stdint.h>

#include "vkt_test.h"
#include "vktrain/model.h"

static void test_sample_logits(void) {
    float logits[5] = {1.0f, 3.0f, 0.5f, 2.0f, -1.0f};
    uint64_t rng = 7;
    vkt_sample_opts greedy = {0.0f, 0, 1};
    CHECK(vkt_sample_logits(logits, 5, &greedy, &rng) == 1, "greedy");
    vkt_sample_opts top1 = {1.0f, 1, 1}, top2 = {1.0f, 2, 1}, all = {1.0f, 0, 1},
                    hot = {0.5f, 0, 1};
    int counts[5] = {0}, counts_hot[5] = {0}, outside = 0;
    const int N = 20000;
    for (int i = 0; i < N; i++) {
        if (vkt_sample_logits(logits, 5, &top1, &rng) != 1) outside++;
        int k = vkt_sample_logits(logits, 5, &top2, &rng);
        if (k != 1 && k != 3) outside++;
        counts[vkt_sample_logits(logits, 5, &all, &rng)]++;
        counts_hot[vkt_sample_logits(logits, 5, &hot, &rng)]++;
    }
    CHECK(outside == 0, "%d draws outside the top k", outside);
    /* frequencies within 4 standard deviations of softmax(logits / temperature) */
    for (int pass = 0; pass < 2; pass++) {
        double temp = pass ? 0.5 : 1.0, z = 0;
        for (int i = 0; i < 5; i++) z += exp(logits[i] / temp);
        for (int i = 0; i < 5; i++) {
            double p = exp(logits[i] / temp) / z, sd = sqrt(N * p * (1 - p));
            int c = pass ? counts_hot[i] : counts[i];
            CHECK(fabs(c - N * p) < 4 * sd + 1, "temperature %.1f token %d: %d draws, expected %.0f",
                  temp, i, c, N * p);
        }
    }
}

static void test_generate(void) {
    char err[256];
    int dev = vkt_device_resolve("cpu:0", err, sizeof err);
    vkt_backend *be = vkt_backend_create(dev, err, sizeof err);
    vkt_gpt2_shape s = {.max_seq_len = 8, .vocab_size = 40, .padded_vocab_size = 64,
                        .num_layers = 1, .num_heads = 2, .channels = 16};
    vkt_model *m = be ? vkt_model_create(be, &s, 1, 8, err, sizeof err) : NULL;
    CHECK(m != NULL, "%s", err);
    if (!m) return;
    vkt_model_init_random(m, 3);
    int32_t a[32] = {1, 2, 3}, b[32] = {1, 2, 3}, c[32] = {1, 2, 3};
    vkt_sample_opts o = {1.0f, 0, 99};
    /* 20 new tokens: more than the 8 positions, so the context window slides */
    CHECK(vkt_generate(m, a, 3, 20, &o, NULL, NULL) == 20, "count");
    vkt_generate(m, b, 3, 20, &o, NULL, NULL);
    o.seed = 100;
    vkt_generate(m, c, 3, 20, &o, NULL, NULL);
    CHECK(!memcmp(a, b, sizeof a), "the same seed gave different text");
    CHECK(memcmp(a, c, sizeof a), "another seed gave the same 20 tokens");
    int ok = 1;
    for (int i = 0; i < 23; i++) ok &= a[i] >= 0 && a[i] < 40;
    CHECK(ok, "a generated token is outside the real vocabulary");
    vkt_model_destroy(m);
    vkt_backend_destroy(be);
}

int main(void) {
    test_sample_logits();
    test_generate();
    return vkt_test_failures ? 1 : 0;
}
