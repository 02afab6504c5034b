#version 450
// The single GEMM of include/vktrain/backend.h (vkt_matmul), row-major and packed:
//   C(M,N) = alpha * op(A) * op(B) + beta * C + bias
// op(A) is (M,K): A stored (M,K), or (K,M) when trans_a. op(B) is (K,N): B stored (K,N), or
// (N,K) when trans_b. bias (N, broadcast over rows) when flags & VKT_FLAG_BIAS. beta == 0
// never reads C (it may hold NaNs). A, B, C and bias are fp32 buffers in every variant; the
// fp16 ones round A and B to fp16 (to_f16, common.glsl) as they stage them into shared memory,
// which is what precision = fp16 means, and accumulate in fp32. Variants (cmake/Shaders.cmake):
//   (none)        matmul_f32      shared-memory tiles, register blocking
//   USE_FP16      matmul_f16      the same with fp16 tiles (half the shared memory per tile)
//   USE_COOPMAT   matmul_coopmat  16x16x16 KHR cooperative matrices (tensor cores)
//   USE_DIRECT    matmul_f32_direct  subgroup kernel without shared memory (CPU drivers);
//                 with USE_FP16: matmul_f16_direct
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(set = 0, binding = 0) buffer BufC { float c[]; };
layout(set = 0, binding = 1) readonly buffer BufA { float a[]; };
layout(set = 0, binding = 2) readonly buffer BufB { float b[]; };
layout(set = 0, binding = 3) readonly buffer BufBias { float bias[]; };

// 40 bytes; offsets are in floats.
layout(push_constant) uniform PushConstants {
    uint M, N, K;
    uint off_c, off_a, off_b, off_bias;
    uint flags; // VKT_FLAG_TRANS_A | VKT_FLAG_TRANS_B | VKT_FLAG_BIAS
    float alpha, beta;
} pc;

// op(A)(m,k) and op(B)(k,n) as fp32, zero outside the matrix (partial edge tiles).
float load_a(uint m, uint k) {
    if (m >= pc.M || k >= pc.K) return 0.0;
    uint i = (pc.flags & VKT_FLAG_TRANS_A) != 0u ? k * pc.M + m : m * pc.K + k;
    return a[pc.off_a + i];
}
float load_b(uint k, uint n) {
    if (k >= pc.K || n >= pc.N) return 0.0;
    uint i = (pc.flags & VKT_FLAG_TRANS_B) != 0u ? n * pc.K + k : k * pc.N + n;
    return b[pc.off_b + i];
}

// The epilogue shared by all variants: one output element from its accumulated dot product.
void store_c(uint m, uint n, float acc) {
    if (m >= pc.M || n >= pc.N) return;
    uint i = pc.off_c + m * pc.N + n;
    float v = pc.alpha * acc;
    if (pc.beta != 0.0) v += pc.beta * c[i];
    if ((pc.flags & VKT_FLAG_BIAS) != 0u) v += bias[pc.off_bias + n];
    c[i] = v;
}

#ifdef USE_DIRECT
// ---- subgroup kernel without shared memory (CPU drivers) --------------------------------
// A CPU driver (lavapipe) runs a subgroup as one SIMD loop over its lanes, turns every barrier
// into a coroutine switch, and pays for each buffer load that differs per lane with a scalar
// loop over the lanes. So this variant has no shared memory and no barriers, and loads as
// little per lane as it can: subgroup s owns TM = 8 rows and SG*TN columns of the workgroup's
// 64x64 block, lane l the columns c0 + l + j*SG (j < TN). For each slice of SG values of k,
// lane l loads A(row, k0 + l) of its TM rows once and subgroupBroadcast hands every lane
// A(row, k0 + kk) in turn, so A costs one load per lane per SG*TN*TM multiply-adds; B(k, col)
// is loaded per lane and used TM times. Specialization: SG (id 1) MUST equal the device's
// subgroup size, TN (id 2) at most 64/SG, and the workgroup (id 0) = 8 * 64/TN invocations,
// i.e. (64/TM) * (64/(SG*TN)) full subgroups (vkt_vk_matmul_variant). The variant is timed
// against the tiled one by `auto` (vk_matmul.c); on GPUs the tiled one should win.
// USE_FP16 rounds A and B to fp16 as they are loaded (matmul_f16_direct).
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_ballot : require
layout(local_size_x = 256, local_size_y = 1, local_size_z = 1, local_size_x_id = 0) in;
layout(constant_id = 1) const uint SG = 8;
layout(constant_id = 2) const uint TN = 2;
const uint TM = 8, BLOCK = 64, COL_GROUPS = BLOCK / (SG * TN);
#ifdef USE_FP16
#define operand(x) float(to_f16(x))
#else
#define operand(x) (x)
#endif

