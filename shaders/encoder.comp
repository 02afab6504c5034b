#version 450
// Token + position embedding of include/vktrain/backend.h.
//   OP_FWD  encoder_forward   b0 = out(B,T,C), b1 = tokens (int32), b2 = wte, b3 = wpe;
//           one thread per output element.
//   OP_BWD  encoder_backward  b0 = dwte, b1 = dwpe (unused here), b2 = dout, b3 = tokens:
//           dwte only. Thread (k, c) owns channel c of the token rows v with v % K == k
//           (K = pc.buckets buckets, so C * K threads fill the GPU): it scans the positions
//           in order and adds those whose token it owns. Each (row, channel) is summed by one
//           thread, positions in order: deterministic, and the cpu reference's own order.
//           dwpe, a column sum over the batch, is colsum.comp's (vk_ops.c).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;
#if defined(OP_FWD)
layout(set = 0, binding = 0) buffer B0 { float outv[]; };
layout(set = 0, binding = 1) readonly buffer B1 { int tok[]; };
layout(set = 0, binding = 2) readonly buffer B2 { float wte[]; };
layout(set = 0, binding = 3) readonly buffer B3 { float wpe[]; };
#else
layout(set = 0, binding = 0) buffer B0 { float dwte[]; };
layout(set = 0, binding = 1) buffer B1 { float dwpe[]; };
layout(set = 0, binding = 2) readonly buffer B2 { float dout[]; };
layout(set = 0, binding = 3) readonly buffer B3 { int tok[]; };
#endif

layout(push_constant) uniform PushConstants {
    uint B, T, C, off0, off1, off2, off3;
#if defined(OP_BWD)
    uint buckets;
#endif
} pc;

void main() {
    uint i = flat_index();
#if defined(OP_FWD)
    if (i >= pc.B * pc.T * pc.C) return;
    uint bt = i / pc.C, c = i % pc.C, t = bt % pc.T;
    int tk = tok[pc.off1 + bt];
    outv[pc.off0 + i] = wte[pc.off2 + uint(tk) * pc.C + c] + wpe[pc.off3 + t * pc.C + c];
#else
    if (i >= pc.C * pc.buckets) return;
    uint c = i % pc.C, k = i / pc.C;
    for (uint bt = 0; bt < pc.B * pc.T; bt++) {
        uint tk = uint(tok[pc.off3 + bt]);
        if (tk % pc.buckets != k) continue;
        dwte[pc.off0 + tk * pc.C + c] += dout[pc.off2 + bt * pc.C + c];
    }
#endif
}
