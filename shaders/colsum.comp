#version 450
// Column sums in two deterministic stages (bias_backward; layernorm_backward's weight and bias
// gradients; encoder_backward's position gradient, a column sum over the batch), so that a
// (M rows) x (N columns) reduction fills the GPU whatever N is, and gives bitwise the same
// result run after run: the partition depends only on the shape, each sum runs in a fixed
// order, and nothing is atomic.
//
//   OP_PARTIAL   stage 1: workgroup (x, y) sums columns 64x .. 64x+63 over row chunk y, rows
//                [y*rows, min(M, (y+1)*rows)): 4 row lanes of 64 threads, lane r taking rows
//                r, r+4, ... of the chunk in order, the 4 lanes then added in lane order.
//                p[y * N + j] = the chunk's sum of column j (with LN: also p[P + y*N + j],
//                P = chunks * N).
//     (default)  the value of (i, j) is x[i * N + j]                b0 = p, b1 = x
//     LN         d * norm and d, d = dout(i,j), norm = (inp(i,j) - mean(i)) * rstd(i)
//                                           b0 = p, b1 = dout, b2 = inp, b3 = mean, b4 = rstd
//   OP_FINAL     stage 2: one thread per column: out[j] += the chunks' sums in chunk order
//                (with LN: out2[j] += the second set)       b0 = out, b1 = p, b2 = out2
// The host (vk_ops.c, colsum) picks the chunks: enough workgroups to fill a large GPU, rows of
// at least 64 per chunk.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

#ifdef OP_PARTIAL
layout(local_size_x = 256) in;
layout(set = 0, binding = 0) buffer B0 { float p[]; };
layout(set = 0, binding = 1) readonly buffer B1 { float x[]; };
#ifdef LN
layout(set = 0, binding = 2) readonly buffer B2 { float inp[]; };
layout(set = 0, binding = 3) readonly buffer B3 { float mean[]; };
layout(set = 0, binding = 4) readonly buffer B4 { float rstd[]; };
#endif
layout(push_constant) uniform PushConstants {
    uint M, N, rows, chunks;
    uint off_p, off_x, off_inp, off_mean, off_rstd;
} pc;

shared float s0[256];
#ifdef LN
shared float s1[256];
#endif

void main() {
    uint t = gl_LocalInvocationID.x, col = t % 64u, lane = t / 64u;
    uint j = gl_WorkGroupID.x * 64u + col, y = gl_WorkGroupID.y;
    uint r0 = y * pc.rows, r1 = min(pc.M, r0 + pc.rows);
    float a0 = 0.0;
#ifdef LN
    float a1 = 0.0;
#endif
    if (j < pc.N) {
        for (uint i = r0 + lane; i < r1; i += 4u) {
            float v = x[pc.off_x + i * pc.N + j];
#ifdef LN
            precise float norm = (inp[pc.off_inp + i * pc.N + j] - mean[pc.off_mean + i]) *
                                 rstd[pc.off_rstd + i];
            precise float dn = v * norm;
            a0 += dn;
            a1 += v;
#else
            a0 += v;
#endif
        }
    }
    s0[t] = a0;
#ifdef LN
    s1[t] = a1;
#endif
    barrier();
    if (lane == 0u && j < pc.N) {
        precise float r = ((s0[col] + s0[col + 64u]) + s0[col + 128u]) + s0[col + 192u];
        p[pc.off_p + y * pc.N + j] = r;
#ifdef LN
        precise float q = ((s1[col] + s1[col + 64u]) + s1[col + 128u]) + s1[col + 192u];
        p[pc.off_p + pc.chunks * pc.N + y * pc.N + j] = q;
#endif
    }
}
#endif

#ifdef OP_FINAL
layout(local_size_x = 256) in;
layout(set = 0, binding = 0) buffer B0 { float outv[]; };
layout(set = 0, binding = 1) readonly buffer B1 { float p[]; };
layout(set = 0, binding = 2) buffer B2 { float out2[]; };
layout(push_constant) uniform PushConstants {
    uint N, chunks, two;
    uint off_out, off_p, off_out2;
} pc;

void main() {
    uint j = flat_index();
    if (j >= pc.N) return;
    precise float s = 0.0;
    for (uint y = 0u; y < pc.chunks; y++) s += p[pc.off_p + y * pc.N + j];
    outv[pc.off_out + j] += s;
    if (pc.two != 0u) {
        precise float q = 0.0;
        for (uint y = 0u; y < pc.chunks; y++) q += p[pc.off_p + (pc.chunks + y) * pc.N + j];
        out2[pc.off_out2 + j] += q;
    }
}
#endif