// Branch-free bounds: an index outside op(A) or op(B) reads element 0 and yields 0.
float direct_a(uint m, uint k) {
    bool ok = m < pc.M && k < pc.K;
    uint i = (pc.flags & VKT_FLAG_TRANS_A) != 0u ? k * pc.M + m : m * pc.K + k;
    float v = a[pc.off_a + (ok ? i : 0u)];
    return ok ? operand(v) : 0.0;
}
float direct_b(uint k, uint n) {
    bool ok = k < pc.K && n < pc.N;
    uint i = (pc.flags & VKT_FLAG_TRANS_B) != 0u ? n * pc.K + k : k * pc.N + n;
    float v = b[pc.off_b + (ok ? i : 0u)];
    return ok ? operand(v) : 0.0;
}

void main() {
    const uint sg = gl_SubgroupID, lane = gl_SubgroupInvocationID;
    const uint r0 = gl_WorkGroupID.y * BLOCK + (sg / COL_GROUPS) * TM;
    const uint c0 = gl_WorkGroupID.x * BLOCK + (sg % COL_GROUPS) * (SG * TN) + lane;
    float acc[TM * TN];
    [[unroll]] for (uint i = 0; i < TM * TN; i++) acc[i] = 0.0;
    for (uint k0 = 0; k0 < pc.K; k0 += SG) {
        float a_lane[TM]; // A(r0 + i, k0 + lane)
        [[unroll]] for (uint i = 0; i < TM; i++) a_lane[i] = direct_a(r0 + i, k0 + lane);
        [[unroll]] for (uint kk = 0; kk < SG; kk++) {
            float bv[TN];
            [[unroll]] for (uint j = 0; j < TN; j++) bv[j] = direct_b(k0 + kk, c0 + j * SG);
            [[unroll]] for (uint i = 0; i < TM; i++) {
                float av = subgroupBroadcast(a_lane[i], kk);
                [[unroll]] for (uint j = 0; j < TN; j++)
                    acc[i * TN + j] = fma(av, bv[j], acc[i * TN + j]);
            }
        }
    }
    [[unroll]] for (uint i = 0; i < TM; i++)
        [[unroll]] for (uint j = 0; j < TN; j++) store_c(r0 + i, c0 + j * SG, acc[i * TN + j]);
}

#elif !defined(USE_COOPMAT)
// ---- tiled fp32 arithmetic ---------------------------------------------------------------
// Workgroup WG_X x WG_Y threads (spec ids 0, 1); each thread computes TM x TN outputs
// (spec ids 2, 3), so a workgroup covers a BM x BN block of C with BM = WG_Y*TM, BN = WG_X*TN,
// stepping through K in slices of BK (spec id 4). Thread (tx, ty) owns rows ty + i*WG_Y and
// columns tx + j*WG_X: neighbouring threads write neighbouring columns (coalesced) and read
// the same A value from shared memory (a broadcast). Dispatch: (ceil(N/BN), ceil(M/BM), 1).
// Defaults: 16x16 threads, 4x4 outputs each, 64x64 block, BK 16 (fp32) or 32 (fp16): 8 KiB of
// shared memory either way.
layout(local_size_x = 16, local_size_y = 16, local_size_z = 1, local_size_x_id = 0, local_size_y_id = 1) in;
layout(constant_id = 2) const uint TM = 4;
layout(constant_id = 3) const uint TN = 4;
#ifdef USE_FP16
layout(constant_id = 4) const uint BK = 32;
#define tile_t float16_t
#define to_tile(x) to_f16(x)
#else
layout(constant_id = 4) const uint BK = 16;
#define tile_t float
#define to_tile(x) (x)
#endif
const uint WG_X = gl_WorkGroupSize.x;
const uint WG_Y = gl_WorkGroupSize.y;
const uint BM = WG_Y * TM;
const uint BN = WG_X * TN;
const uint NT = WG_X * WG_Y;

shared tile_t As[BK * BM]; // As[k * BM + m]
shared tile_t Bs[BK * BN]; // Bs[k * BN + n]

void main() {
    const uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    const uint tid = ty * WG_X + tx;
    const uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
    const bool ta = (pc.flags & VKT_FLAG_TRANS_A) != 0u;
    const bool tb = (pc.flags & VKT_FLAG_TRANS_B) != 0u;

    float acc[TM * TN];
    for (uint i = 0; i < TM * TN; i++) acc[i] = 0.0;

    for (uint k0 = 0; k0 < pc.K; k0 += BK) {
        // Stage the slices; consecutive threads walk the stored matrix's contiguous dimension.
        for (uint e = tid; e < BM * BK; e += NT) {
            uint m = ta ? e % BM : e / BK;
            uint k = ta ? e / BM : e % BK;
            As[k * BM + m] = to_tile(load_a(m0 + m, k0 + k));
        }
        for (uint e = tid; e < BK * BN; e += NT) {
            uint k = tb ? e % BK : e / BN;
            uint n = tb ? e / BK : e % BN;
            Bs[k * BN + n] = to_tile(load_b(k0 + k, n0 + n));
        }
        barrier();
        for (uint k = 0; k < BK; k++) {
            float bv[TN];
            for (uint j = 0; j < TN; j++) bv[j] = float(Bs[k * BN + tx + j * WG_X]);
            for (uint i = 0; i < TM; i++) {
                float av = float(As[k * BM + ty + i * WG_Y]);
                for (uint j = 0; j < TN; j++) acc[i * TN + j] = fma(av, bv[j], acc[i * TN + j]);
            }
        }
        barrier();
    }
    for (uint i = 0; i < TM; i++)
        for (uint j = 0; j < TN; j++)
            store_c(m0 + ty + i * WG_Y, n0 + tx + j * WG_X, acc[i * TN + j]);
}

