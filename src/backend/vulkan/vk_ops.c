/* The vulkan backend's ops: each records into the open command buffer (vk_context.c) one
 * or two dispatches of a shader from shaders/ (registered in CMakeLists.txt), followed by a
 * barrier. Semantics are those of src/backend/cpu/cpu_ops.c; the shaders say how they map. */
#include <math.h>
#include <string.h>

#include "backend/vkt_spirv.h"
#include "backend/vulkan/vk_ops.h"

#define MAXG 65535u

/* A 1-D launch of `threads` threads in workgroups of `wg`, spread over x and y. */
static void grid1d(size_t threads, uint32_t wg, uint32_t *gx, uint32_t *gy) {
    size_t groups = (threads + wg - 1) / wg;
    if (groups == 0) {
        *gx = *gy = 0;
        return;
    }
    *gx = groups < MAXG ? (uint32_t)groups : MAXG;
    *gy = (uint32_t)((groups + *gx - 1) / *gx);
}

static void run(vkt_backend *be, const char *name, int nb, const vkt_ptr *ptrs, void *push,
                uint32_t push_size, uint32_t *offs, size_t threads, uint32_t wg) {
    vkt_vk_ctx *c = vkt_vk(be);
    vkt_vk_bindings b;
    vkt_vk_bind(c, &b, nb, ptrs);
    memcpy(offs, b.elem_off, (size_t)nb * sizeof *offs);
    uint32_t gx, gy;
    grid1d(threads, wg, &gx, &gy);
    vkt_vk_dispatch(c, name, &b, push, push_size, gx, gy, 1);
}

/* ---- device ---- */

int vkt_vk_op_init(vkt_backend *be, char *err, size_t errlen) {
    return vkt_vk_context_init(be, err, errlen);
}
void vkt_vk_op_shutdown(vkt_backend *be) {
    vkt_vk_ctx *c = vkt_vk(be);
    if (c && c->scratch) vkt_vk_free(c, c->scratch);
    if (c) c->scratch = NULL;
    vkt_vk_context_shutdown(be);
}
void vkt_vk_op_synchronize(vkt_backend *be) { vkt_vk_flush(vkt_vk(be)); }

/* ---- memory ---- */

vkt_buf *vkt_vk_op_alloc(vkt_backend *be, size_t bytes, char *err, size_t errlen) {
    return vkt_vk_alloc(vkt_vk(be), bytes, err, errlen);
}
void vkt_vk_op_free(vkt_backend *be, vkt_buf *buf) { vkt_vk_free(vkt_vk(be), buf); }
void vkt_vk_op_upload(vkt_backend *be, vkt_ptr dst, const void *src, size_t bytes) {
    if (bytes) vkt_vk_upload(vkt_vk(be), dst, src, bytes);
}
void vkt_vk_op_download(vkt_backend *be, void *dst, vkt_ptr src, size_t bytes) {
    if (bytes)
        vkt_vk_download(vkt_vk(be), dst, src, bytes);
    else
        vkt_vk_flush(vkt_vk(be));
}
void vkt_vk_op_fill(vkt_backend *be, vkt_ptr dst, float value, size_t n) {
    if (!n) return;
    vkt_vk_ctx *c = vkt_vk(be);
    uint32_t bits;
    memcpy(&bits, &value, 4);
    VKT_VK_ASSERT(dst.off % 4 == 0 && dst.off + n * 4 <= dst.buf->size);
    c->d.vkCmdFillBuffer(vkt_vk_cmd(c), vkt_vk_buffer_of(c, dst.buf), dst.buf->off + dst.off,
                         n * 4, bits);
    vkt_vk_barrier(c);
}
void vkt_vk_op_copy(vkt_backend *be, vkt_ptr dst, vkt_ptr src, size_t bytes) {
    if (!bytes) return;
    vkt_vk_ctx *c = vkt_vk(be);
    VKT_VK_ASSERT(dst.off + bytes <= dst.buf->size && src.off + bytes <= src.buf->size);
    VkBufferCopy bc = {.srcOffset = src.buf->off + src.off,
                       .dstOffset = dst.buf->off + dst.off,
                       .size = bytes};
    c->d.vkCmdCopyBuffer(vkt_vk_cmd(c), vkt_vk_buffer_of(c, src.buf),
                         vkt_vk_buffer_of(c, dst.buf), 1, &bc);
    vkt_vk_barrier(c);
}

/* ---- ops ---- */

