#version 450
// Causal multi-head attention of include/vktrain/backend.h, unfused, following the cpu
// reference. qkv(B,T,3C): q at 0, k at C, v at 2C of each position; head h uses channels
// [h*hs, (h+1)*hs). att(B,NH,T,T). `precise`: no fused multiply-adds, to round like the cpu.
//   OP_FWD     b0 = out, b1 = att, b2 = qkv; one thread per (b, h, t).
//   OP_BWD_Q   b0 = dqkv, b1 = dout, b2 = qkv, b3 = att, b4 = dots(B,NH,T) scratch; one thread
//              per (b, h, t): dot(t) = sum att*datt into dots, dq(t) overwritten.
//   OP_BWD_KV  same bindings; one thread per (b, h, t2): dk(t2), dv(t2) overwritten from the
//              rows t >= t2 and their dots.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;
layout(set = 0, binding = 0) buffer B0 { float b0[]; };
layout(set = 0, binding = 1) buffer B1 { float b1[]; };
layout(set = 0, binding = 2) readonly buffer B2 { float qkv[]; };
#if !defined(OP_FWD)
layout(set = 0, binding = 3) readonly buffer B3 { float att[]; };
layout(set = 0, binding = 4) buffer B4 { float dots[]; };
#endif

layout(push_constant) uniform PushConstants {
    uint B, T, C, NH, o0, o1, o2, o3, o4;
    float scale;
} pc;

void main() {
    uint idx = flat_index();
    if (idx >= pc.B * pc.NH * pc.T) return;
    uint T = pc.T, C = pc.C, hs = C / pc.NH;
    uint t = idx % T, h = (idx / T) % pc.NH, b = idx / (T * pc.NH);
    uint C3 = 3u * C;
#if defined(OP_FWD)
    uint q = pc.o2 + (b * T + t) * C3 + h * hs;
    uint row = pc.o1 + idx * T; // idx = (b*NH + h)*T + t
    float maxv = -3.402823466e38;
    for (uint t2 = 0; t2 <= t; t2++) {
        uint k = pc.o2 + (b * T + t2) * C3 + C + h * hs;
        precise float s = 0.0;
        for (uint i = 0; i < hs; i++) s += qkv[q + i] * qkv[k + i];
        s *= pc.scale;
        b1[row + t2] = s;
        maxv = max(maxv, s);
    }
    precise acc_t sum = 0.0;
    for (uint t2 = 0; t2 <= t; t2++) {
        float e = exp_ref(b1[row + t2] - maxv);
        b1[row + t2] = e;
        sum += acc_t(e);
    }
    float inv = float(acc_t(1.0) / sum);
    for (uint t2 = 0; t2 <= t; t2++) b1[row + t2] *= inv;
    for (uint t2 = t + 1u; t2 < T; t2++) b1[row + t2] = 0.0;
    uint o = pc.o0 + (b * T + t) * C + h * hs;
    for (uint i = 0; i < hs; i++) b0[o + i] = 0.0;
    for (uint t2 = 0; t2 <= t; t2++) {
        uint v = pc.o2 + (b * T + t2) * C3 + 2u * C + h * hs;
        float a = b1[row + t2];
        for (uint i = 0; i < hs; i++) {
            precise float acc = b0[o + i] + a * qkv[v + i];
            b0[o + i] = acc;
        }
    }
#elif defined(OP_BWD_Q)
    uint row = pc.o3 + idx * T;
    uint d = pc.o1 + (b * T + t) * C + h * hs;
    precise acc_t dot = 0.0;
    for (uint t2 = 0; t2 <= t; t2++) {
        uint v = pc.o2 + (b * T + t2) * C3 + 2u * C + h * hs;
        precise float s = 0.0;
        for (uint i = 0; i < hs; i++) s += b1[d + i] * qkv[v + i];
        dot += acc_t(att[row + t2]) * acc_t(s);
    }
    dots[pc.o4 + idx] = float(dot);
    uint dq = pc.o0 + (b * T + t) * C3 + h * hs;
    for (uint i = 0; i < hs; i++) b0[dq + i] = 0.0;
    for (uint t2 = 0; t2 <= t; t2++) {
        uint v = pc.o2 + (b * T + t2) * C3 + 2u * C + h * hs;
        uint k = pc.o2 + (b * T + t2) * C3 + C + h * hs;
        precise float s = 0.0;
        for (uint i = 0; i < hs; i++) s += b1[d + i] * qkv[v + i];
        precise float dpre = att[row + t2] * (s - float(dot)) * pc.scale;
        for (uint i = 0; i < hs; i++) {
            precise float acc = b0[dq + i] + dpre * qkv[k + i];
            b0[dq + i] = acc;
        }
    }
#else // OP_BWD_KV: this thread's position is t2 = t
    uint t2 = t;
    uint v = pc.o2 + (b * T + t2) * C3 + 2u * C + h * hs;
    uint dk = pc.o0 + (b * T + t2) * C3 + C + h * hs;
    uint dv = pc.o0 + (b * T + t2) * C3 + 2u * C + h * hs;
    for (uint i = 0; i < hs; i++) {
        b0[dk + i] = 0.0;
        b0[dv + i] = 0.0;
    }
    uint bh = b * pc.NH + h;
    for (uint tt = t2; tt < T; tt++) {
        float a = att[pc.o3 + (bh * T + tt) * T + t2];
        uint d = pc.o1 + (b * T + tt) * C + h * hs;
        uint q = pc.o2 + (b * T + tt) * C3 + h * hs;
        precise float s = 0.0;
        for (uint i = 0; i < hs; i++) s += b1[d + i] * qkv[v + i];
        precise float dpre = a * (s - dots[pc.o4 + bh * T + tt]) * pc.scale;
        for (uint i = 0; i < hs; i++) {
            precise float av = b0[dv + i] + a * b1[d + i];
            precise float ak = b0[dk + i] + dpre * qkv[q + i];
            b0[dv + i] = av;
            b0[dk + i] = ak;
        }
    }
#endif
}