#else
// ---- cooperative matrices (GL_KHR_cooperative_matrix) --------------------------------------
// A workgroup computes a 64x64 block of C = 16 tiles of 16x16. Its WG threads (spec id 0,
// default 128) first stage 64xBK of op(A) and BKx64 of op(B) into shared memory as fp16,
// zero-padded at the matrix edges and with the transposes resolved, so any M, N, K, offset
// and transpose works. Subgroup s then multiplies tiles s, s + S, s + 2S, s + 3S (S = number
// of subgroups), so the host MUST choose WG >= 4 * maxSubgroupSize (e.g. 128 for subgroups of
// 32, 256 for 64): then every tile has an owner. The accumulators go through shared memory
// once at the end so the common epilogue applies alpha, beta, bias and the bounds.
// Dispatch: (ceil(N/64), ceil(M/64), 1). Shared memory: 4 + 4 + 16 = 24 KiB.
layout(local_size_x = 128, local_size_y = 1, local_size_z = 1, local_size_x_id = 0) in;
const uint WG = gl_WorkGroupSize.x;
const uint BM = 64, BN = 64, BK = 32, T = 16;
const uint TILES_N = BN / T, TILES = (BM / T) * (BN / T), TILES_PER_SG = 4;

shared float16_t As[BM * BK]; // row-major (BM, BK)
shared float16_t Bs[BK * BN]; // row-major (BK, BN)
shared float Cs[BM * BN];     // row-major (BM, BN)

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
    const bool ta = (pc.flags & VKT_FLAG_TRANS_A) != 0u;
    const bool tb = (pc.flags & VKT_FLAG_TRANS_B) != 0u;

    coopmat<float, gl_ScopeSubgroup, T, T, gl_MatrixUseAccumulator> acc[TILES_PER_SG];
    [[unroll]] for (uint t = 0; t < TILES_PER_SG; t++)
        acc[t] = coopmat<float, gl_ScopeSubgroup, T, T, gl_MatrixUseAccumulator>(0.0);

    for (uint k0 = 0; k0 < pc.K; k0 += BK) {
        for (uint e = tid; e < BM * BK; e += WG) {
            uint m = ta ? e % BM : e / BK;
            uint k = ta ? e / BM : e % BK;
            As[m * BK + k] = to_f16(load_a(m0 + m, k0 + k));
        }
        for (uint e = tid; e < BK * BN; e += WG) {
            uint k = tb ? e % BK : e / BN;
            uint n = tb ? e / BK : e % BN;
            Bs[k * BN + n] = to_f16(load_b(k0 + k, n0 + n));
        }
        barrier();
        // The tile index depends only on gl_SubgroupID: uniform within each subgroup, as
        // cooperative-matrix operations of subgroup scope require.
        [[unroll]] for (uint t = 0; t < TILES_PER_SG; t++) {
            uint tile = gl_SubgroupID + t * gl_NumSubgroups;
            if (tile < TILES) {
                uint tm = (tile / TILES_N) * T, tn = (tile % TILES_N) * T;
                [[unroll]] for (uint kk = 0; kk < BK; kk += T) {
                    coopmat<float16_t, gl_ScopeSubgroup, T, T, gl_MatrixUseA> ma;
                    coopmat<float16_t, gl_ScopeSubgroup, T, T, gl_MatrixUseB> mb;
                    coopMatLoad(ma, As, tm * BK + kk, BK, gl_CooperativeMatrixLayoutRowMajor);
                    coopMatLoad(mb, Bs, kk * BN + tn, BN, gl_CooperativeMatrixLayoutRowMajor);
                    acc[t] = coopMatMulAdd(ma, mb, acc[t]);
                }
            }
        }
        barrier();
    }
    [[unroll]] for (uint t = 0; t < TILES_PER_SG; t++) {
        uint tile = gl_SubgroupID + t * gl_NumSubgroups;
        if (tile < TILES) {
            uint tm = (tile / TILES_N) * T, tn = (tile % TILES_N) * T;
            coopMatStore(acc[t], Cs, tm * BN + tn, BN, gl_CooperativeMatrixLayoutRowMajor);
        }
    }
    barrier();
    for (uint e = tid; e < BM * BN; e += WG) store_c(m0 + e / BN, n0 + e % BN, Cs[e]);
}
#endif
