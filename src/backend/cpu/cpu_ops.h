/* The reference kernels of the cpu backend: plain C11 with OpenMP, deterministic for any
 * thread count (every output element is summed in a fixed order by one thread). */
#ifndef VKTRAIN_CPU_OPS_H
#define VKTRAIN_CPU_OPS_H

#include <stdio.h>
#include <stdlib.h>

#include "backend/backend_impl.h"

#define VKT_CPU_ASSERT(cond)                                                                  \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "vktrain: internal error at %s:%d: %s\n", __FILE__, __LINE__,     \
                    #cond);                                                                   \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

void *vkt_cpu_addr(vkt_ptr p);
long vkt_cpu_num_threads(void);
/* The calling thread's scratch memory for slot 0..3 (grown on demand, kept for the next
 * call): ops allocate nothing inside a step once warm. */
void *vkt_cpu_scratch(int slot, size_t bytes);
/* x(n) with every element rounded to fp16 (precision = fp16), layout unchanged, in the calling
 * thread's scratch slot `slot`. */
float *vkt_cpu_rounded_f16(const float *x, size_t n, int slot);
/* The n values of matmul operand p as floats: an fp16 tensor decoded into scratch slot
 * `slot`; an fp32 one as it is, or (round, under precision = fp16) rounded into the slot. */
const float *vkt_cpu_operand(vkt_backend *be, vkt_ptr p, size_t n, int slot, int round);
void vkt_cpu_to_half(vkt_backend *, vkt_ptr dst, vkt_ptr src, size_t n);
/* 1 when this backend runs the reference kernels everywhere (option "kernels" = "reference",
 * or VKT_CPU_KERNELS=reference when it was created); 0: the fast path (cpu_gemm.c). */
int vkt_cpu_reference(const vkt_backend *be);
/* The fast path's matmul (CBLAS when built with one) and its name for --list-devices. */
void vkt_cpu_fast_matmul(vkt_backend *, vkt_ptr c, vkt_ptr a, vkt_ptr b, vkt_ptr bias, int M,
                         int N, int K, int trans_a, int trans_b, float alpha, float beta);
const char *vkt_cpu_gemm_name(void);
void vkt_cpu_fast_softmax_xent(vkt_backend *, vkt_ptr losses, vkt_ptr logits, vkt_ptr targets,
                               int N, int V, int Vp, float grad_scale, int want_grad);

void vkt_cpu_encoder_forward(vkt_backend *, vkt_ptr out, vkt_ptr tokens, vkt_ptr wte,
                             vkt_ptr wpe, int B, int T, int C);
void vkt_cpu_encoder_backward(vkt_backend *, vkt_ptr dwte, vkt_ptr dwpe, vkt_ptr dout,
                              vkt_ptr tokens, int B, int T, int C);
void vkt_cpu_layernorm_forward(vkt_backend *, vkt_ptr out, vkt_ptr mean, vkt_ptr rstd,
                               vkt_ptr inp, vkt_ptr weight, vkt_ptr bias, int N, int C);
void vkt_cpu_layernorm_backward(vkt_backend *, vkt_ptr dinp, vkt_ptr dweight, vkt_ptr dbias,
                                vkt_ptr dout, vkt_ptr inp, vkt_ptr weight, vkt_ptr mean,
                                vkt_ptr rstd, int N, int C);
void vkt_cpu_matmul(vkt_backend *, vkt_ptr c, vkt_ptr a, vkt_ptr b, vkt_ptr bias, int M, int N,
                    int K, int trans_a, int trans_b, float alpha, float beta);
void vkt_cpu_bias_backward(vkt_backend *, vkt_ptr dbias, vkt_ptr dout, int M, int N);
void vkt_cpu_attention_forward(vkt_backend *, vkt_ptr out, vkt_ptr lse, vkt_ptr qkv, int B,
                               int T, int C, int NH);
void vkt_cpu_attention_backward(vkt_backend *, vkt_ptr dqkv, vkt_ptr dout, vkt_ptr qkv,
                                vkt_ptr lse, int B, int T, int C, int NH);
void vkt_cpu_gelu_forward(vkt_backend *, vkt_ptr out, vkt_ptr inp, size_t n);
void vkt_cpu_gelu_backward(vkt_backend *, vkt_ptr dinp, vkt_ptr inp, vkt_ptr dout, size_t n);
void vkt_cpu_residual_forward(vkt_backend *, vkt_ptr out, vkt_ptr a, vkt_ptr b, size_t n);
void vkt_cpu_softmax_xent(vkt_backend *, vkt_ptr losses, vkt_ptr logits, vkt_ptr targets, int N,
                          int V, int Vp, float grad_scale, int want_grad);
void vkt_cpu_adamw(vkt_backend *, vkt_ptr params, vkt_ptr grads, vkt_ptr m, vkt_ptr v, size_t n,
                   const vkt_adamw_args *a);
void vkt_cpu_sumsq(vkt_backend *, vkt_ptr out, vkt_ptr x, size_t n);
void vkt_cpu_sum_into(vkt_backend *, vkt_ptr out, vkt_ptr x, size_t n, float scale);
void vkt_cpu_scale(vkt_backend *, vkt_ptr x, float s, size_t n);

#endif
