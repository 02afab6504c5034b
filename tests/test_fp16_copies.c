/* precision = fp16's operand copies (docs/backends.md, "fp16 operands"): a model created under
 * fp16 keeps fp16 copies of its parameters and matmul inputs and hands them to vkt_matmul;
 * one created before precision became fp16 has none, so the backend rounds the fp32 tensors
 * on every call. Both must compute exactly the same thing, on the reference backend (and on
 * VKT_TEST_DEVICE when set):
 *  - the loss and every gradient of a forward + backward, bitwise;
 *  - after an AdamW update (which must refresh the weights' copy), the parameters and the
 *    next forward's loss, bitwise; a second update the same;
 *  - vkt_model_device_bytes equals vkt_gpt2_memory_bytes(..., fp16 = 1), and the memory plan
 *    counts the copies in their own class. */
#include <stdint.h>
#include <string.h>

#include "util/rng.h"
#include "vkt_test.h"
#include "vktrain/backend.h"
#include "vktrain/model.h"
#include "vktrain/train.h"

/* The device under test: cpu:0's reference kernels, or VKT_TEST_DEVICE (as
 * test_vulkan_fp16_copies runs it: vulkan:0, where the producers write the copies in their
 * own kernels); a device that is not there skips (77). */
static vkt_backend *reference(void) {
    char err[512] = "";
    const char *want = getenv("VKT_TEST_DEVICE");
    int dev = vkt_device_resolve(want ? want : "cpu:0", err, sizeof err);
    if (dev < 0 && want) {
        printf("test_fp16_copies: %s not here (%s): skipped\n", want, err);
        exit(77);
    }
    vkt_backend *be = dev >= 0 ? vkt_backend_create(dev, err, sizeof err) : NULL;
    if (!be || (!want && vkt_backend_set_option(be, "kernels", "reference", err, sizeof err))) {
        fprintf(stderr, "no backend to test: %s\n", err);
        exit(1);
    }
    return be;
}

/* precision = fp16, and on a device with matmul tiers one tier for both models (the auto
 * choice times each model's shapes anew, and two tiers sum in other orders): VKT_TEST_MATMUL,
 * default fp16. */
static void set_fp16(vkt_backend *be) {
    char err[512];
    const char *tier = getenv("VKT_TEST_MATMUL");
    if (vkt_backend_set_option(be, "precision", "fp16", err, sizeof err) ||
        vkt_backend_set_option(be, "matmul", tier ? tier : "fp16", err, sizeof err)) {
        fprintf(stderr, "precision fp16: %s\n", err);
        exit(1);
    }
}

/* The count of elements where a and b differ in their bits. */
static size_t differ(const float *a, const float *b, size_t n) {
    size_t d = 0;
    for (size_t i = 0; i < n; i++) d += memcmp(a + i, b + i, sizeof *a) != 0;
    return d;
}

static void compare_buffers(vkt_model *x, vkt_model *y, vkt_buf *bx, vkt_buf *by,
                            const char *what) {
    size_t np = vkt_model_num_params(x);
    float *a = malloc(np * sizeof *a), *b = malloc(np * sizeof *b);
    vkt_download(vkt_model_backend(x), a, vkt_at(bx, 0), np * sizeof *a);
    vkt_download(vkt_model_backend(y), b, vkt_at(by, 0), np * sizeof *b);
    size_t d = differ(a, b, np);
    CHECK(d == 0, "%s: %zu of %zu differ between the model with fp16 copies and the one without",
          what, d, np);
    free(a), free(b);
}

