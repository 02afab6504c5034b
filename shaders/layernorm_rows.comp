#version 450
// LayerNorm's row kernels (include/vktrain/backend.h, eps 1e-5): one workgroup of 64 per row,
// its threads striding over the channels (neighbouring threads read neighbouring floats:
// coalesced), the row's sums reduced in shared memory in a fixed tree (deterministic).
//   OP_FWD  layernorm_forward   b0 = out, b1 = mean, b2 = rstd, b3 = inp, b4 = weight, b5 = bias
//           (HALF_OUT: b6 = out's fp16 copy; RESIDUAL, residual_layernorm_forward: b3 = res,
//           written as ra + rb from b7 = a and b8 = b, then normalized):
//           mean, then the variance about it (two passes over the row, the second from
//           cache), then the output.
//   OP_BWD  layernorm_backward  b0 = dinp, b1, b2 unused (dweight and dbias are colsum.comp's
//           column sums, vk_ops.c), b3 = dout, b4 = inp, b5 = weight, b6 = mean, b7 = rstd:
//           dinp += (dnorm - mean(dnorm) - norm * mean(dnorm * norm)) * rstd, both means in
//           one pass.
// The fp64 diagnostic (VKT_VULKAN_FP64=1) keeps layernorm.comp's thread-per-row kernels.
// `precise` keeps the compiler from fusing multiply-adds, as in the reference's rounding.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;
// The row held in registers (pc.mode bit 0, set by the host when C is a multiple of 4 and
// every row starts 16-byte aligned): PT 4-float vectors per invocation, read with one 128-bit
// load each; the forward's statistics then take one pass over memory, not three, and the
// backward's one, not two
layout(constant_id = 0) const uint PT = 1;
layout(set = 0, binding = 0) buffer B0 { float b0[]; };
// the same buffers seen as vec4 (the aligned path; forward and backward alike)
layout(set = 0, binding = 0) buffer B0v { vec4 b0v[]; };
layout(set = 0, binding = 3) readonly buffer B3v { vec4 b3v[]; };
layout(set = 0, binding = 4) readonly buffer B4v { vec4 b4v[]; };
layout(set = 0, binding = 5) readonly buffer B5v { vec4 b5v[]; };
layout(set = 0, binding = 1) buffer B1 { float b1[]; };
layout(set = 0, binding = 2) buffer B2 { float b2[]; };
#if defined(RESIDUAL)
layout(set = 0, binding = 3) buffer B3 { float b3[]; }; // res = a + b, written here
#else
layout(set = 0, binding = 3) readonly buffer B3 { float b3[]; };
#endif
layout(set = 0, binding = 4) readonly buffer B4 { float b4[]; };
layout(set = 0, binding = 5) readonly buffer B5 { float b5[]; };
#if defined(OP_FWD) && defined(HALF_OUT)
layout(set = 0, binding = 6) buffer B6 { uint16_t outh[]; }; // out's fp16 copy (common.glsl)
#endif
#if defined(RESIDUAL)
layout(set = 0, binding = 7) readonly buffer B7 { float ra[]; };
layout(set = 0, binding = 8) readonly buffer B8 { float rb[]; };
layout(set = 0, binding = 7) readonly buffer B7v { vec4 rav[]; };
layout(set = 0, binding = 8) readonly buffer B8v { vec4 rbv[]; };
#endif
#if defined(OP_BWD)
layout(set = 0, binding = 6) readonly buffer B6 { float b6[]; };
layout(set = 0, binding = 7) readonly buffer B7 { float b7[]; };
#endif

layout(push_constant) uniform PushConstants {
    uint N, C, mode;
    uint o0, o1, o2, o3, o4, o5, o6, o7, o8;
} pc;

shared vec2 red[64];

// The workgroup's sum of v (both components), the same tree every time.
vec2 wg_sum(vec2 v) {
    uint t = gl_LocalInvocationID.x;
    red[t] = v;
    barrier();
    for (uint w = 32u; w > 0u; w >>= 1) {
        if (t < w) red[t] += red[t + w];
        barrier();
    }
    vec2 s = red[0];
    barrier(); // red is reused by the next sum
    return s;
}

