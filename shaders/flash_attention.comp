#version 450
// Causal multi-head attention of include/vktrain/backend.h in the FlashAttention-2 scheme,
// tiled through shared memory: no T x T matrix in memory, no float atomics, every sum in a
// fixed order (a result is bitwise the same run after run). Same interface as attention.comp
// (kept as the exact diagnostic, option attention = exact): qkv(B,T,3C) with q at 0, k at C,
// v at 2C of each position, head h on channels [h*hs, (h+1)*hs); lse(B,NH,T) the log-sum-exp
// of each query row's scaled scores, which the backward recomputes probabilities from.
//
// Tiles: BLK query rows by BLK key rows (specialization constant 1: 16, 32, 64 or 128; the
// host picks the largest whose tiles fit the device's shared memory), head size HS (constant 0). A workgroup of 128
// invocations handles one tile row block of one (batch, head), grid (ceil(T/BLK), B*NH); row r
// of a block belongs to the LANES = 128/BLK invocations r*LANES.., lane l of them owning the
// tile columns j = l, l+LANES, ... and the head channels c = l, l+LANES, ... Scores go through
// shared memory, where each lane reads its row's whole tile (a broadcast) to take the row's
// maximum and sum in the same order as its siblings, so they agree without a reduction.
//   OP_FWD     b0 = out, b1 = lse, b2 = qkv (HALF_OUT: b3 = out's fp16 copy, common.glsl);
//              block = BLK query rows. Over the key blocks up to
//              the diagonal: S = Q K^T * scale (causally masked), m' = max(m, rowmax S),
//              P = exp(S - m'), l = l e^(m - m') + rowsum P, O = O e^(m - m') + P V.
//              out = O / l, lse = m + log l.
//   OP_BWD_Q   b0 = dqkv, b1 = dout, b2 = qkv, b3 = lse, b4 = dots(B,NH,T), b5 = the
//              forward's out; block = BLK query rows. D = rowsum(dO o O) (= rowsum(P o dP),
//              the softmax backward's subtrahend; per lane, then over the lanes in order),
//              then over the key blocks dS = P o (dP - D) * scale with dP = dO V^T, and
//              dQ = dS K (overwritten). D goes to dots.
//   OP_BWD_KV  same bindings; block = BLK key rows, over the query blocks from the diagonal
//              on: P^T and dS^T from the stored lse and D, dV = P^T dO, dK = dS^T Q
//              (both overwritten).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 128) in;
layout(constant_id = 0) const uint HS = 32;
layout(constant_id = 1) const uint BLK = 16;
const uint WG = 128;
const uint LANES = WG / BLK;                  // invocations per tile row
const uint JC = BLK / LANES;                  // tile columns per lane (BLK 16..128)
const uint HC = (HS + LANES - 1) / LANES;     // head channels per lane
const uint PADW = BLK + 1;                    // tile row pitch in shared memory

layout(set = 0, binding = 0) buffer B0 { float b0[]; };
layout(set = 0, binding = 1) buffer B1 { float b1[]; };
layout(set = 0, binding = 2) readonly buffer B2 { float qkv[]; };
#if defined(OP_FWD) && defined(HALF_OUT)
layout(set = 0, binding = 3) buffer B3 { uint16_t outh[]; }; // out's fp16 copy (common.glsl)
#endif
#if !defined(OP_FWD)
layout(set = 0, binding = 3) readonly buffer B3 { float lse[]; };
layout(set = 0, binding = 4) buffer B4 { float dots[]; };
#endif
#if defined(OP_BWD_Q)
layout(set = 0, binding = 5) readonly buffer B5 { float fwd_out[]; }; // the forward's output
#endif

layout(push_constant) uniform PushConstants {
    uint B, T, C, NH, o0, o1, o2, o3, o4, o5;
    float scale;
} pc;

// Shared memory (the host sizes BLK by these: vk_ops.c, flash_shared_bytes): the block's own
// rows, the streamed block's rows, and score tiles with a padded pitch.
shared float own_a[BLK * HS];  // Q (FWD, BWD_Q) or K (BWD_KV)
shared float str_a[BLK * HS];  // K (FWD, BWD_Q) or Q (BWD_KV)
shared float str_b[BLK * HS];  // V (FWD, BWD_Q) or dO (BWD_KV)
shared float tile[BLK * PADW]; // S (FWD), dS (BWD_Q), P^T (BWD_KV)
#if defined(OP_FWD)
shared float ptile[BLK * PADW]; // P
#else
shared float own_b[BLK * HS];  // dO (BWD_Q) or V (BWD_KV)
#endif
#if defined(OP_BWD_Q)
shared float part[BLK * LANES]; // the lanes' partial sums of D
#endif
#if defined(OP_BWD_KV)
shared float tile2[BLK * PADW]; // dS^T
shared float str_l[BLK], str_d[BLK]; // the streamed query rows' lse and D
#endif

