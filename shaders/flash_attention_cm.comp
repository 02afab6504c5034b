#version 450
// Flash attention on KHR cooperative matrices: flash_attention.comp's scheme and interface
// (read that first), with every tile product on the matrix units, fp16 operands and fp32
// accumulation. It rounds q, k, v, dO and the probability and score-gradient tiles to fp16, so
// the host runs it only under precision = fp16 (2e-2 against the fp32 reference).
//
// Sizes are specialization constants from the host (vk_ops.c, flash_cm_plan): the workgroup
// is 4 subgroups of exactly SG invocations (the pipeline requires that size), the fragment
// TM x TN x TK one of the device's own configurations (as the coopmat matmul tier picks it),
// BLK (16, 32 or 64) a multiple of TM, TN and TK, the head size HS a multiple of TN and TK.
// A product of two shared fp16 tiles (MM_TILE) splits its output into fragments dealt round
// robin to the 4 subgroups, each accumulating over K in TK steps and storing its fragment to
// a shared fp32 tile; the row work (masking, the online softmax, dS, accumulating O, dQ, dK,
// dV in registers) is flash_attention.comp's, by WG/BLK invocations per row.
//   OP_FWD     S = Q K^T; P = exp(S - m') in fp16; the fresh product P V added to O after O is
//              rescaled by e^(m - m'). HALF_OUT: b3 = out's fp16 copy (common.glsl).
//   OP_BWD_Q   D = dO . O from the forward's output (b5, fp32); then S = Q K^T and
//              dP = dO V^T, dS in fp16, and the product dS K added to dQ.
//   OP_BWD_KV  S^T = K Q^T and dP^T = V dO^T; P^T and dS^T in fp16; dV += P^T dO, dK += dS^T Q.
// Rows are padded (8 halves, 4 floats: 16 bytes) so fragment loads and stores stay aligned.
#extension GL_GOOGLE_include_directive : require
#define USE_COOPMAT 1
#include "common.glsl"

layout(local_size_x = 128, local_size_y = 1, local_size_z = 1, local_size_x_id = 0) in;
layout(constant_id = 1) const uint HS = 64;
layout(constant_id = 2) const uint BLK = 32;
layout(constant_id = 3) const uint TM = 16;
layout(constant_id = 4) const uint TN = 16;
layout(constant_id = 5) const uint TK = 16;

const uint WG = gl_WorkGroupSize.x;
const uint NW = 4u;                // subgroups
const uint SG = WG / NW;
const uint LANES = WG / BLK;       // invocations per tile row
const uint JC = BLK / LANES;       // tile columns per lane
const uint HC = (HS + LANES - 1u) / LANES; // head channels per lane
const uint HSP = HS + 8u;          // fp16 row tiles' pitch
const uint BLKP = BLK + 8u;        // fp16 score tiles' pitch
const uint SFS = BLK + 4u;         // fp32 score tiles' pitch
const uint PVS = HS + 4u;          // fp32 product tiles' pitch

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

// fp16 row tiles: the block's own rows and the streamed ones
shared float16_t own_a[BLK * HSP]; // Q (FWD, BWD_Q) or K (BWD_KV)
shared float16_t str_a[BLK * HSP]; // K (FWD, BWD_Q) or Q (BWD_KV)
shared float16_t str_b[BLK * HSP]; // V (FWD, BWD_Q) or dO (BWD_KV)
shared float16_t ph[BLK * BLKP];   // P (FWD, BWD_KV)
#if !defined(OP_FWD)
shared float16_t own_b[BLK * HSP]; // dO (BWD_Q) or V (BWD_KV)
shared float16_t dsh[BLK * BLKP];  // dS (BWD_Q) or dS^T (BWD_KV)
#endif
// fp32 results of the tile products: the score tiles (S, and dP) while the rows read them,
// then the products added into registers (one, or two in BWD_KV); never both at once
#if defined(OP_FWD)
const uint SCR = BLK * SFS > BLK * PVS ? BLK * SFS : BLK * PVS;
#elif defined(OP_BWD_Q)
const uint SCR = 2u * BLK * SFS > BLK * PVS ? 2u * BLK * SFS : BLK * PVS;
#else
const uint SCR = 2u * BLK * SFS > 2u * BLK * PVS ? 2u * BLK * SFS : 2u * BLK * PVS;
#endif
shared float scr[SCR];
shared float part[BLK * LANES];      // per-lane partial sums (l in FWD, D in BWD_Q)
#if defined(OP_BWD_KV)
shared float str_l[BLK], str_d[BLK]; // the streamed query rows' lse and D
#endif

const float NEG = -3.0e38;