int main(void) {
    /* odd sizes: V=20 pads to 64, T=5 < block 8, C = 12 (rows of 12 halves: 8-byte aligned
     * rows only every other row, so aligned and unaligned loads are both exercised on GPUs) */
    vkt_gpt2_shape s = {.max_seq_len = 8, .vocab_size = 20, .padded_vocab_size = vkt_padded_vocab(20),
                        .num_layers = 2, .num_heads = 2, .channels = 12};
    const int B = 2, T = 5;
    char err[512] = "";
    vkt_backend *be_copies = reference(), *be_plain = reference();
    set_fp16(be_copies); /* before the model: it keeps fp16 copies */
    vkt_model *mc = vkt_model_create(be_copies, &s, B, T, err, sizeof err);
    CHECK(mc != NULL, "model with copies: %s", err);
    vkt_model *mp = vkt_model_create(be_plain, &s, B, T, err, sizeof err);
    CHECK(mp != NULL, "model without: %s", err);
    if (!mc || !mp) return vkt_test_finish("test_fp16_copies");
    set_fp16(be_plain); /* after: the backend rounds the fp32 operands itself */

    vkt_model_memory with, without;
    vkt_gpt2_memory_plan(&s, B, T, 1, &with);
    vkt_gpt2_memory_plan(&s, B, T, 0, &without);
    CHECK(vkt_model_device_bytes(mc) == (size_t)vkt_gpt2_memory_bytes(&s, B, T, 1) &&
              vkt_model_device_bytes(mc) == with.total,
          "allocated %zu bytes with copies; estimate %.0f, plan %llu",
          vkt_model_device_bytes(mc), vkt_gpt2_memory_bytes(&s, B, T, 1),
          (unsigned long long)with.total);
    CHECK(vkt_model_device_bytes(mp) == without.total && with.bytes[VKT_MEM_FP16] > 0 &&
              without.bytes[VKT_MEM_FP16] == 0 &&
              with.total == without.total + with.bytes[VKT_MEM_FP16],
          "the plan's fp16 class: %llu bytes (total %llu vs %llu without)",
          (unsigned long long)with.bytes[VKT_MEM_FP16], (unsigned long long)with.total,
          (unsigned long long)without.total);
    printf("fp16 copies: %llu bytes beside %llu (%s)\n",
           (unsigned long long)with.bytes[VKT_MEM_FP16], (unsigned long long)without.total,
           vkt_mem_class_name(VKT_MEM_FP16));

    /* parameters whose fp16 rounding matters: values between fp16's steps */
    size_t np = vkt_model_num_params(mc);
    float *p = malloc(np * sizeof *p);
    vkt_rng rng;
    vkt_rng_seed(&rng, 7);
    for (size_t i = 0; i < np; i++) p[i] = (float)(0.3 * vkt_rng_normal(&rng));
    vkt_model_set_params(mc, p);
    vkt_model_set_params(mp, p);
    int32_t in[10], tg[10];
    for (int i = 0; i < B * T; i++) {
        in[i] = (int32_t)vkt_rng_below(&rng, 20);
        tg[i] = (int32_t)vkt_rng_below(&rng, 20);
    }
    for (int step = 1; step <= 3; step++) {
        float loss[2];
        vkt_model *m[2] = {mc, mp};
        for (int k = 0; k < 2; k++) {
            vkt_model_zero_grad(m[k]);
            loss[k] = vkt_model_forward(m[k], in, tg, B, T, 1.0f / (B * T), 1);
            vkt_model_backward(m[k], B, T);
        }
        CHECK(memcmp(&loss[0], &loss[1], sizeof loss[0]) == 0 && loss[0] > 0,
              "step %d: loss %.9g with fp16 copies, %.9g without", step, loss[0], loss[1]);
        printf("step %d: loss %.7f with copies, %.7f without\n", step, loss[0], loss[1]);
        compare_buffers(mc, mp, vkt_model_grads(mc), vkt_model_grads(mp), "gradients");
        /* a large learning rate: the update moves the weights across many fp16 steps, so a
         * stale copy would change the next loss */
        vkt_optim_args a = {.lr = 3e-2f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f,
                            .weight_decay = 0.1f, .grad_scale = 1.0f, .t = step};
        vkt_optim_adamw_step(mc, &a);
        vkt_optim_adamw_step(mp, &a);
        compare_buffers(mc, mp, vkt_model_params(mc), vkt_model_params(mp), "parameters");
    }
    free(p);
    vkt_model_destroy(mc);
    vkt_model_destroy(mp);
    vkt_backend_destroy(be_copies);
    vkt_backend_destroy(be_plain);
    return vkt_test_finish("test_fp16_copies");
}