const float NEG = -3.0e38; // a masked score: exp(NEG - m) is 0, and NEG - NEG is no NaN

// Element offset of head h's channels of position t in qkv (q; k at +C, v at +2C).
uint qkv_at(uint b, uint t, uint h) { return pc.o2 + (b * pc.T + t) * 3u * pc.C + h * HS; }
// ... in a (B,T,C) tensor at element offset base.
uint btc_at(uint base, uint b, uint t, uint h) { return base + (b * pc.T + t) * pc.C + h * HS; }

// Rows [first, first + BLK) into a shared tile of BLK x HS, zeros past T (masked later, but
// they must be finite). SRC(t, c) is the element of row t, channel c.
#define LOAD_ROWS(dst, first, SRC)                                                          \
    for (uint i_ = gl_LocalInvocationID.x; i_ < BLK * HS; i_ += WG) {                      \
        uint t_ = (first) + i_ / HS, c_ = i_ % HS;                                          \
        dst[i_] = t_ < pc.T ? SRC(t_, c_) : 0.0;                                            \
    }
#define Q_OF(t, c) qkv[qkv_at(b, t, h) + c]
#define K_OF(t, c) qkv[qkv_at(b, t, h) + pc.C + c]
#define V_OF(t, c) qkv[qkv_at(b, t, h) + 2u * pc.C + c]
#define DOUT_OF(t, c) b1[btc_at(pc.o1, b, t, h) + c]

// x[xi..xi+HS) . y[yi..yi+HS) over two shared tiles, in channel order.
#define DOT_ROWS(x, xi, y, yi, out)                                                         \
    {                                                                                       \
        float s_ = 0.0;                                                                     \
        for (uint c_ = 0; c_ < HS; c_++) s_ += x[(xi) + c_] * y[(yi) + c_];                 \
        out = s_;                                                                           \
    }

