#version 450
// LayerNorm of include/vktrain/backend.h (eps 1e-5), thread per row: built only as the fp64
// diagnostic (layernorm_*_f64, VKT_VULKAN_FP64=1, statistics in double); the default kernels
// are layernorm_rows.comp's. `precise` keeps the compiler from fusing multiply-adds, so
// results round like the cpu reference.
//   OP_FWD  b0 = out, b1 = mean, b2 = rstd, b3 = inp, b4 = weight, b5 = bias; one thread per row.
//   OP_BWD  b0 = dinp, b1 = dweight, b2 = dbias, b3 = dout, b4 = inp, b5 = weight, b6 = mean,
//           b7 = rstd. pc.mode 0: one thread per row, dinp += ...; mode 1: one thread per
//           channel, dweight += ..., dbias += ... (two dispatches, as the cpu's two loops).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;
layout(set = 0, binding = 0) buffer B0 { float b0[]; };
layout(set = 0, binding = 1) buffer B1 { float b1[]; };
layout(set = 0, binding = 2) buffer B2 { float b2[]; };
layout(set = 0, binding = 3) readonly buffer B3 { float b3[]; };
layout(set = 0, binding = 4) readonly buffer B4 { float b4[]; };
layout(set = 0, binding = 5) readonly buffer B5 { float b5[]; };
#if defined(OP_BWD)
layout(set = 0, binding = 6) readonly buffer B6 { float b6[]; };
layout(set = 0, binding = 7) readonly buffer B7 { float b7[]; };
#endif

layout(push_constant) uniform PushConstants {
    uint N, C, mode;
    uint o0, o1, o2, o3, o4, o5, o6, o7, o8;
} pc;

void main() {
    uint i = flat_index();
    uint C = pc.C;
#if defined(OP_FWD)
    if (i >= pc.N) return;
    uint x0 = pc.o3 + i * C;
    precise acc_t s = 0.0;
    for (uint c = 0; c < C; c++) s += acc_t(b3[x0 + c]);
    precise acc_t m = s / acc_t(C);
    precise acc_t ss = 0.0;
    for (uint c = 0; c < C; c++) {
        precise acc_t d = acc_t(b3[x0 + c]) - m;
        ss += d * d;
    }
    precise acc_t r = acc_t(1.0) / sqrt(ss / acc_t(C) + acc_t(1e-5));
    for (uint c = 0; c < C; c++) {
        precise float o = float((acc_t(b3[x0 + c]) - m) * r) * b4[pc.o4 + c] + b5[pc.o5 + c];
        b0[pc.o0 + i * C + c] = o;
    }
    b1[pc.o1 + i] = float(m);
    b2[pc.o2 + i] = float(r);
#else
    if (pc.mode == 0u) {
        if (i >= pc.N) return;
        float m = b6[pc.o6 + i], r = b7[pc.o7 + i];
        precise acc_t dm = 0.0, dnm = 0.0;
        for (uint c = 0; c < C; c++) {
            precise float norm = (b4[pc.o4 + i * C + c] - m) * r;
            precise float dnorm = b5[pc.o5 + c] * b3[pc.o3 + i * C + c];
            dm += acc_t(dnorm);
            dnm += acc_t(dnorm) * acc_t(norm);
        }
        dm /= acc_t(C);
        dnm /= acc_t(C);
        for (uint c = 0; c < C; c++) {
            precise float norm = (b4[pc.o4 + i * C + c] - m) * r;
            precise float dnorm = b5[pc.o5 + c] * b3[pc.o3 + i * C + c];
            precise float o = b0[pc.o0 + i * C + c] +
                              float((acc_t(dnorm) - dm - acc_t(norm) * dnm) * acc_t(r));
            b0[pc.o0 + i * C + c] = o;
        }
    } else {
        if (i >= C) return;
        precise acc_t sw = 0.0, sb = 0.0;
        for (uint n = 0; n < pc.N; n++) {
            float d = b3[pc.o3 + n * C + i];
            precise float norm = (b4[pc.o4 + n * C + i] - b6[pc.o6 + n]) * b7[pc.o7 + n];
            sw += acc_t(d) * acc_t(norm);
            sb += acc_t(d);
        }
        b1[pc.o1 + i] += float(sw);
        b2[pc.o2 + i] += float(sb);
    }
#endif
}