uint qkv_at(uint b, uint t, uint h) { return pc.o2 + (b * pc.T + t) * 3u * pc.C + h * HS; }
uint btc_at(uint base, uint b, uint t, uint h) { return base + (b * pc.T + t) * pc.C + h * HS; }

// Rows [first, first + BLK) into an fp16 tile (pitch HSP), rounded as precision = fp16 rounds
// (to_f16), zeros past T.
#define LOAD_ROWS(dst, first, SRC)                                                          \
    for (uint i_ = gl_LocalInvocationID.x; i_ < BLK * HS; i_ += WG) {                      \
        uint t_ = (first) + i_ / HS, c_ = i_ % HS;                                          \
        dst[(i_ / HS) * HSP + c_] = t_ < pc.T ? to_f16(SRC(t_, c_)) : float16_t(0.0);       \
    }
#define Q_OF(t, c) qkv[qkv_at(b, t, h) + c]
#define K_OF(t, c) qkv[qkv_at(b, t, h) + pc.C + c]
#define V_OF(t, c) qkv[qkv_at(b, t, h) + 2u * pc.C + c]
#define DOUT_OF(t, c) b1[btc_at(pc.o1, b, t, h) + c]

#define FA coopmat<float16_t, gl_ScopeSubgroup, TM, TK, gl_MatrixUseA>
#define FB coopmat<float16_t, gl_ScopeSubgroup, TK, TN, gl_MatrixUseB>
#define ACC coopmat<float, gl_ScopeSubgroup, TM, TN, gl_MatrixUseAccumulator>
#define ROWM gl_CooperativeMatrixLayoutRowMajor
#define COLM gl_CooperativeMatrixLayoutColumnMajor

// dst[doff + m * ds + n] (fp32) = sum_k A(m, k) B(k, n) for an M x N output over K, A and B
// shared fp16 tiles: A row-major (pitch as), B row-major (B(k, n) at B[k * bs + n]) or, with
// BCOL, column-major (at B[n * bs + k]: a stored row tile read transposed).
#define MM_TILE(A, as, B, bs, BCOL, M_, N_, K_, dst, doff, ds)                              \
    for (uint f_ = warp; f_ < ((M_) / TM) * ((N_) / TN); f_ += NW) {                       \
        uint m_ = (f_ / ((N_) / TN)) * TM, n_ = (f_ % ((N_) / TN)) * TN;                    \
        ACC acc_ = ACC(0.0);                                                                \
        for (uint k_ = 0; k_ < (K_); k_ += TK) {                                            \
            FA fa_;                                                                         \
            FB fb_;                                                                         \
            coopMatLoad(fa_, A, m_ * (as) + k_, as, ROWM);                                  \
            if (BCOL)                                                                       \
                coopMatLoad(fb_, B, n_ * (bs) + k_, bs, COLM);                              \
            else                                                                            \
                coopMatLoad(fb_, B, k_ * (bs) + n_, bs, ROWM);                              \
            acc_ = coopMatMulAdd(fa_, fb_, acc_);                                           \
        }                                                                                   \
        coopMatStore(acc_, dst, (doff) + m_ * (ds) + n_, ds, ROWM);                         \
    }