void main() {
    const uint T = pc.T, bh = gl_WorkGroupID.y, b = bh / pc.NH, h = bh % pc.NH;
    const uint tid = gl_LocalInvocationID.x, r = tid / LANES, lane = tid % LANES;
    const uint blk0 = gl_WorkGroupID.x * BLK; // the block's first row
    const uint t = blk0 + r;                  // this invocation's row (query, or key in KV)
#if defined(OP_FWD)
    LOAD_ROWS(own_a, blk0, Q_OF);
    float m = NEG, l = 0.0, o[HC];
    for (uint c = 0; c < HC; c++) o[c] = 0.0;
    // key blocks up to the one holding the block's last query row
    const uint nkb = (min(blk0 + BLK, T) - 1u) / BLK + 1u;
    for (uint kb = 0; kb < nkb; kb++) {
        const uint k0 = kb * BLK;
        barrier(); // the previous block's tiles are consumed
        LOAD_ROWS(str_a, k0, K_OF);
        LOAD_ROWS(str_b, k0, V_OF);
        barrier();
        for (uint jj = 0; jj < JC; jj++) {
            uint j = lane + jj * LANES, tk = k0 + j;
            float s;
            DOT_ROWS(own_a, r * HS, str_a, j * HS, s);
            tile[r * PADW + j] = tk <= t && tk < T ? s * pc.scale : NEG;
        }
        barrier();
        float mx = m;
        for (uint j = 0; j < BLK; j++) mx = max(mx, tile[r * PADW + j]);
        for (uint jj = 0; jj < JC; jj++) {
            uint j = lane + jj * LANES;
            ptile[r * PADW + j] = exp(tile[r * PADW + j] - mx);
        }
        barrier();
        float alpha = exp(m - mx), ps = 0.0;
        for (uint j = 0; j < BLK; j++) ps += ptile[r * PADW + j];
        l = l * alpha + ps;
        for (uint c = 0; c < HC; c++) {
            uint ch = lane + c * LANES;
            if (ch >= HS) break;
            float acc = o[c] * alpha;
            for (uint j = 0; j < BLK; j++) acc += ptile[r * PADW + j] * str_b[j * HS + ch];
            o[c] = acc;
        }
        m = mx;
    }
    if (t >= T) return;
    float inv = 1.0 / l;
    uint out_at = btc_at(pc.o0, b, t, h);
    for (uint c = 0; c < HC; c++) {
        uint ch = lane + c * LANES;
        if (ch >= HS) continue;
        float y = o[c] * inv;
        b0[out_at + ch] = y;
#if defined(HALF_OUT)
        outh[btc_at(pc.o3, b, t, h) + ch] = uint16_t(f16_bits(y));
#endif
    }
    if (lane == 0u) b1[pc.o1 + bh * T + t] = m + log(l);
#elif defined(OP_BWD_Q)
    LOAD_ROWS(own_a, blk0, Q_OF);
    LOAD_ROWS(own_b, blk0, DOUT_OF);
    const float lrow = lse[pc.o3 + bh * T + min(t, T - 1u)];
    const uint nkb = (min(blk0 + BLK, T) - 1u) / BLK + 1u;
    // D = sum_j p_j dp_j = dO . O (FlashAttention-2): this lane's channels, then the lanes
    // in order
    float dpart = 0.0;
    for (uint c = 0; c < HC && t < T; c++) {
        uint ch = lane + c * LANES;
        if (ch < HS) dpart += DOUT_OF(t, ch) * fwd_out[btc_at(pc.o5, b, t, h) + ch];
    }
    part[r * LANES + lane] = dpart;
    barrier();
    float D = 0.0;
    for (uint k = 0; k < LANES; k++) D += part[r * LANES + k];
    // one pass over the key blocks: dS = P o (dP - D) * scale, dQ = dS K
    float dq[HC];
    for (uint c = 0; c < HC; c++) dq[c] = 0.0;
    for (uint kb = 0; kb < nkb; kb++) {
        const uint k0 = kb * BLK;
        barrier();
        LOAD_ROWS(str_a, k0, K_OF);
        LOAD_ROWS(str_b, k0, V_OF);
        barrier();
        for (uint jj = 0; jj < JC; jj++) {
            uint j = lane + jj * LANES, tk = k0 + j;
            float ds = 0.0;
            if (tk <= t && tk < T) {
                float s, dp;
                DOT_ROWS(own_a, r * HS, str_a, j * HS, s);
                DOT_ROWS(own_b, r * HS, str_b, j * HS, dp);
                ds = exp(s * pc.scale - lrow) * (dp - D) * pc.scale;
            }
            tile[r * PADW + j] = ds;
        }
        barrier();
        for (uint c = 0; c < HC; c++) {
            uint ch = lane + c * LANES;
            if (ch >= HS) break;
            float acc = dq[c];
            for (uint j = 0; j < BLK; j++) acc += tile[r * PADW + j] * str_a[j * HS + ch];
            dq[c] = acc;
        }
    }
    if (t >= T) return;
    uint dq_at = pc.o0 + (b * T + t) * 3u * pc.C + h * HS;
    for (uint c = 0; c < HC; c++) {
        uint ch = lane + c * LANES;
        if (ch < HS) b0[dq_at + ch] = dq[c];
    }
    if (lane == 0u) dots[pc.o4 + bh * T + t] = D;
#else // OP_BWD_KV: this block's rows are keys; query blocks from the diagonal on
    LOAD_ROWS(own_a, blk0, K_OF);
    LOAD_ROWS(own_b, blk0, V_OF);
    float dk[HC], dv[HC];
    for (uint c = 0; c < HC; c++) dk[c] = dv[c] = 0.0;
    const uint nqb = (T + BLK - 1u) / BLK;
    for (uint qb = gl_WorkGroupID.x; qb < nqb; qb++) {
        const uint q0 = qb * BLK;
        barrier();
        LOAD_ROWS(str_a, q0, Q_OF);
        LOAD_ROWS(str_b, q0, DOUT_OF);
        if (tid < BLK) {
            uint tq = min(q0 + tid, T - 1u);
            str_l[tid] = lse[pc.o3 + bh * T + tq];
            str_d[tid] = dots[pc.o4 + bh * T + tq];
        }
        barrier();
        for (uint jj = 0; jj < JC; jj++) {
            uint i = lane + jj * LANES, tq = q0 + i;
            float p = 0.0, ds = 0.0;
            if (tq >= t && tq < T) {
                float s, dp;
                DOT_ROWS(str_a, i * HS, own_a, r * HS, s);
                DOT_ROWS(str_b, i * HS, own_b, r * HS, dp);
                p = exp(s * pc.scale - str_l[i]);
                ds = p * (dp - str_d[i]) * pc.scale;
            }
            tile[r * PADW + i] = p;
            tile2[r * PADW + i] = ds;
        }
        barrier();
        for (uint c = 0; c < HC; c++) {
            uint ch = lane + c * LANES;
            if (ch >= HS) break;
            float av = dv[c], ak = dk[c];
            for (uint i = 0; i < BLK; i++) {
                av += tile[r * PADW + i] * str_b[i * HS + ch];
                ak += tile2[r * PADW + i] * str_a[i * HS + ch];
            }
            dv[c] = av;
            dk[c] = ak;
        }
    }
    if (t >= T) return;
    uint dk_at = pc.o0 + (b * T + t) * 3u * pc.C + pc.C + h * HS;
    for (uint c = 0; c < HC; c++) {
        uint ch = lane + c * LANES;
        if (ch < HS) {
            b0[dk_at + ch] = dk[c];
            b0[dk_at + pc.C + ch] = dv[c];
        }
    }
#endif
}
