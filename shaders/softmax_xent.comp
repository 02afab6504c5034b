#version 450
// Fused softmax + cross-entropy of include/vktrain/backend.h. b0 = losses(N), b1 = logits
// (N,Vp; overwritten by dlogits when pc.want_grad), b2 = targets (int32). One workgroup of 64
// threads per row: shared-memory max and sum, then the gradient in place.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;
layout(set = 0, binding = 0) buffer B0 { float losses[]; };
layout(set = 0, binding = 1) buffer B1 { float logits[]; };
layout(set = 0, binding = 2) readonly buffer B2 { int targets[]; };

layout(push_constant) uniform PushConstants {
    uint N, V, Vp, o0, o1, o2, want_grad;
    float grad_scale;
} pc;

shared float red[64];

void main() {
    uint n = flat_group(), t = gl_LocalInvocationID.x;
    if (n >= pc.N) return; // uniform over the workgroup
    uint row = pc.o1 + n * pc.Vp;
    int tgt = targets[pc.o2 + n];
    if (tgt < 0) {
        if (t == 0u) losses[pc.o0 + n] = 0.0;
        if (pc.want_grad != 0u)
            for (uint v = t; v < pc.Vp; v += 64u) logits[row + v] = 0.0;
        return;
    }
    float mx = -3.402823466e38;
    for (uint v = t; v < pc.V; v += 64u) mx = max(mx, logits[row + v]);
    red[t] = mx;
    barrier();
    for (uint w = 32u; w > 0u; w >>= 1) {
        if (t < w) red[t] = max(red[t], red[t + w]);
        barrier();
    }
    mx = red[0];
    barrier();
    float s = 0.0;
    for (uint v = t; v < pc.V; v += 64u) s += exp(logits[row + v] - mx);
    red[t] = s;
    barrier();
    for (uint w = 32u; w > 0u; w >>= 1) {
        if (t < w) red[t] += red[t + w];
        barrier();
    }
    s = red[0];
    float xt = logits[row + uint(tgt)];
    barrier(); // everyone has read logits[tgt] before it is overwritten
    if (t == 0u) losses[pc.o0 + n] = log(s) - (xt - mx);
    if (pc.want_grad != 0u) {
        float inv = 1.0 / s;
        for (uint v = t; v < pc.V; v += 64u) {
            float p = exp(logits[row + v] - mx) * inv;
            logits[row + v] = (p - (v == uint(tgt) ? 1.0 : 0.0)) * pc.grad_scale;
        }
        for (uint v = pc.V + t; v < pc.Vp; v += 64u) logits[row + v] = 0.0;
    }
}
