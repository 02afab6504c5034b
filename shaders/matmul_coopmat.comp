#version 450
// The coopmat tier: GEMM on KHR cooperative matrices (tensor cores and their kin), fp16
// operands, fp32 accumulation; the interface, split-K and the bounds are matmul_common.glsl's.
//
// Every size is a specialization constant the host derives from the device
// (src/backend/vulkan/vk_matmul.c): the fragment shape TM x TN x TK is one of the device's own
// VK_KHR_cooperative_matrix configurations (16x16x16 on NVIDIA and AMD, 8x8x16 and others on
// Intel, 8x8x8 on lavapipe), never assumed. A workgroup computes a BM x BN block of C; its
// subgroups ("warps", each of exactly SG invocations: the pipeline requires that size, with
// full subgroups) own WM x WN warp tiles, i.e. FM x FN fragments, laid out (BM/WM) x (BN/WN).
// Each step of TK multiplies FM A fragments by FN B fragments: every fragment loaded from
// shared memory is used FN (or FM) times.
//
// Staging: the workgroup reads the next BK slice of A and B from global memory (4 elements
// per load, one 128-bit load when VKT_FLAG_ALIGNED, 64-bit for fp16 tensors) into fp16
// registers while the current slice is multiplied (fp32 operands rounded as they arrive,
// fp16 ones as they are: load4h_*, matmul_common.glsl), then stores them into shared memory
// in the matrices' stored layout: no transpose on store. A stored (M,K) is loaded row-major, A stored (K,M) column-major;
// likewise B (K,N) row-major and B (N,K) column-major. Rows are padded by 8 halves (16 bytes:
// fragment loads stay aligned, and successive rows start 4 banks apart).
//
// Epilogue: fragments wholly inside C go straight from the accumulators to global memory
// (coopMatStore), with alpha, beta * C (a coopMatLoad of C) and the bias (a broadcast tile
// built in the warp's slice of shared memory) applied to the fragment; fragments on the
// matrix edge, or with C unaligned, pass through that slice and are stored per element with
// bounds.
// Dispatch: (ceil(N/BN), ceil(M/BM), splits), workgroup (BM/WM)*(BN/WN)*SG invocations.
#extension GL_GOOGLE_include_directive : require
#define USE_COOPMAT 1
#include "common.glsl"
#include "matmul_common.glsl"

layout(local_size_x = 128, local_size_y = 1, local_size_z = 1, local_size_x_id = 0) in;
layout(constant_id = 1) const uint BM = 64;
layout(constant_id = 2) const uint BN = 64;
layout(constant_id = 3) const uint BK = 32;
layout(constant_id = 4) const uint WM = 32;
layout(constant_id = 5) const uint WN = 32;
layout(constant_id = 6) const uint TM = 16;
layout(constant_id = 7) const uint TN = 16;
layout(constant_id = 8) const uint TK = 16;

const uint WG = gl_WorkGroupSize.x;
const uint FM = WM / TM, FN = WN / TN;
const uint WARPS_N = BN / WN, WARPS = (BM / WM) * (BN / WN);
const uint SG = WG / WARPS;
const uint PAD = 8u;
// shared rows: A as stored is BM x BK (or BK x BM), B is BK x BN (or BN x BK)
const uint SHA = BM * (BK + PAD) > BK * (BM + PAD) ? BM * (BK + PAD) : BK * (BM + PAD);
const uint SHB = BN * (BK + PAD) > BK * (BN + PAD) ? BN * (BK + PAD) : BK * (BN + PAD);
const uint CHUNKS_A = BM * BK / 4u, CHUNKS_B = BK * BN / 4u;
const uint RA = (CHUNKS_A + WG - 1u) / WG, RB = (CHUNKS_B + WG - 1u) / WG;

shared float16_t As[SHA];
shared float16_t Bs[SHB];
shared float Cw[WARPS * TM * TN]; // each warp's epilogue slice

#define ACC coopmat<float, gl_ScopeSubgroup, TM, TN, gl_MatrixUseAccumulator>

f16vec4 ra[RA], rb[RB]; // the next K slice, in flight, already fp16

// Row lengths in shared memory: the stored matrices' tile widths plus the padding.
uint sa() { return (trans_a() ? BM : BK) + PAD; }
uint sb() { return (trans_b() ? BK : BN) + PAD; }
uvec2 chunk_a(uint e) {
    uint w = trans_a() ? BM / 4u : BK / 4u;
    return uvec2(e / w, (e % w) * 4u);
}
uvec2 chunk_b(uint e) {
    uint w = trans_b() ? BK / 4u : BN / 4u;
    return uvec2(e / w, (e % w) * 4u);
}

void fetch(uint k0, uint m0, uint n0, uint ke, uint tid) {
    [[unroll]] for (uint i = 0u; i < RA; i++) {
        uint e = tid + i * WG;
        uvec2 rc = chunk_a(e);
        uvec2 at = trans_a() ? uvec2(k0, m0) : uvec2(m0, k0);
        ra[i] = e < CHUNKS_A ? load4h_a(at.x + rc.x, at.y + rc.y, a_rows(ke), a_cols(ke), a_ld())
                             : f16vec4(0.0);
    }
    [[unroll]] for (uint i = 0u; i < RB; i++) {
        uint e = tid + i * WG;
        uvec2 rc = chunk_b(e);
        uvec2 at = trans_b() ? uvec2(n0, k0) : uvec2(k0, n0);
        rb[i] = e < CHUNKS_B ? load4h_b(at.x + rc.x, at.y + rc.y, b_rows(ke), b_cols(ke), b_ld())
                             : f16vec4(0.0);
    }
}

