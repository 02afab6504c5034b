#version 450
// Split-K's second pass (matmul_common.glsl): C = alpha * (P_0 + P_1 + ... + P_{S-1})
// + beta * C + bias, where P_z = the partial product of K slice z, stored at P + z * M * N.
// The slices are summed in order z = 0, 1, ...: the same inputs give bitwise the same C
// whatever the scheduling. One thread per element of C; a 1-D grid (grid1d, vk_ops.c).
// flags & VKT_FLAG_GELU: the fused GELU of vkt_matmul_gelu, G = gelu(C) (matmul_common.glsl).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256, local_size_y = 1, local_size_z = 1) in;

layout(set = 0, binding = 0) buffer BufC { float c[]; };
layout(set = 0, binding = 1) readonly buffer BufP { float p[]; };
layout(set = 0, binding = 2) readonly buffer BufBias { float bias[]; };
layout(set = 0, binding = 3) writeonly buffer BufG { float g[]; };

layout(push_constant) uniform PushConstants {
    uint MN, N, splits;
    uint off_c, off_p, off_bias;
    uint flags; // VKT_FLAG_BIAS | VKT_FLAG_GELU
    float alpha, beta;
    uint off_g;
} pc;
#define VKT_FLAG_GELU 64u // as matmul_common.glsl's

void main() {
    uint i = flat_index();
    if (i >= pc.MN) return;
    float s = 0.0;
    for (uint z = 0u; z < pc.splits; z++) s += p[pc.off_p + z * pc.MN + i];
    float v = pc.alpha * s;
    if (pc.beta != 0.0) v += pc.beta * c[pc.off_c + i];
    if ((pc.flags & VKT_FLAG_BIAS) != 0u) v += bias[pc.off_bias + i % pc.N];
    c[pc.off_c + i] = v;
    if ((pc.flags & VKT_FLAG_GELU) != 0u) g[pc.off_g + i] = gelu_value(v);
}
