#version 450
// Fused softmax + cross-entropy of include/vktrain/backend.h. b0 = losses(N), b1 = logits
// (N,Vp; overwritten by dlogits when pc.want_grad), b2 = targets (int32). One workgroup of
// 256 threads per row: one online pass over the row for its max and its sum of exp (each
// thread keeps a running max m and a sum s rescaled whenever m grows, FlashAttention's
// bookkeeping), the threads' pairs merged in a fixed shared-memory tree, then the gradient
// in place (a second pass, only with want_grad).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;
layout(set = 0, binding = 0) buffer B0 { float losses[]; };
layout(set = 0, binding = 1) buffer B1 { float logits[]; };
layout(set = 0, binding = 2) readonly buffer B2 { int targets[]; };

layout(push_constant) uniform PushConstants {
    uint N, V, Vp, o0, o1, o2, want_grad;
    float grad_scale;
} pc;

shared vec2 red[256]; // (max, sum of exp(x - max))

// Two (max, sum) pairs as one.
vec2 merge(vec2 a, vec2 b) {
    float m = max(a.x, b.x);
    return vec2(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}

void main() {
    uint n = flat_group(), t = gl_LocalInvocationID.x;
    if (n >= pc.N) return; // uniform over the workgroup
    uint row = pc.o1 + n * pc.Vp;
    int tgt = targets[pc.o2 + n];
    if (tgt < 0) {
        if (t == 0u) losses[pc.o0 + n] = 0.0;
        if (pc.want_grad != 0u)
            for (uint v = t; v < pc.Vp; v += 256u) logits[row + v] = 0.0;
        return;
    }
    vec2 ms = vec2(-3.402823466e38, 0.0);
    for (uint v = t; v < pc.V; v += 256u) {
        float x = logits[row + v];
        if (x > ms.x) {
            ms.y = ms.y * exp(ms.x - x) + 1.0;
            ms.x = x;
        } else {
            ms.y += exp(x - ms.x);
        }
    }
    red[t] = ms;
    barrier();
    for (uint w = 128u; w > 0u; w >>= 1) {
        if (t < w) red[t] = merge(red[t], red[t + w]);
        barrier();
    }
    float mx = red[0].x, s = red[0].y;
    float xt = logits[row + uint(tgt)];
    barrier(); // everyone has read logits[tgt] before it is overwritten
    if (t == 0u) losses[pc.o0 + n] = log(s) - (xt - mx);
    if (pc.want_grad != 0u) {
        float inv = 1.0 / s;
        for (uint v = t; v < pc.V; v += 256u) {
            float p = exp(logits[row + v] - mx) * inv;
            logits[row + v] = (p - (v == uint(tgt) ? 1.0 : 0.0)) * pc.grad_scale;
        }
        for (uint v = pc.V + t; v < pc.Vp; v += 256u) logits[row + v] = 0.0;
    }
}
