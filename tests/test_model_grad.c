/* Whole-model gradient check: the analytic gradient of a tiny GPT-2 (every parameter tensor,
 * padded vocabulary included) against central finite differences of its loss. */
#include <stdint.h>

#include "util/rng.h"
#include "vkt_test.h"
#include "vktrain/backend.h"
#include "vktrain/model.h"

int main(void) {
    char err[512] = "";
    int dev = vkt_device_resolve("cpu:0", err, sizeof err);
    vkt_backend *be = dev >= 0 ? vkt_backend_create(dev, err, sizeof err) : NULL;
    if (!be) {
        fprintf(stderr, "no cpu backend: %s\n", err);
        return 1;
    }
    /* odd sizes on purpose: V=20 pads to 64, T=5 < block 8, head size 6 */
    vkt_gpt2_shape s = {.max_seq_len = 8, .vocab_size = 20, .padded_vocab_size = vkt_padded_vocab(20),
                        .num_layers = 2, .num_heads = 2, .channels = 12};
    const int B = 2, T = 5;
    vkt_model *m = vkt_model_create(be, &s, B, T, err, sizeof err);
    CHECK(m != NULL, "%s", err);
    if (!m) return 1;
    size_t np = vkt_model_num_params(m);
    const vkt_param_tensor *t = vkt_model_tensors(m);
    CHECK(s.padded_vocab_size == 64, "padded vocab %d", s.padded_vocab_size);
    CHECK(vkt_gpt2_memory_bytes(&s, B, T, 0) == (double)vkt_model_device_bytes(m),
          "memory estimate %.0f bytes, allocated %zu", vkt_gpt2_memory_bytes(&s, B, T, 0),
          vkt_model_device_bytes(m));

    /* Larger-than-GPT-2 random parameters so every path carries a clearly nonzero gradient. */
    float *p = malloc(np * sizeof(float)), *g = malloc(np * sizeof(float));
    vkt_rng rng;
    vkt_rng_seed(&rng, 42);
    for (int i = 0; i < VKT_NUM_PARAM_TENSORS; i++) {
        int is_lnw = !strcmp(t[i].name, "ln1w") || !strcmp(t[i].name, "ln2w") ||
                     !strcmp(t[i].name, "lnfw");
        for (size_t j = 0; j < t[i].size; j++) {
            double r = vkt_rng_normal(&rng);
            p[t[i].offset + j] = (float)(is_lnw ? 1.0 + 0.2 * r : (t[i].decay ? 0.3 : 0.1) * r);
        }
    }
    vkt_model_set_params(m, p);
    int32_t in[10], tg[10];
    for (int i = 0; i < B * T; i++) {
        in[i] = (int32_t)vkt_rng_below(&rng, 20);
        tg[i] = (int32_t)vkt_rng_below(&rng, 20);
    }
    float scale = 1.0f / (B * T);
    vkt_model_zero_grad(m);
    float loss0 = vkt_model_forward(m, in, tg, B, T, scale, 1);
    vkt_model_backward(m, B, T);
    vkt_download(be, g, vkt_at(vkt_model_grads(m), 0), np * sizeof(float));
    CHECK(loss0 > 0 && isfinite(loss0), "loss %g", loss0);

    /* Central differences in float: with h = 1e-2 the rounding noise of a loss of ~3 is about
     * 3e-7 / 1e-2 = 3e-5 in the gradient, hence the absolute floor; the relative 2e-2 leaves
     * room for the O(h^2) truncation error. A wrong sign, scale or missing term fails by far
     * more. */
    const float h = 1e-2f;
    int checked = 0, bad = 0;
    for (int i = 0; i < VKT_NUM_PARAM_TENSORS; i++) {
        for (int k = 0; k < 6; k++) {
            size_t j = t[i].offset + vkt_rng_below(&rng, t[i].size);
            if (!strcmp(t[i].name, "wte") && k == 0) /* a used token's row */
                j = t[i].offset + (size_t)in[0] * s.channels + 3;
            float orig = p[j];
            p[j] = orig + h;
            vkt_model_set_params(m, p);
            double lp = vkt_model_forward(m, in, tg, B, T, scale, 0);
            p[j] = orig - h;
            vkt_model_set_params(m, p);
            double lm = vkt_model_forward(m, in, tg, B, T, scale, 0);
            p[j] = orig;
            double num = (lp - lm) / (2 * h), ana = g[j];
            double tol = 2e-2 * fmax(fabs(num), fabs(ana)) + 5e-5;
            checked++;
            if (!(fabs(num - ana) <= tol)) {
                bad++;
                fprintf(stderr, "FAIL %s[%zu]: analytic %.6g numeric %.6g\n", t[i].name,
                        j - t[i].offset, ana, num);
            }
        }
    }
    vkt_model_set_params(m, p);
    CHECK(bad == 0, "%d of %d gradient entries differ from finite differences", bad, checked);

    /* padded wte rows get exactly zero gradient (their logits are masked out) */
    double pad = 0;
    for (size_t j = (size_t)s.vocab_size * s.channels; j < (size_t)s.padded_vocab_size * s.channels; j++)
        pad += fabs(g[t[0].offset + j]);
    CHECK(pad == 0, "padded wte rows have gradient %g", pad);

    /* gradient accumulation: a second backward of the same batch doubles every gradient */
    float *g2 = malloc(np * sizeof(float));
    vkt_model_forward(m, in, tg, B, T, scale, 1);
    vkt_model_backward(m, B, T);
    vkt_download(be, g2, vkt_at(vkt_model_grads(m), 0), np * sizeof(float));
    for (size_t j = 0; j < np; j++) g[j] *= 2;
    vkt_test_close("accumulated gradients", g2, g, np, 1e-5, 1e-3);
    printf("checked %d gradient entries over %d tensors, loss %.5f\n", checked,
           VKT_NUM_PARAM_TENSORS, loss0);

    free(p);
    free(g);
    free(g2);
    vkt_model_destroy(m);
    vkt_backend_destroy(be);
    return vkt_test_finish("test_model_grad");
}