void stage(uint tid) {
    uint la = sa(), lb = sb();
    [[unroll]] for (uint i = 0u; i < RA; i++) {
        uint e = tid + i * WG;
        if (e >= CHUNKS_A) break;
        uvec2 rc = chunk_a(e);
        [[unroll]] for (uint j = 0u; j < 4u; j++) As[rc.x * la + rc.y + j] = ra[i][j];
    }
    [[unroll]] for (uint i = 0u; i < RB; i++) {
        uint e = tid + i * WG;
        if (e >= CHUNKS_B) break;
        uvec2 rc = chunk_b(e);
        [[unroll]] for (uint j = 0u; j < 4u; j++) Bs[rc.x * lb + rc.y + j] = rb[i][j];
    }
}

// Fragment (row block r of TM rows, k offset kk) of the A tile; (kk, column block) of B.
void load_fa(out coopmat<float16_t, gl_ScopeSubgroup, TM, TK, gl_MatrixUseA> f, uint r, uint kk) {
    if (trans_a())
        coopMatLoad(f, As, kk * sa() + r, sa(), gl_CooperativeMatrixLayoutColumnMajor);
    else
        coopMatLoad(f, As, r * sa() + kk, sa(), gl_CooperativeMatrixLayoutRowMajor);
}
void load_fb(out coopmat<float16_t, gl_ScopeSubgroup, TK, TN, gl_MatrixUseB> f, uint kk, uint n) {
    if (trans_b())
        coopMatLoad(f, Bs, n * sb() + kk, sb(), gl_CooperativeMatrixLayoutColumnMajor);
    else
        coopMatLoad(f, Bs, kk * sb() + n, sb(), gl_CooperativeMatrixLayoutRowMajor);
}

// The bias of columns n.. as a TM x TN tile (every row the same), through the warp's slice.
ACC bias_tile(uint n, uint slice, uint lane) {
    for (uint e = lane; e < TM * TN; e += SG) {
        uint col = n + e % TN;
        Cw[slice + e] = col < pc.N ? bias[pc.off_bias + col] : 0.0;
    }
    subgroupMemoryBarrierShared();
    subgroupBarrier();
    ACC t;
    coopMatLoad(t, Cw, slice, TN, gl_CooperativeMatrixLayoutRowMajor);
    subgroupBarrier(); // every lane has its part before the slice is reused
    return t;
}

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint warp = gl_SubgroupID, lane = gl_SubgroupInvocationID;
    const uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
    const uint wm0 = (warp / WARPS_N) * WM, wn0 = (warp % WARPS_N) * WN;
    const uint kb = k_begin(), ke = k_end();

    ACC acc[FM * FN];
    [[unroll]] for (uint i = 0u; i < FM * FN; i++) acc[i] = ACC(0.0);

    fetch(kb, m0, n0, ke, tid);
    for (uint k0 = kb; k0 < ke; k0 += BK) {
        barrier();
        stage(tid);
        barrier();
        if (k0 + BK < ke) fetch(k0 + BK, m0, n0, ke, tid);
        [[unroll]] for (uint kk = 0u; kk < BK; kk += TK) {
            coopmat<float16_t, gl_ScopeSubgroup, TM, TK, gl_MatrixUseA> fa[FM];
            coopmat<float16_t, gl_ScopeSubgroup, TK, TN, gl_MatrixUseB> fb[FN];
            [[unroll]] for (uint i = 0u; i < FM; i++) load_fa(fa[i], wm0 + i * TM, kk);
            [[unroll]] for (uint j = 0u; j < FN; j++) load_fb(fb[j], kk, wn0 + j * TN);
            [[unroll]] for (uint i = 0u; i < FM; i++)
                [[unroll]] for (uint j = 0u; j < FN; j++)
                    acc[i * FN + j] = coopMatMulAdd(fa[i], fb[j], acc[i * FN + j]);
        }
    }

    const uint slice = warp * TM * TN;
    const bool has_bias = (pc.flags & VKT_FLAG_BIAS) != 0u;
    [[unroll]] for (uint i = 0u; i < FM; i++) {
        [[unroll]] for (uint j = 0u; j < FN; j++) {
            uint m = m0 + wm0 + i * TM, n = n0 + wn0 + j * TN;
            if (m >= pc.M || n >= pc.N) continue; // uniform in the warp
            uint at = c_base() + m * pc.N + n;
            // the fused GELU writes per element, through the slice (store_c)
            if (aligned() && !gelu_epilogue() && m + TM <= pc.M && n + TN <= pc.N) {
                ACC r = acc[i * FN + j] * pc.alpha;
                if (pc.beta != 0.0) {
                    ACC old;
                    coopMatLoad(old, c, at, pc.N, gl_CooperativeMatrixLayoutRowMajor);
                    r = r + old * pc.beta;
                }
                if (has_bias) r = r + bias_tile(n, slice, lane);
                coopMatStore(r, c, at, pc.N, gl_CooperativeMatrixLayoutRowMajor);
            } else {
                coopMatStore(acc[i * FN + j], Cw, slice, TN, gl_CooperativeMatrixLayoutRowMajor);
                subgroupMemoryBarrierShared();
                subgroupBarrier();
                for (uint e = lane; e < TM * TN; e += SG)
                    store_c(m + e / TN, n + e % TN, Cw[slice + e]);
                subgroupBarrier();
            }
        }
    }
}
