#version 450
// Causal multi-head attention of include/vktrain/backend.h, fused: no T x T matrix is ever
// written. qkv(B,T,3C): q at 0, k at C, v at 2C of each position; head h uses channels
// [h*hs, (h+1)*hs). lse(B,NH,T): each query row's log-sum-exp of its scaled scores, all the
// backward needs to recompute a probability: p = exp(s - lse).
//
// Layout of every variant: a workgroup is 64 consecutive rows of one (batch, head), grid
// (ceil(T/64), B*NH); a thread owns one row and keeps that row's vectors in registers (arrays
// of HS, the head size, specialization constant 0, so one pipeline per head size). The loop
// over the other positions has bounds that are uniform in the workgroup (masked per row for
// causality), so every thread reads the same k/v/q row at the same time: a broadcast load
// on a GPU, one cache line on a CPU driver. `precise`: no fused multiply-adds, to round like
// the cpu reference.
//   OP_FWD     b0 = out, b1 = lse, b2 = qkv; thread = query row t. One pass over the keys
//              with online softmax: e = exp(s - m), sum += e, o += e * v, where m is a running
//              reference score (sum and o rescaled when a score passes it by more than 8).
//              out = o / sum, lse = m + log(sum).
//   OP_BWD_Q   b0 = dqkv, b1 = dout, b2 = qkv, b3 = lse, b4 = dots(B,NH,T) scratch;
//              thread = query row t. Pass 1: dot = sum p * (dout_t . v). Pass 2:
//              dq = sum p * (dout_t . v - dot) * scale * k, overwritten; dot goes to dots.
//   OP_BWD_KV  same bindings; thread = key row t2, over the query rows t >= t2: dv = sum p *
//              dout_t, dk = sum p * (dout_t . v - dot_t) * scale * q_t, both overwritten.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;
layout(constant_id = 0) const uint HS = 32;
layout(set = 0, binding = 0) buffer B0 { float b0[]; };
layout(set = 0, binding = 1) buffer B1 { float b1[]; };
layout(set = 0, binding = 2) readonly buffer B2 { float qkv[]; };
#if !defined(OP_FWD)
layout(set = 0, binding = 3) readonly buffer B3 { float lse[]; };
layout(set = 0, binding = 4) buffer B4 { float dots[]; };
#endif

layout(push_constant) uniform PushConstants {
    uint B, T, C, NH, o0, o1, o2, o3, o4, o5;
    float scale;
} pc;

const uint ROWS = gl_WorkGroupSize.x;

// Element offsets of position t's q, k and v for head h of batch b.
uint q_at(uint b, uint t, uint h) { return pc.o2 + (b * pc.T + t) * 3u * pc.C + h * HS; }
uint k_at(uint b, uint t, uint h) { return q_at(b, t, h) + pc.C; }
uint v_at(uint b, uint t, uint h) { return q_at(b, t, h) + 2u * pc.C; }

// The scaled score of a row held in registers against a stored row: (x . qkv[at..]) * scale.
float score(float x[HS], uint at) {
    precise float s = 0.0;
    for (uint i = 0; i < HS; i++) s += x[i] * qkv[at + i];
    return s * pc.scale;
}
// x . qkv[at..] without the scale.
float dot_row(float x[HS], uint at) {
    precise float s = 0.0;
    for (uint i = 0; i < HS; i++) s += x[i] * qkv[at + i];
    return s;
}

