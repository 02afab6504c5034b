#version 450
// AdamW of include/vktrain/backend.h (llm.c's form). b0 = params, b1 = grads, b2 = m, b3 = v,
// b4 = norm_sq (one float; bound to b0 and ignored unless pc.has_norm). The clip factor is
// computed here from norm_sq, so no host round trip decides it; a non-finite norm_sq leaves
// params, m and v untouched. One thread per element. HALF_OUT (adamw_h): b5 = the params'
// fp16 copy, written with them (common.glsl).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;
layout(set = 0, binding = 0) buffer BP { float p[]; };
layout(set = 0, binding = 1) readonly buffer BG { float g[]; };
layout(set = 0, binding = 2) buffer BM { float m[]; };
layout(set = 0, binding = 3) buffer BV { float v[]; };
layout(set = 0, binding = 4) readonly buffer BN { float norm_sq[]; };
#if defined(HALF_OUT)
layout(set = 0, binding = 5) buffer BH { uint16_t ph[]; }; // adamw_h: params' fp16 copy
#endif

layout(push_constant) uniform PushConstants {
    uint n, off_p, off_g, off_m, off_v, off_ns, off_h, has_norm;
    float lr, beta1, beta2, eps, weight_decay, grad_scale, bc1, bc2, max_norm;
} pc;

void main() {
    uint i = flat_index();
    if (i >= pc.n) return;
    float gs = pc.grad_scale;
    if (pc.has_norm != 0u) {
        float ns = norm_sq[pc.off_ns];
        if (not_finite(ns)) return;
        float norm = sqrt(ns) * pc.grad_scale;
        if (pc.max_norm > 0.0 && norm > pc.max_norm) gs *= pc.max_norm / norm;
    }
    float grad = g[pc.off_g + i] * gs;
    float mi = pc.beta1 * m[pc.off_m + i] + (1.0 - pc.beta1) * grad;
    float vi = pc.beta2 * v[pc.off_v + i] + (1.0 - pc.beta2) * grad * grad;
    m[pc.off_m + i] = mi;
    v[pc.off_v + i] = vi;
    float mhat = mi / pc.bc1, vhat = vi / pc.bc2;
    float pi = p[pc.off_p + i];
    float po = pi - pc.lr * (mhat / (sqrt(vhat) + pc.eps) + pc.weight_decay * pi);
    p[pc.off_p + i] = po;
#if defined(HALF_OUT)
    ph[pc.off_h + i] = uint16_t(f16_bits(po));
#endif
}
