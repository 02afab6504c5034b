/* The model within a device's limit for one allocation: with VKT_VULKAN_MAX_ALLOC=65536 the
 * vulkan backend reports and enforces a 64 KiB limit; a model whose activations add up to
 * many times that (each tensor below it) trains a step exactly like the cpu reference; the
 * block table grows past its first 64 blocks; a buffer over the limit is refused naming the
 * buffer, its bytes and the limit. Skips (77) without a Vulkan device unless
 * VKT_REQUIRE_BACKENDS names vulkan. */
#include <stdint.h>

#include "vkt_test.h"
#include "vktrain/model.h"

#define LIMIT 65536

/* Loss and parameter gradients of one forward + backward of a random batch on be. */
static int step(vkt_backend *be, const vkt_gpt2_shape *s, int B, int T, float *loss, float **g) {
    char err[1024];
    vkt_model *m = vkt_model_create(be, s, B, T, err, sizeof err);
    if (!m) {
        fprintf(stderr, "FAIL model: %s\n", err);
        vkt_test_failures++;
        return -1;
    }
    vkt_model_init_random(m, 7);
    int32_t *tok = malloc(sizeof(int32_t) * B * T), *tgt = malloc(sizeof(int32_t) * B * T);
    uint64_t x = 12345;
    for (int i = 0; i < B * T; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (int32_t)((x >> 33) % (uint64_t)s->vocab_size);
        tgt[i] = (int32_t)((x >> 17) % (uint64_t)s->vocab_size);
    }
    vkt_model_zero_grad(m);
    *loss = vkt_model_forward(m, tok, tgt, B, T, 1.0f, 1);
    vkt_model_backward(m, B, T);
    size_t np = vkt_model_num_params(m);
    *g = malloc(np * sizeof(float));
    vkt_download(be, *g, vkt_at(vkt_model_grads(m), 0), np * sizeof(float));
    free(tok);
    free(tgt);
    vkt_model_destroy(m);
    return (int)np;
}

int main(void) {
    setenv("VKT_VULKAN_MAX_ALLOC", "65536", 1); /* read when the devices are enumerated */
    vkt_device_info info;
    int skip;
    int dv = vkt_test_vulkan_device("test_vulkan_alloc_limit", &info, &skip);
    if (dv < 0) return skip;
    CHECK(info.max_alloc_bytes == LIMIT, "max_alloc_bytes %llu, want %d",
          (unsigned long long)info.max_alloc_bytes, LIMIT);
    char err[1024];
    vkt_backend *vk = vkt_backend_create(dv, err, sizeof err);
    vkt_backend *cpu = vkt_backend_create(vkt_device_resolve("cpu:0", err, sizeof err), err,
                                          sizeof err);
    if (!vk || !cpu) {
        fprintf(stderr, "backend: %s\n", err);
        return 1;
    }
    vkt_backend_set_option(cpu, "kernels", "reference", err, sizeof err);

    /* one byte over the limit: refused by the backend, naming the limit */
    vkt_buf *over = vkt_alloc(vk, LIMIT + 1, err, sizeof err);
    CHECK(!over && strstr(err, "largest allocation is 0.1 MiB"), "alloc %d: %s", LIMIT + 1,
          over ? "succeeded" : err);
    vkt_free(vk, over);

    /* 100 buffers of the limit: a block each, past the table's first 64; none aliases */
    enum { NB = 100 };
    vkt_buf *b[NB];
    for (int i = 0; i < NB; i++) {
        b[i] = vkt_alloc(vk, LIMIT, err, sizeof err);
        CHECK(b[i], "buffer %d: %s", i, err);
        if (b[i]) vkt_fill(vk, vkt_at(b[i], 0), (float)i, LIMIT / 4);
    }
    for (int i = 0; i < NB; i++) {
        float v[2] = {-1, -1};
        if (!b[i]) continue;
        vkt_download(vk, &v[0], vkt_at(b[i], 0), 4);
        vkt_download(vk, &v[1], vkt_at(b[i], LIMIT - 4), 4);
        CHECK(v[0] == (float)i && v[1] == (float)i, "buffer %d holds %g, %g", i, v[0], v[1]);
    }
    for (int i = 0; i < NB; i++) vkt_free(vk, b[i]);

    /* a model whose activations are many times the limit, each tensor within it */
    vkt_gpt2_shape s = {.max_seq_len = 32, .vocab_size = 60, .padded_vocab_size = 64,
                        .num_layers = 2, .num_heads = 2, .channels = 16};
    int B = 8, T = 32;
    vkt_model_memory mm;
    vkt_gpt2_memory_plan(&s, B, T, 0, &mm);
    printf("model: activations %llu bytes in %d buffers, largest %llu (%s), limit %d\n",
           (unsigned long long)mm.bytes[VKT_MEM_ACTS], mm.buffers,
           (unsigned long long)mm.largest, mm.largest_name, LIMIT);
    CHECK(mm.bytes[VKT_MEM_ACTS] > 8 * LIMIT && mm.largest <= LIMIT,
          "the shape does not test the split: activations %llu, largest %llu",
          (unsigned long long)mm.bytes[VKT_MEM_ACTS], (unsigned long long)mm.largest);
    float lv = 0, lc = 0, *gv = NULL, *gc = NULL;
    int np = step(vk, &s, B, T, &lv, &gv);
    if (np > 0 && step(cpu, &s, B, T, &lc, &gc) == np) {
        printf("loss vulkan %.7f, cpu %.7f\n", lv, lc);
        CHECK(fabs(lv - lc) <= 1e-4 * fabs(lc), "loss %g vs %g", lv, lc);
        vkt_test_close("gradients", gv, gc, (size_t)np, 1e-3, 1e-3);
    }
    free(gv);
    free(gc);

    /* logits of 8 x 32 x 128 floats = 128 KiB: over the limit, named */
    s.vocab_size = s.padded_vocab_size = 128;
    vkt_model *m = vkt_model_create(vk, &s, B, T, err, sizeof err);
    CHECK(!m && strstr(err, "activations: logits") && strstr(err, "131072 bytes") &&
              strstr(err, "(64.0 KiB)") && strstr(err, "HINT"),
          "%s", m ? "created" : err);
    if (!m) printf("refused as expected: %s\n", err);
    vkt_model_destroy(m);
    CHECK(vkt_backend_error(vk, err, sizeof err) == 0, "device failed: %s", err);

    vkt_backend_destroy(vk);
    vkt_backend_destroy(cpu);
    return vkt_test_finish("test_vulkan_alloc_limit");
}
