#version 450
// The whole-tensor sums of include/vktrain/backend.h (sumsq: the gradient norm's; sum_into:
// the losses'), in two deterministic stages so that a tensor of 124 M gradients is read by
// hundreds of workgroups, and the same inputs give bitwise the same sum every run (the
// partition depends only on n; every sum in a fixed order; no atomics):
//   OP_PARTIAL   stage 1 (sum_partial; SQUARE: sumsq_partial): workgroup g sums x over
//                [g * per, min(n, (g+1) * per)) (per = pc.m), 256 threads taking every 256th
//                element in order, then a shared-memory tree: p[g] = that sum (of squares).
//                b0 = p, b1 = x
//   OP_SUMSQ     stage 2 (sumsq): ONE workgroup sums the pc.n partials the same way:
//                out = sum (pc.s != 0: out +=, for the host's later chunks of a tensor beyond
//                one descriptor's range)                        b0 = out (one float), b1 = p
//   OP_SUM_INTO  stage 2 (sum_into): likewise, out += s * sum       b0 = out, b1 = p
// The host (vk_ops.c, whole_sum) picks the stage-1 workgroups. bias_backward and the other
// column sums are colsum.comp's.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;
layout(set = 0, binding = 0) buffer B0 { float outv[]; };
layout(set = 0, binding = 1) readonly buffer B1 { float x[]; };

layout(push_constant) uniform PushConstants {
    uint n, m; // n elements; stage 1: m elements per workgroup
    uint off0, off1;
    float s;
} pc;

shared float part[256];

// The sum of x[off1 + i], i in [i0, i1), squared with SQUARE, in one fixed order.
float block_sum(uint i0, uint i1) {
    uint t = gl_LocalInvocationID.x;
    float acc = 0.0;
    for (uint i = i0 + t; i < i1; i += 256u) {
        float v = x[pc.off1 + i];
#if defined(OP_PARTIAL) && defined(SQUARE)
        acc += v * v;
#else
        acc += v;
#endif
    }
    part[t] = acc;
    barrier();
    for (uint w = 128u; w > 0u; w >>= 1) {
        if (t < w) part[t] += part[t + w];
        barrier();
    }
    return part[0];
}

void main() {
#if defined(OP_PARTIAL)
    uint g = flat_group();
    uint i0 = g * pc.m, i1 = min(pc.n, i0 + pc.m);
    float s = block_sum(i0, i1);
    if (gl_LocalInvocationID.x == 0u) outv[pc.off0 + g] = s;
#else
    float s = block_sum(0u, pc.n);
    if (gl_LocalInvocationID.x == 0u) {
#if defined(OP_SUMSQ)
        outv[pc.off0] = pc.s != 0.0 ? outv[pc.off0] + s : s;
#else
        outv[pc.off0] += pc.s * s;
#endif
    }
#endif
}
