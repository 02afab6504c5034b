/* The compute shaders, compiled to SPIR-V at build time and embedded in the binary
 * (shaders/NAME.comp -> cmake/Shaders.cmake -> the library vktrain_shaders). */
#ifndef VKTRAIN_VKT_SPIRV_H
#define VKTRAIN_VKT_SPIRV_H

#include <stddef.h>
#include <stdint.h>

typedef struct vkt_spirv {
    const char *name;     /* variant name, e.g. "matmul_f32" (see docs/backends.md, Shaders) */
    const uint32_t *code; /* SPIR-V words; code[0] == 0x07230203 */
    size_t words;         /* number of 32-bit words (VkShaderModuleCreateInfo.codeSize = 4*words) */
} vkt_spirv;

extern const vkt_spirv vkt_spirv_table[];
extern const int vkt_spirv_count;
/* The variant called name, or NULL when it was not built (e.g. a coopmat variant compiled
 * with a glslang that lacks GL_KHR_cooperative_matrix). */
const vkt_spirv *vkt_spirv_find(const char *name);

/* A specialization constant: the shader's constant_id `id` (local_size_x_id and friends
 * included) takes `value`. */
typedef struct vkt_spec_const {
    uint32_t id, value;
} vkt_spec_const;
/* The workgroup size of compute shader sp with the given constants applied (the others keep
 * their defaults), from its SPIR-V (spirv_reflect.c): 0, or -1 with err saying why (also when
 * a constant's id is not declared in the shader). */
int vkt_spirv_local_size(const vkt_spirv *sp, const vkt_spec_const *spec, int nspec,
                         uint32_t out[3], char *err, size_t errlen);

/* Which of sp's buffer bindings (descriptor set 0, bindings 0..31) the shader may store to,
 * as bits of *mask, from its SPIR-V (spirv_reflect.c): a binding it only reads has its bit
 * clear. 0, or -1 with err saying why. */
int vkt_spirv_written_bindings(const vkt_spirv *sp, uint32_t *mask, char *err, size_t errlen);

/* Push constants of shaders/matmul.comp (every matmul_* variant), 52 bytes; must match its
 * `pc` block. Offsets are in elements of each buffer's type (halves for fp16 A and B). */
typedef struct vkt_matmul_push {
    uint32_t M, N, K;
    uint32_t off_c, off_a, off_b, off_bias;
    uint32_t flags; /* VKT_MATMUL_TRANS_A | _TRANS_B | _BIAS | _ALIGNED | _A_HALF | _B_HALF */
    float alpha, beta;
    uint32_t k_split; /* K per workgroup z (split-K); K when not split */
    uint32_t off_g, off_gh; /* the fused GELU's outputs (VKT_MATMUL_GELU, _GELU_HALF) */
} vkt_matmul_push;
#define VKT_MATMUL_TRANS_A 1u
#define VKT_MATMUL_TRANS_B 2u
#define VKT_MATMUL_BIAS 4u
#define VKT_MATMUL_ALIGNED 8u /* rows 16-byte aligned, 8 for fp16 (shaders/matmul_common.glsl) */
#define VKT_MATMUL_A_HALF 16u /* A is an fp16 tensor */
#define VKT_MATMUL_B_HALF 32u /* B is an fp16 tensor */
#define VKT_MATMUL_GELU 64u   /* also G = gelu(C) (vkt_matmul_gelu) */
#define VKT_MATMUL_GELU_HALF 128u /* and G's fp16 copy (the 16-bit storage variants only) */

#endif
