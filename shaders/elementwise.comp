#version 450
// Pointwise ops of include/vktrain/backend.h, one variant per define (cmake: vkt_add_shader):
//   OP_GELU_FWD  gelu_forward    b0 = out, b1 = inp (HALF_OUT, gelu_forward_h: b2 = out's fp16
//                                copy, common.glsl)
//   OP_GELU_BWD  gelu_backward   b0 = dinp, b1 = inp, b2 = dout (dinp may alias dout)
//   OP_RESIDUAL  residual        b0 = out, b1 = a, b2 = b
//   OP_SCALE     scale           b0 = x (x *= s)
// Three bindings in every variant (unused ones bound to b0). One thread per element. With
// USE_FP64 (gelu_*_f64, for devices with shaderFloat64) tanh is evaluated in double.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;
layout(set = 0, binding = 0) buffer B0 { float x0[]; };
layout(set = 0, binding = 1) buffer B1 { float x1[]; };
#if defined(HALF_OUT)
layout(set = 0, binding = 2) buffer B2 { uint16_t x2h[]; }; // gelu_forward_h: out's fp16 copy
#else
layout(set = 0, binding = 2) buffer B2 { float x2[]; };
#endif

layout(push_constant) uniform PushConstants {
    uint n, off0, off1, off2;
    float s;
} pc;

void main() {
    uint i = flat_index();
    if (i >= pc.n) return;
#if defined(OP_GELU_FWD)
    float o = gelu_value(x1[pc.off1 + i]);
    x0[pc.off0 + i] = o;
#if defined(HALF_OUT)
    x2h[pc.off2 + i] = uint16_t(f16_bits(o));
#endif
#elif defined(OP_GELU_BWD)
    float v = x1[pc.off1 + i];
    precise float u = GELU_SCALE * (v + 0.044715 * v * v * v);
    float th = tanh_ref(u);
    precise float sech2 = 1.0 - th * th;
    // precise: no fused multiply-adds, which would round differently from the reference in
    // the cancellation around gelu's minimum
    precise float g =
        0.5 * (1.0 + th) + 0.5 * v * sech2 * GELU_SCALE * (1.0 + 3.0 * 0.044715 * v * v);
    precise float o = g * x2[pc.off2 + i];
    x0[pc.off0 + i] = o;
#elif defined(OP_RESIDUAL)
    x0[pc.off0 + i] = x1[pc.off1 + i] + x2[pc.off2 + i];
#elif defined(OP_SCALE)
    x0[pc.off0 + i] *= pc.s;
#endif
}