void main() {
    uint row = flat_group(), t = gl_LocalInvocationID.x, C = pc.C;
    if (row >= pc.N) return; // the whole workgroup: no barrier is left waiting
#if defined(OP_FWD)
    if ((pc.mode & 1u) != 0u) { // the row in registers, 128-bit loads (C % 4 == 0)
        uint C4 = C / 4u, r4 = row * C4;
        vec4 xv[PT];
        float s = 0.0;
        for (uint k = 0; k < PT; k++) {
            uint c4 = t + 64u * k;
            vec4 x = vec4(0.0);
            if (c4 < C4) {
#if defined(RESIDUAL)
                x = rav[pc.o7 / 4u + r4 + c4] + rbv[pc.o8 / 4u + r4 + c4];
                uint e = pc.o3 + row * C + 4u * c4; // res, element by element (a float view)
                b3[e] = x.x, b3[e + 1u] = x.y, b3[e + 2u] = x.z, b3[e + 3u] = x.w;
#else
                x = b3v[pc.o3 / 4u + r4 + c4];
#endif
                s += (x.x + x.y) + (x.z + x.w);
            }
            xv[k] = x;
        }
        precise float m = wg_sum(vec2(s, 0.0)).x / float(C);
        float ss = 0.0;
        for (uint k = 0; k < PT; k++)
            if (t + 64u * k < C4) {
                precise vec4 d = xv[k] - m;
                ss += dot(d, d);
            }
        precise float r = 1.0 / sqrt(wg_sum(vec2(ss, 0.0)).x / float(C) + 1e-5);
        for (uint k = 0; k < PT; k++) {
            uint c4 = t + 64u * k;
            if (c4 >= C4) break;
            precise vec4 o = ((xv[k] - m) * r) * b4v[pc.o4 / 4u + c4] + b5v[pc.o5 / 4u + c4];
            b0v[pc.o0 / 4u + r4 + c4] = o;
#if defined(HALF_OUT)
            uint e = pc.o6 + row * C + 4u * c4;
            outh[e] = uint16_t(f16_bits(o.x)), outh[e + 1u] = uint16_t(f16_bits(o.y));
            outh[e + 2u] = uint16_t(f16_bits(o.z)), outh[e + 3u] = uint16_t(f16_bits(o.w));
#endif
        }
        if (t == 0u) {
            b1[pc.o1 + row] = m;
            b2[pc.o2 + row] = r;
        }
        return;
    }
    uint x0 = pc.o3 + row * C;
    float s = 0.0;
#if defined(RESIDUAL) // res = a + b first; each invocation reads back only its own elements
    for (uint c = t; c < C; c += 64u) {
        float x = ra[pc.o7 + row * C + c] + rb[pc.o8 + row * C + c];
        b3[x0 + c] = x;
        s += x;
    }
#else
    for (uint c = t; c < C; c += 64u) s += b3[x0 + c];
#endif
    precise float m = wg_sum(vec2(s, 0.0)).x / float(C);
    float ss = 0.0;
    for (uint c = t; c < C; c += 64u) {
        precise float d = b3[x0 + c] - m;
        ss += d * d;
    }
    precise float r = 1.0 / sqrt(wg_sum(vec2(ss, 0.0)).x / float(C) + 1e-5);
    for (uint c = t; c < C; c += 64u) {
        precise float o = ((b3[x0 + c] - m) * r) * b4[pc.o4 + c] + b5[pc.o5 + c];
        b0[pc.o0 + row * C + c] = o;
#if defined(HALF_OUT)
        outh[pc.o6 + row * C + c] = uint16_t(f16_bits(o));
#endif
    }
    if (t == 0u) {
        b1[pc.o1 + row] = m;
        b2[pc.o2 + row] = r;
    }
#else
    float m = b6[pc.o6 + row], r = b7[pc.o7 + row];
    if ((pc.mode & 1u) != 0u) { // the row in registers, 128-bit loads (C % 4 == 0)
        uint C4 = C / 4u, r4 = row * C4;
        vec4 nv[PT], dv[PT];
        vec2 acc = vec2(0.0);
        for (uint k = 0; k < PT; k++) {
            uint c4 = t + 64u * k;
            nv[k] = dv[k] = vec4(0.0);
            if (c4 >= C4) continue;
            precise vec4 norm = (b4v[pc.o4 / 4u + r4 + c4] - m) * r;
            precise vec4 dnorm = b5v[pc.o5 / 4u + c4] * b3v[pc.o3 / 4u + r4 + c4];
            precise vec4 dn = dnorm * norm;
            acc += vec2((dnorm.x + dnorm.y) + (dnorm.z + dnorm.w), (dn.x + dn.y) + (dn.z + dn.w));
            nv[k] = norm;
            dv[k] = dnorm;
        }
        vec2 mm = wg_sum(acc) / float(C);
        for (uint k = 0; k < PT; k++) {
            uint c4 = t + 64u * k;
            if (c4 >= C4) break;
            uint at = pc.o0 / 4u + r4 + c4;
            precise vec4 o = b0v[at] + (dv[k] - mm.x - nv[k] * mm.y) * r;
            b0v[at] = o;
        }
        return;
    }
    vec2 acc = vec2(0.0); // sum dnorm, sum dnorm * norm
    for (uint c = t; c < C; c += 64u) {
        precise float norm = (b4[pc.o4 + row * C + c] - m) * r;
        precise float dnorm = b5[pc.o5 + c] * b3[pc.o3 + row * C + c];
        precise float dn = dnorm * norm;
        acc += vec2(dnorm, dn);
    }
    vec2 mm = wg_sum(acc) / float(C);
    for (uint c = t; c < C; c += 64u) {
        precise float norm = (b4[pc.o4 + row * C + c] - m) * r;
        precise float dnorm = b5[pc.o5 + c] * b3[pc.o3 + row * C + c];
        precise float o = b0[pc.o0 + row * C + c] + (dnorm - mm.x - norm * mm.y) * r;
        b0[pc.o0 + row * C + c] = o;
    }
#endif
}