void vkt_vk_op_encoder_forward(vkt_backend *be, vkt_ptr out, vkt_ptr tokens, vkt_ptr wte,
                               vkt_ptr wpe, int B, int T, int C) {
    struct { uint32_t B, T, C, o[4]; } pc = {(uint32_t)B, (uint32_t)T, (uint32_t)C, {0}};
    vkt_ptr p[4] = {out, tokens, wte, wpe};
    run(be, "encoder_forward", 4, p, &pc, sizeof pc, pc.o, (size_t)B * T * C, 64);
}
void vkt_vk_op_encoder_backward(vkt_backend *be, vkt_ptr dwte, vkt_ptr dwpe, vkt_ptr dout,
                                vkt_ptr tokens, int B, int T, int C) {
    struct { uint32_t B, T, C, o[4]; } pc = {(uint32_t)B, (uint32_t)T, (uint32_t)C, {0}};
    vkt_ptr p[4] = {dwte, dwpe, dout, tokens};
    run(be, "encoder_backward", 4, p, &pc, sizeof pc, pc.o, (size_t)C, 64);
}

typedef struct { uint32_t N, C, mode, o[8]; } ln_push;
void vkt_vk_op_layernorm_forward(vkt_backend *be, vkt_ptr out, vkt_ptr mean, vkt_ptr rstd,
                                 vkt_ptr inp, vkt_ptr weight, vkt_ptr bias, int N, int C) {
    ln_push pc = {(uint32_t)N, (uint32_t)C, 0, {0}};
    vkt_ptr p[6] = {out, mean, rstd, inp, weight, bias};
    run(be, vkt_vk(be)->fp64 ? "layernorm_forward_f64" : "layernorm_forward", 6, p, &pc, sizeof pc, pc.o, (size_t)N, 64);
}
void vkt_vk_op_layernorm_backward(vkt_backend *be, vkt_ptr dinp, vkt_ptr dweight,
                                  vkt_ptr dbias, vkt_ptr dout, vkt_ptr inp, vkt_ptr weight,
                                  vkt_ptr mean, vkt_ptr rstd, int N, int C) {
    ln_push pc = {(uint32_t)N, (uint32_t)C, 0, {0}};
    vkt_ptr p[8] = {dinp, dweight, dbias, dout, inp, weight, mean, rstd};
    const char *name = vkt_vk(be)->fp64 ? "layernorm_backward_f64" : "layernorm_backward";
    run(be, name, 8, p, &pc, sizeof pc, pc.o, (size_t)N, 64);
    pc.mode = 1;
    run(be, name, 8, p, &pc, sizeof pc, pc.o, (size_t)C, 64);
}

void vkt_vk_op_matmul(vkt_backend *be, vkt_ptr c_, vkt_ptr a, vkt_ptr b, vkt_ptr bias, int M,
                      int N, int K, int trans_a, int trans_b, float alpha, float beta) {
    vkt_vk_ctx *c = vkt_vk(be);
    vkt_matmul_push pc = {
        .M = (uint32_t)M, .N = (uint32_t)N, .K = (uint32_t)K,
        .flags = (trans_a ? VKT_MATMUL_TRANS_A : 0u) | (trans_b ? VKT_MATMUL_TRANS_B : 0u) |
                 (bias.buf ? VKT_MATMUL_BIAS : 0u),
        .alpha = alpha, .beta = beta,
    };
    vkt_ptr p[4] = {c_, a, b, bias};
    vkt_vk_bindings bd;
    vkt_vk_bind(c, &bd, 4, p);
    pc.off_c = bd.elem_off[0];
    pc.off_a = bd.elem_off[1];
    pc.off_b = bd.elem_off[2];
    pc.off_bias = bd.elem_off[3];
    /* matmul_f32: 64x64 outputs per workgroup (its default specialization) */
    vkt_vk_dispatch(c, "matmul_f32", &bd, &pc, sizeof pc, (uint32_t)(N + 63) / 64,
                    (uint32_t)(M + 63) / 64, 1);
}

typedef struct { uint32_t n, m, o[2]; float s; } red_push;
void vkt_vk_op_bias_backward(vkt_backend *be, vkt_ptr dbias, vkt_ptr dout, int M, int N) {
    red_push pc = {(uint32_t)N, (uint32_t)M, {0}, 0};
    vkt_ptr p[2] = {dbias, dout};
    run(be, "bias_backward", 2, p, &pc, sizeof pc, pc.o, (size_t)N, 256);
}

typedef struct { uint32_t B, T, C, NH, o[5]; float scale; } att_push;
void vkt_vk_op_attention_forward(vkt_backend *be, vkt_ptr out, vkt_ptr att, vkt_ptr qkv, int B,
                                 int T, int C, int NH) {
    att_push pc = {(uint32_t)B, (uint32_t)T, (uint32_t)C, (uint32_t)NH, {0},
                   1.0f / sqrtf((float)(C / NH))};
    vkt_ptr p[3] = {out, att, qkv};
    run(be, vkt_vk(be)->fp64 ? "attention_forward_f64" : "attention_forward", 3, p, &pc, sizeof pc, pc.o, (size_t)B * NH * T, 64);
}
void vkt_vk_op_attention_backward(vkt_backend *be, vkt_ptr dqkv, vkt_ptr dout, vkt_ptr qkv,
                                  vkt_ptr att, int B, int T, int C, int NH) {
    vkt_vk_ctx *c = vkt_vk(be);
    size_t need = (size_t)B * NH * T * sizeof(float);
    if (!c->scratch || c->scratch->size < need) { /* the old one dies at the next flush */
        char err[256];
        if (c->scratch) vkt_vk_free(c, c->scratch);
        c->scratch = vkt_vk_alloc(c, need, err, sizeof err);
        if (!c->scratch) {
            fprintf(stderr, "vulkan: attention backward scratch: %s\n", err);
            abort();
        }
    }
    att_push pc = {(uint32_t)B, (uint32_t)T, (uint32_t)C, (uint32_t)NH, {0},
                   1.0f / sqrtf((float)(C / NH))};
    vkt_ptr p[5] = {dqkv, dout, qkv, att, vkt_at(c->scratch, 0)};
    run(be, c->fp64 ? "attention_backward_q_f64" : "attention_backward_q", 5, p, &pc, sizeof pc, pc.o, (size_t)B * NH * T, 64);
    run(be, "attention_backward_kv", 5, p, &pc, sizeof pc, pc.o, (size_t)B * NH * T, 64);
}

