// Causal multi-head attention of include/vktrain/backend.h, fused like the Vulkan shaders
// (shaders/attention.comp): no T x T matrix is ever written; the forward leaves one
// log-sum-exp per row (lse(B,NH,T)) from which the backward recomputes p = exp(s - lse).
// qkv(B,T,3C): q at 0, k at C, v at 2C of each position; head h uses channels
// [h*hs, (h+1)*hs). One work-item per (b, h, row), index ((b*NH + h)*T + row). The row's
// vectors are read from global memory (no private arrays: any head size works) and its
// accumulators live in the output rows, which belong to this work-item alone.

inline uint att_q(uint C, uint T, uint b, uint t, uint h, uint hs) {
    return (b * T + t) * 3 * C + h * hs;
}

inline float att_dot(__global const float *x, uint xi, __global const float *y, uint yi,
                     uint hs) {
    float s = 0.0f;
    for (uint i = 0; i < hs; i++) s += x[xi + i] * y[yi + i];
    return s;
}

// out = softmax(q k^T * scale) v per row, in one pass with online softmax: e = exp(s - m),
// sum += e, out += e * v, where m is a running reference score (sum and out rescaled when a
// score passes it by more than 8); lse = max + log(sum relative to max), as the reference.
__kernel void attention_forward(__global float *out, uint o_out, __global float *lse,
                                uint o_lse, __global const float *qkv, uint o_qkv, uint B,
                                uint T, uint C, uint NH, float scale) {
    uint idx = get_global_id(0);
    if (idx >= B * NH * T) return;
    uint t = idx % T, h = (idx / T) % NH, b = idx / (T * NH), hs = C / NH;
    uint q = o_qkv + att_q(C, T, b, t, h, hs);
    uint o = o_out + (b * T + t) * C + h * hs;
    for (uint i = 0; i < hs; i++) out[o + i] = 0.0f;
    float m = -FLT_MAX, top = -FLT_MAX, sum = 0.0f, carry = 0.0f;
    for (uint t2 = 0; t2 <= t; t2++) {
        uint k = o_qkv + att_q(C, T, b, t2, h, hs) + C;
        float s = att_dot(qkv, q, qkv, k, hs) * scale;
        top = fmax(top, s);
        if (s > m + 8.0f) {
            float r = exp(m - s);
            sum *= r;
            carry *= r;
            for (uint i = 0; i < hs; i++) out[o + i] *= r;
            m = s;
        }
        float e = exp(s - m);
        float term = e - carry, next = sum + term; // compensated (Kahan) sum
        carry = (next - sum) - term;
        sum = next;
        uint v = k + C;
        for (uint i = 0; i < hs; i++) out[o + i] += e * qkv[v + i];
    }
    float inv = 1.0f / sum;
    for (uint i = 0; i < hs; i++) out[o + i] *= inv;
    lse[o_lse + idx] = top + log(sum * exp(m - top));
}

// Per query row t: dot = sum_t2 p * (dout_t . v_t2) into dots, then
// dq = sum_t2 p * (dout_t . v_t2 - dot) * scale * k_t2, overwritten.
__kernel void attention_backward_q(__global float *dqkv, uint o_dqkv, __global const float *dout,
                                   uint o_dout, __global const float *qkv, uint o_qkv,
                                   __global const float *lse, uint o_lse, __global float *dots,
                                   uint o_dots, uint B, uint T, uint C, uint NH, float scale) {
    uint idx = get_global_id(0);
    if (idx >= B * NH * T) return;
    uint t = idx % T, h = (idx / T) % NH, b = idx / (T * NH), hs = C / NH;
    uint q = o_qkv + att_q(C, T, b, t, h, hs);
    uint d = o_dout + (b * T + t) * C + h * hs;
    float l = lse[o_lse + idx];
    float dot = 0.0f, carry = 0.0f;
    for (uint t2 = 0; t2 <= t; t2++) {
        uint k = o_qkv + att_q(C, T, b, t2, h, hs) + C;
        float p = exp(att_dot(qkv, q, qkv, k, hs) * scale - l);
        float term = p * att_dot(dout, d, qkv, k + C, hs) - carry, next = dot + term;
        carry = (next - dot) - term;
        dot = next;
    }
    dots[o_dots + idx] = dot;
    uint dq = o_dqkv + att_q(C, T, b, t, h, hs);
    for (uint i = 0; i < hs; i++) dqkv[dq + i] = 0.0f;
    for (uint t2 = 0; t2 <= t; t2++) {
        uint k = o_qkv + att_q(C, T, b, t2, h, hs) + C;
        float p = exp(att_dot(qkv, q, qkv, k, hs) * scale - l);
        float dpre = p * (att_dot(dout, d, qkv, k + C, hs) - dot) * scale;
        for (uint i = 0; i < hs; i++) dqkv[dq + i] += dpre * qkv[k + i];
    }
}

// Per key row t2, over the query rows t >= t2: dv = sum p * dout_t,
// dk = sum p * (dout_t . v_t2 - dot_t) * scale * q_t, both overwritten.
__kernel void attention_backward_kv(__global float *dqkv, uint o_dqkv,
                                    __global const float *dout, uint o_dout,
                                    __global const float *qkv, uint o_qkv,
                                    __global const float *lse, uint o_lse,
                                    __global const float *dots, uint o_dots, uint B, uint T,
                                    uint C, uint NH, float scale) {
    uint idx = get_global_id(0);
    if (idx >= B * NH * T) return;
    uint t2 = idx % T, h = (idx / T) % NH, b = idx / (T * NH), hs = C / NH;
    uint bh = b * NH + h;
    uint k = o_qkv + att_q(C, T, b, t2, h, hs) + C, v = k + C;
    uint dk = o_dqkv + att_q(C, T, b, t2, h, hs) + C, dv = dk + C;
    for (uint i = 0; i < hs; i++) {
        dqkv[dk + i] = 0.0f;
        dqkv[dv + i] = 0.0f;
    }
    for (uint t = t2; t < T; t++) {
        uint q = o_qkv + att_q(C, T, b, t, h, hs);
        uint d = o_dout + (b * T + t) * C + h * hs;
        float p = exp(att_dot(qkv, k, qkv, q, hs) * scale - lse[o_lse + bh * T + t]);
        float datt = att_dot(dout, d, qkv, v, hs);
        float dpre = p * (datt - dots[o_dots + bh * T + t]) * scale;
        for (uint i = 0; i < hs; i++) {
            dqkv[dv + i] += p * dout[d + i];
            dqkv[dk + i] += dpre * qkv[q + i];
        }
    }
}
