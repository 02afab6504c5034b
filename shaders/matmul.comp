#version 450
// The fp32 and fp16 GEMM tiers without cooperative matrices; the interface, split-K and the
// epilogue are matmul_common.glsl's. Variants (CMakeLists.txt):
//   (none)        matmul_f32         shared-memory tiles, register blocking, 128-bit loads
//   USE_FP16      matmul_f16         the same with fp16 tiles (operands rounded to fp16);
//                 with USE_STORAGE16: matmul_f16_s16 (fp16 tensors read as fp16: 16-bit
//                 storage, for devices with storageBuffer16BitAccess)
//   USE_DIRECT    matmul_f32_direct  subgroup kernel without shared memory (CPU drivers);
//                 with USE_FP16: matmul_f16_direct
// The cooperative-matrix tiers are matmul_coopmat.comp (KHR) and matmul_cm2.comp (NV
// coopmat2).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "matmul_common.glsl"

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
    float v = elem_a(pc.off_a + (ok ? i : 0u));
    return ok ? operand(v) : 0.0;
}
float direct_b(uint k, uint n) {
    bool ok = k < pc.K && n < pc.N;
    uint i = (pc.flags & VKT_FLAG_TRANS_B) != 0u ? n * pc.K + k : k * pc.N + n;
    float v = elem_b(pc.off_b + (ok ? i : 0u));
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

#else
// ---- tiled arithmetic ----------------------------------------------------------------------
// Workgroup WG_X x WG_Y threads (spec ids 0, 1); each thread computes TM x TN outputs (spec
// ids 2, 3), so a workgroup covers a BM x BN block of C with BM = WG_Y*TM, BN = WG_X*TN,
// stepping through its K slice in tiles of BK (spec id 4). Thread (tx, ty) owns rows
// ty + i*WG_Y and columns tx + j*WG_X: neighbouring threads write neighbouring columns
// (coalesced) and read the same A value from shared memory (a broadcast).
// Staging: threads read the stored matrices along their contiguous dimension, 4 elements at a
// time (one 128-bit load when VKT_FLAG_ALIGNED), into registers; the next tile's loads are
// issued before the current tile is multiplied, so their latency hides behind the arithmetic.
// Shared tiles are k-major (As[k][m], Bs[k][n]) with rows padded by one element, so the
// transposing stores of a stored-row-major A (or a transposed B) fall on different banks.
// Dispatch: (ceil(N/BN), ceil(M/BM), splits). Host configurations (vk_matmul.c): 16x16
// threads with 4x4 (64x64 blocks) or 8x8 (128x128) outputs each.
layout(local_size_x = 16, local_size_y = 16, local_size_z = 1, local_size_x_id = 0, local_size_y_id = 1) in;
layout(constant_id = 2) const uint TM = 4;
layout(constant_id = 3) const uint TN = 4;
#ifdef USE_FP16
// fp16 tiles, staged as fp16 (load4h_*: fp32 operands rounded as they arrive, fp16 tensors as
// they are)
layout(constant_id = 4) const uint BK = 32;
#define tile_t float16_t
#define stage_t f16vec4
#define LOAD4_A load4h_a
#define LOAD4_B load4h_b
#else
layout(constant_id = 4) const uint BK = 16;
#define tile_t float
#define stage_t vec4
#define LOAD4_A load4_a
#define LOAD4_B load4_b
#endif
const uint WG_X = gl_WorkGroupSize.x;
const uint WG_Y = gl_WorkGroupSize.y;
const uint BM = WG_Y * TM;
const uint BN = WG_X * TN;
const uint NT = WG_X * WG_Y;
const uint SM = BM + 1u, SN = BN + 1u; // padded row lengths of As and Bs
const uint CHUNKS_A = BM * BK / 4u, CHUNKS_B = BK * BN / 4u; // vec4s per tile
const uint RA = (CHUNKS_A + NT - 1u) / NT, RB = (CHUNKS_B + NT - 1u) / NT;

shared tile_t As[BK * SM]; // As[k * SM + m]
shared tile_t Bs[BK * SN]; // Bs[k * SN + n]

stage_t ra[RA], rb[RB]; // the next tile, in flight

// The 4-element chunk e of the A (or B) tile at k0 as stored: its row and first column.
uvec2 chunk_a(uint e) {
    uint w = trans_a() ? BM / 4u : BK / 4u; // chunks per stored row of the tile
    return uvec2(e / w, (e % w) * 4u);
}
uvec2 chunk_b(uint e) {
    uint w = trans_b() ? BK / 4u : BN / 4u;
    return uvec2(e / w, (e % w) * 4u);
}

void fetch(uint k0, uint m0, uint n0, uint ke, uint tid) {
    [[unroll]] for (uint i = 0u; i < RA; i++) {
        uint e = tid + i * NT;
        uvec2 rc = chunk_a(e);
        uvec2 at = trans_a() ? uvec2(k0, m0) : uvec2(m0, k0); // the tile's stored origin
        ra[i] = e < CHUNKS_A ? LOAD4_A(at.x + rc.x, at.y + rc.y, a_rows(ke), a_cols(ke), a_ld())
                             : stage_t(0.0);
    }
    [[unroll]] for (uint i = 0u; i < RB; i++) {
        uint e = tid + i * NT;
        uvec2 rc = chunk_b(e);
        uvec2 at = trans_b() ? uvec2(n0, k0) : uvec2(k0, n0);
        rb[i] = e < CHUNKS_B ? LOAD4_B(at.x + rc.x, at.y + rc.y, b_rows(ke), b_cols(ke), b_ld())
                             : stage_t(0.0);
    }
}

void stage(uint tid) {
    [[unroll]] for (uint i = 0u; i < RA; i++) {
        uint e = tid + i * NT;
        if (e >= CHUNKS_A) break;
        uvec2 rc = chunk_a(e);
        [[unroll]] for (uint j = 0u; j < 4u; j++) {
            // stored (m, k) -> As[k][m]; stored (k, m) when transposed
            uint idx = trans_a() ? rc.x * SM + rc.y + j : (rc.y + j) * SM + rc.x;
            As[idx] = ra[i][j];
        }
    }
    [[unroll]] for (uint i = 0u; i < RB; i++) {
        uint e = tid + i * NT;
        if (e >= CHUNKS_B) break;
        uvec2 rc = chunk_b(e);
        [[unroll]] for (uint j = 0u; j < 4u; j++) {
            uint idx = trans_b() ? (rc.y + j) * SN + rc.x : rc.x * SN + rc.y + j;
            Bs[idx] = rb[i][j];
        }
    }
}

void main() {
    const uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    const uint tid = ty * WG_X + tx;
    const uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
    const uint kb = k_begin(), ke = k_end();

    float acc[TM * TN];
    [[unroll]] for (uint i = 0u; i < TM * TN; i++) acc[i] = 0.0;

    fetch(kb, m0, n0, ke, tid);
    for (uint k0 = kb; k0 < ke; k0 += BK) {
        barrier(); // the previous tile has been read
        stage(tid);
        barrier();
        if (k0 + BK < ke) fetch(k0 + BK, m0, n0, ke, tid);
        for (uint k = 0u; k < BK; k++) {
            float bv[TN];
            [[unroll]] for (uint j = 0u; j < TN; j++) bv[j] = float(Bs[k * SN + tx + j * WG_X]);
            [[unroll]] for (uint i = 0u; i < TM; i++) {
                float av = float(As[k * SM + ty + i * WG_Y]);
                [[unroll]] for (uint j = 0u; j < TN; j++)
                    acc[i * TN + j] = fma(av, bv[j], acc[i * TN + j]);
            }
        }
    }
    [[unroll]] for (uint i = 0u; i < TM; i++)
        [[unroll]] for (uint j = 0u; j < TN; j++)
            store_c(m0 + ty + i * WG_Y, n0 + tx + j * WG_X, acc[i * TN + j]);
}
#endif