typedef struct { uint32_t n, o[3]; float s; } ew_push;
void vkt_vk_op_gelu_forward(vkt_backend *be, vkt_ptr out, vkt_ptr inp, size_t n) {
    ew_push pc = {(uint32_t)n, {0}, 0};
    vkt_ptr p[3] = {out, inp, out};
    run(be, "gelu_forward", 3, p, &pc, sizeof pc, pc.o, n, 256);
}
void vkt_vk_op_gelu_backward(vkt_backend *be, vkt_ptr dinp, vkt_ptr inp, vkt_ptr dout,
                             size_t n) {
    ew_push pc = {(uint32_t)n, {0}, 0};
    vkt_ptr p[3] = {dinp, inp, dout};
    run(be, "gelu_backward", 3, p, &pc, sizeof pc, pc.o, n, 256);
}
void vkt_vk_op_residual_forward(vkt_backend *be, vkt_ptr out, vkt_ptr a, vkt_ptr b, size_t n) {
    ew_push pc = {(uint32_t)n, {0}, 0};
    vkt_ptr p[3] = {out, a, b};
    run(be, "residual_forward", 3, p, &pc, sizeof pc, pc.o, n, 256);
}
void vkt_vk_op_scale(vkt_backend *be, vkt_ptr x, float s, size_t n) {
    ew_push pc = {(uint32_t)n, {0}, s};
    vkt_ptr p[3] = {x, x, x};
    run(be, "scale", 3, p, &pc, sizeof pc, pc.o, n, 256);
}

void vkt_vk_op_softmax_xent(vkt_backend *be, vkt_ptr losses, vkt_ptr logits, vkt_ptr targets,
                            int N, int V, int Vp, float grad_scale, int want_grad) {
    struct { uint32_t N, V, Vp, o[3], want_grad; float grad_scale; } pc = {
        (uint32_t)N, (uint32_t)V, (uint32_t)Vp, {0}, want_grad ? 1u : 0u, grad_scale};
    vkt_ptr p[3] = {losses, logits, targets};
    /* one workgroup of 64 per row */
    run(be, "softmax_xent", 3, p, &pc, sizeof pc, pc.o, (size_t)N * 64, 64);
}

void vkt_vk_op_adamw(vkt_backend *be, vkt_ptr params, vkt_ptr grads, vkt_ptr m, vkt_ptr v,
                     size_t n, const vkt_adamw_args *a) {
    struct {
        uint32_t n, o[5], has_norm;
        float lr, beta1, beta2, eps, weight_decay, grad_scale, bc1, bc2, max_norm;
    } pc = {
        .n = (uint32_t)n, .has_norm = a->norm_sq.buf ? 1u : 0u,
        .lr = a->lr, .beta1 = a->beta1, .beta2 = a->beta2, .eps = a->eps,
        .weight_decay = a->weight_decay, .grad_scale = a->grad_scale,
        .bc1 = (float)(1.0 - pow(a->beta1, a->t)), .bc2 = (float)(1.0 - pow(a->beta2, a->t)),
        .max_norm = a->max_norm,
    };
    vkt_ptr p[5] = {params, grads, m, v, a->norm_sq};
    run(be, "adamw", 5, p, &pc, sizeof pc, pc.o, n, 256);
}

void vkt_vk_op_sumsq(vkt_backend *be, vkt_ptr out, vkt_ptr x, size_t n) {
    red_push pc = {(uint32_t)n, 0, {0}, 0};
    vkt_ptr p[2] = {out, x};
    run(be, "sumsq", 2, p, &pc, sizeof pc, pc.o, 256, 256); /* one workgroup */
}
void vkt_vk_op_sum_into(vkt_backend *be, vkt_ptr out, vkt_ptr x, size_t n, float scale) {
    red_push pc = {(uint32_t)n, 0, {0}, scale};
    vkt_ptr p[2] = {out, x};
    run(be, "sum_into", 2, p, &pc, sizeof pc, pc.o, 256, 256);
}
