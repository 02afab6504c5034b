#version 450
// vkt_to_half (include/vktrain/backend.h): dst(n, fp16) = src(n, fp32) rounded as precision =
// fp16 rounds (nearest even; |x| >= 65520 becomes inf; NaN stays NaN), bit for bit the host's
// vkt_f16_bits (src/util/half.h). The rounding is integer arithmetic, so the op needs neither
// shaderFloat16 nor 16-bit storage and gives the same bits on every driver.
// b0 = dst seen as 32-bit words (two halves each, the lower half first), b1 = src. One thread
// per word the tensor touches; a word the tensor only half covers (an odd first or last half)
// is read, merged and written back by that one thread, so the neighbouring tensor's half stays
// as it was. No atomics: nothing else in the dispatch touches the word, and every op is
// ordered after the previous one by a barrier (vk_ops.c), so a neighbour written by another op
// is never in flight at the same time. (Atomics would need vulkanMemoryModelDeviceScope on
// devices with the memory model enabled for cooperative matrices.)
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;
layout(set = 0, binding = 0) buffer Dst { uint h[]; };
layout(set = 0, binding = 1) readonly buffer Src { float x[]; };

layout(push_constant) uniform PushConstants {
    uint n, off_dst, off_src; // off_dst in halves, off_src in floats
} pc;

void main() {
    uint first = pc.off_dst >> 1; // the first word the tensor touches
    uint w = first + flat_index();
    uint end = pc.off_dst + pc.n;  // one past the last half
    if (2u * w >= end) return;
    uint lo = 2u * w, hi = lo + 1u; // the word's two halves
    bool has_lo = lo >= pc.off_dst, has_hi = hi < end;
    uint vlo = has_lo ? f16_bits(x[pc.off_src + (lo - pc.off_dst)]) : 0u;
    uint vhi = has_hi ? f16_bits(x[pc.off_src + (hi - pc.off_dst)]) : 0u;
    if (has_lo && has_hi) {
        h[w] = vlo | (vhi << 16);
    } else if (has_lo) {
        h[w] = (h[w] & 0xffff0000u) | vlo;
    } else {
        h[w] = (h[w] & 0x0000ffffu) | (vhi << 16);
    }
}