void main() {
    const uint T = pc.T, C = pc.C, bh = gl_WorkGroupID.y;
    const uint b = bh / pc.NH, h = bh % pc.NH;
    const uint first = gl_WorkGroupID.x * ROWS;        // the workgroup's first row
    const uint last = min(first + ROWS, T) - 1u;        // and its last: uniform bounds
    const uint t = first + gl_LocalInvocationID.x;      // this thread's row
    const bool in_range = t < T;
    const uint tr = min(t, T - 1u);                     // a valid row for inactive threads
#if defined(OP_FWD)
    float q[HS];
    for (uint i = 0; i < HS; i++) q[i] = qkv[q_at(b, tr, h) + i];
    // online softmax, one pass over the keys: o and sum are kept relative to a reference
    // score maxv, and rescaled only when a score exceeds it by more than 8 (so the terms stay
    // below e^8, far from overflow, and the few rescalings add little rounding)
    float maxv = -3.402823466e38, top = maxv, o[HS];
    for (uint i = 0; i < HS; i++) o[i] = 0.0;
    // sum is compensated (Kahan, carry): the backward's exp(s - lse) magnifies its error
    precise acc_t sum = 0.0, carry = 0.0;
    for (uint t2 = 0; t2 <= last; t2++) {
        float s = score(q, k_at(b, t2, h));
        if (t2 > t) continue;
        top = max(top, s);
        if (s > maxv + 8.0) {
            float r = exp_ref(maxv - s);
            sum *= acc_t(r);
            carry *= acc_t(r);
            for (uint i = 0; i < HS; i++) o[i] *= r;
            maxv = s;
        }
        float e = exp_ref(s - maxv);
        precise acc_t term = acc_t(e) - carry;
        precise acc_t next = sum + term;
        carry = (next - sum) - term;
        sum = next;
        uint v = v_at(b, t2, h);
        for (uint i = 0; i < HS; i++) {
            precise float acc = o[i] + e * qkv[v + i];
            o[i] = acc;
        }
    }
    if (!in_range) return;
    float inv = float(acc_t(1.0) / sum);
    uint out_at = pc.o0 + (b * T + t) * C + h * HS;
    for (uint i = 0; i < HS; i++) b0[out_at + i] = o[i] * inv;
    // lse as the reference forms it, from the row's true maximum: top + log(sum relative to
    // top) rounds like max + log(sum) there, which the backward's exp(s - lse) is sensitive to
    b1[pc.o1 + bh * T + t] = top + log(float(sum * acc_t(exp_ref(maxv - top))));
#elif defined(OP_BWD_Q)
    float q[HS], d[HS];
    for (uint i = 0; i < HS; i++) q[i] = qkv[q_at(b, tr, h) + i];
    uint dq_at = pc.o1 + (b * T + tr) * C + h * HS;
    for (uint i = 0; i < HS; i++) d[i] = b1[dq_at + i];
    float l = lse[pc.o3 + bh * T + tr];
    // dot = sum p * (d . v), which the softmax backward subtracts from nearly equal terms:
    // summed with compensation (Kahan) so that a float accumulator loses no more than the
    // reference's double one
    precise acc_t dot = 0.0, carry = 0.0;
    for (uint t2 = 0; t2 <= last; t2++) {
        float p = t2 <= t ? exp_ref(score(q, k_at(b, t2, h)) - l) : 0.0;
        precise acc_t term = acc_t(p) * acc_t(dot_row(d, v_at(b, t2, h))) - carry;
        precise acc_t next = dot + term;
        carry = (next - dot) - term;
        dot = next;
    }
    float dq[HS];
    for (uint i = 0; i < HS; i++) dq[i] = 0.0;
    for (uint t2 = 0; t2 <= last; t2++) {
        uint k = k_at(b, t2, h);
        float p = t2 <= t ? exp_ref(score(q, k) - l) : 0.0;
        precise float dpre = p * (dot_row(d, v_at(b, t2, h)) - float(dot)) * pc.scale;
        for (uint i = 0; i < HS; i++) {
            precise float acc = dq[i] + dpre * qkv[k + i];
            dq[i] = acc;
        }
    }
    if (!in_range) return;
    dots[pc.o4 + bh * T + t] = float(dot);
    uint dq_out = pc.o0 + (b * T + t) * 3u * C + h * HS;
    for (uint i = 0; i < HS; i++) b0[dq_out + i] = dq[i];
#else // OP_BWD_KV: this thread's row is the key row t2 = t; query rows from `first` on
    float k[HS], v[HS], dk[HS], dv[HS];
    for (uint i = 0; i < HS; i++) {
        k[i] = qkv[k_at(b, tr, h) + i];
        v[i] = qkv[v_at(b, tr, h) + i];
        dk[i] = 0.0;
        dv[i] = 0.0;
    }
    for (uint tq = first; tq < T; tq++) {
        uint q = q_at(b, tq, h), d = pc.o1 + (b * T + tq) * C + h * HS;
        float p = tq >= t ? exp_ref(score(k, q) - lse[pc.o3 + bh * T + tq]) : 0.0;
        precise float datt = 0.0;
        for (uint i = 0; i < HS; i++) datt += b1[d + i] * v[i];
        precise float dpre = p * (datt - dots[pc.o4 + bh * T + tq]) * pc.scale;
        for (uint i = 0; i < HS; i++) {
            precise float av = dv[i] + p * b1[d + i];
            precise float ak = dk[i] + dpre * qkv[q + i];
            dv[i] = av;
            dk[i] = ak;
        }
    }
    if (!in_range) return;
    uint dk_out = pc.o0 + (b * T + t) * 3u * C + C + h * HS;
    for (uint i = 0; i < HS; i++) {
        b0[dk_out + i] = dk[i];
        b0[dk_out + C + i] = dv[i];
    }
#endif
}