void main() {
    const uint T = pc.T, bh = gl_WorkGroupID.y, b = bh / pc.NH, h = bh % pc.NH;
    const uint tid = gl_LocalInvocationID.x, r = tid / LANES, lane = tid % LANES;
    const uint warp = gl_SubgroupID;
    const uint blk0 = gl_WorkGroupID.x * BLK;
    const uint t = blk0 + r;
#if defined(OP_FWD)
    LOAD_ROWS(own_a, blk0, Q_OF);
    float m = NEG, l = 0.0, o[HC];
    for (uint c = 0; c < HC; c++) o[c] = 0.0;
    const uint nkb = (min(blk0 + BLK, T) - 1u) / BLK + 1u;
    for (uint kb = 0; kb < nkb; kb++) {
        const uint k0 = kb * BLK;
        barrier();
        LOAD_ROWS(str_a, k0, K_OF);
        LOAD_ROWS(str_b, k0, V_OF);
        barrier();
        MM_TILE(own_a, HSP, str_a, HSP, true, BLK, BLK, HS, scr, 0u, SFS); // S = Q K^T
        barrier();
        float mx = m;
        for (uint j = 0; j < BLK; j++)
            if (k0 + j <= t && k0 + j < T) mx = max(mx, scr[r * SFS + j] * pc.scale);
        float ps = 0.0;
        for (uint jj = 0; jj < JC; jj++) {
            uint j = lane + jj * LANES, tk = k0 + j;
            float16_t p = tk <= t && tk < T ? float16_t(exp(scr[r * SFS + j] * pc.scale - mx))
                                            : float16_t(0.0);
            ph[r * BLKP + j] = p;
            ps += float(p); // the sum of what P V multiplies
        }
        part[r * LANES + lane] = ps;
        barrier();
        float alpha = exp(m - mx);
        ps = 0.0;
        for (uint k = 0; k < LANES; k++) ps += part[r * LANES + k];
        l = l * alpha + ps;
        MM_TILE(ph, BLKP, str_b, HSP, false, BLK, HS, BLK, scr, 0u, PVS); // P V
        barrier();
        for (uint c = 0; c < HC; c++) {
            uint ch = lane + c * LANES;
            if (ch < HS) o[c] = o[c] * alpha + scr[r * PVS + ch];
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
    const uint DP = BLK * SFS; // dP's tile in scr, after S's
    // D = dO . O (FlashAttention-2), per lane, then over the lanes in order; dO rounded to
    // fp16 as the dP products see it, so that dP - D cancels as it should
    float dpart = 0.0;
    for (uint c = 0; c < HC && t < T; c++) {
        uint ch = lane + c * LANES;
        if (ch < HS)
            dpart += float(to_f16(DOUT_OF(t, ch))) * fwd_out[btc_at(pc.o5, b, t, h) + ch];
    }
    part[r * LANES + lane] = dpart;
    barrier();
    float D = 0.0;
    for (uint k = 0; k < LANES; k++) D += part[r * LANES + k];
    float dq[HC];
    for (uint c = 0; c < HC; c++) dq[c] = 0.0;
    for (uint kb = 0; kb < nkb; kb++) {
        const uint k0 = kb * BLK;
        barrier();
        LOAD_ROWS(str_a, k0, K_OF);
        LOAD_ROWS(str_b, k0, V_OF);
        barrier();
        MM_TILE(own_a, HSP, str_a, HSP, true, BLK, BLK, HS, scr, 0u, SFS);
        MM_TILE(own_b, HSP, str_b, HSP, true, BLK, BLK, HS, scr, DP, SFS);
        barrier();
        for (uint jj = 0; jj < JC; jj++) {
            uint j = lane + jj * LANES, tk = k0 + j;
            float ds = 0.0;
            if (tk <= t && tk < T)
                ds = exp(scr[r * SFS + j] * pc.scale - lrow) * (scr[DP + r * SFS + j] - D) *
                     pc.scale;
            dsh[r * BLKP + j] = to_f16(ds);
        }
        barrier();
        MM_TILE(dsh, BLKP, str_a, HSP, false, BLK, HS, BLK, scr, 0u, PVS); // dS K
        barrier();
        for (uint c = 0; c < HC; c++) {
            uint ch = lane + c * LANES;
            if (ch < HS) dq[c] += scr[r * PVS + ch];
        }
    }
    if (t >= T) return;
    uint dq_at = pc.o0 + (b * T + t) * 3u * pc.C + h * HS;
    for (uint c = 0; c < HC; c++) {
        uint ch = lane + c * LANES;
        if (ch < HS) b0[dq_at + ch] = dq[c];
    }
    if (lane == 0u) dots[pc.o4 + bh * T + t] = D;
#else // OP_BWD_KV
    LOAD_ROWS(own_a, blk0, K_OF);
    LOAD_ROWS(own_b, blk0, V_OF);
    const uint DP = BLK * SFS, DK = BLK * PVS; // second tiles in scr
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
        MM_TILE(own_a, HSP, str_a, HSP, true, BLK, BLK, HS, scr, 0u, SFS); // S^T = K Q^T
        MM_TILE(own_b, HSP, str_b, HSP, true, BLK, BLK, HS, scr, DP, SFS); // dP^T = V dO^T
        barrier();
        for (uint jj = 0; jj < JC; jj++) {
            uint i = lane + jj * LANES, tq = q0 + i;
            float p = 0.0, ds = 0.0;
            if (tq >= t && tq < T) {
                p = exp(scr[r * SFS + i] * pc.scale - str_l[i]);
                ds = p * (scr[DP + r * SFS + i] - str_d[i]) * pc.scale;
            }
            ph[r * BLKP + i] = float16_t(p);
            dsh[r * BLKP + i] = to_f16(ds);
        }
        barrier();
        MM_TILE(ph, BLKP, str_b, HSP, false, BLK, HS, BLK, scr, 0u, PVS);  // dV += P^T dO
        MM_TILE(dsh, BLKP, str_a, HSP, false, BLK, HS, BLK, scr, DK, PVS); // dK += dS^T Q
        barrier();
        for (uint c = 0; c < HC; c++) {
            uint ch = lane + c * LANES;
            if (ch < HS) {
                dv[c] += scr[r * PVS + ch];
                dk[c] += scr[DK + r * PVS + ch];
            }
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
