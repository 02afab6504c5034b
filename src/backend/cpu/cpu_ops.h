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
/* 1 when this backend runs the reference kernels everywhere (option "kernels" = "reference",
 * or VKT_CPU_KERNELS=reference when it was created); 0: the fast path (cpu_gemm.c). */
int vkt_cpu_reference(const vkt_backend *be);
/* The fast path's matmul (CBLAS when built with one) and its name for --list-devices. */
vkt_op_matmul_fn vkt_cpu_fast_matmul;
const char *vkt_cpu_gemm_name(void);
vkt_op_softmax_xent_fn vkt_cpu_fast_softmax_xent;

/* The reference kernels of every compute op (backend/ops.def): vkt_cpu_<name> */
#define VKT_OP(name, params, args) vkt_op_##name##_fn vkt_cpu_##name;
#include "backend/ops.def"

#endif
