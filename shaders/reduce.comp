#version 450
// Reductions of include/vktrain/backend.h:
//   OP_SUMSQ     sumsq          b0 = out (one float), b1 = x: out = sum x^2 (pc.s != 0: out +=,
//                for the host's later chunks of a tensor beyond one descriptor's range)
//   OP_SUM_INTO  sum_into       b0 = out (one float), b1 = x: out += s * sum x
//     both: ONE workgroup of 256 threads, strided partial sums, then a shared-memory tree.
//   OP_BIAS_BWD  bias_backward  b0 = dbias(N), b1 = dout(M,N): dbias[j] += column sum; one
//     thread per column, rows in order.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;
layout(set = 0, binding = 0) buffer B0 { float outv[]; };
layout(set = 0, binding = 1) readonly buffer B1 { float x[]; };

layout(push_constant) uniform PushConstants {
    uint n, m; // sums: n elements; bias: n = N columns, m = M rows
    uint off0, off1;
    float s;
} pc;

shared float part[256];

void main() {
#if defined(OP_BIAS_BWD)
    uint j = flat_index();
    if (j >= pc.n) return;
    float acc = 0.0;
    for (uint i = 0; i < pc.m; i++) acc += x[pc.off1 + i * pc.n + j];
    outv[pc.off0 + j] += acc;
#else
    uint t = gl_LocalInvocationID.x;
    float acc = 0.0;
    for (uint i = t; i < pc.n; i += 256u) {
        float v = x[pc.off1 + i];
#if defined(OP_SUMSQ)
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
    if (t == 0u) {
#if defined(OP_SUMSQ)
        outv[pc.off0] = pc.s != 0.0 ? outv[pc.off0] + part[0] : part[0];
#else
        outv[pc.off0] += pc.s * part[0];
#endif
    }
#endif
}
