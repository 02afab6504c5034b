#version 450
// The coopmat2 tier: GEMM on VK_NV_cooperative_matrix2 workgroup-scope matrices, fp16
// operands, fp32 accumulation; the interface and split-K are matmul_common.glsl's.
//
// The whole workgroup (the invocation count of the device's f16*f16+f32 workgroup-scope
// configuration, spec id 0) owns one BM x BN accumulator; the driver spreads it over its
// subgroups and tensor cores. A and B are read from global memory through tensor layouts
// that describe the stored matrices (dimensions bounded by this workgroup's K slice, row
// strides K, M or N): clamp mode "constant" returns zero outside them, so no edge needs code,
// and a tensor view transposes A stored (K,M) and B stored (N,K) on the load. The fp32 tiles
// are rounded to fp16 as precision = fp16 defines it (values beyond fp16's range become inf,
// by a per-element operation, then the conversion). The epilogue is a per-element operation
// (alpha, beta * C, bias) and one clamped tensor store straight to C.
// BM, BN, BK (spec ids 1-3) are multiples of the configuration's granularities.
// Dispatch: (ceil(N/BN), ceil(M/BM), splits).
#extension GL_GOOGLE_include_directive : require
#define USE_COOPMAT 1
#include "common.glsl"
#extension GL_NV_cooperative_matrix2 : require
#extension GL_EXT_shader_16bit_storage : require
#include "matmul_common.glsl"

// fp16 operands (VKT_FLAG_A_HALF, VKT_FLAG_B_HALF) are loaded by the tensor path as fp16
// matrices, without conversion: the tier needs storageBuffer16BitAccess (vk_matmul.c).
layout(set = 0, binding = 1) readonly buffer BufAf16 { float16_t ah16[]; };
layout(set = 0, binding = 2) readonly buffer BufBf16 { float16_t bh16[]; };

layout(local_size_x = 128, local_size_y = 1, local_size_z = 1, local_size_x_id = 0) in;
layout(constant_id = 1) const uint BM = 64;
layout(constant_id = 2) const uint BN = 64;
layout(constant_id = 3) const uint BK = 32;

// fp16's range as to_f16 (common.glsl) rounds: |x| >= 65520 becomes inf.
float f16_range(const in uint r, const in uint col, const in float x) {
    return abs(x) >= 65520.0 ? x * uintBitsToFloat(0x7f800000u) : x;
}

// alpha * acc + beta * C + bias, in the order store_c uses (results match the other tiers).
float epilogue(const in uint r, const in uint col, const in float x, const in uint m0,
               const in uint n0) {
    uint m = m0 + r, n = n0 + col;
    if (m >= pc.M || n >= pc.N) return x; // clamped away by the store
    float v = pc.alpha * x;
    if (pc.beta != 0.0) v += pc.beta * c[c_base() + m * pc.N + n];
    if ((pc.flags & VKT_FLAG_BIAS) != 0u) v += bias[pc.off_bias + n];
    return v;
}

void main() {
    const uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
    const uint kb = k_begin(), ke = k_end();

    tensorLayoutNV<2, gl_CooperativeMatrixClampModeConstantNV> la =
        createTensorLayoutNV(2, gl_CooperativeMatrixClampModeConstantNV);
    tensorLayoutNV<2, gl_CooperativeMatrixClampModeConstantNV> lb =
        createTensorLayoutNV(2, gl_CooperativeMatrixClampModeConstantNV);
    tensorLayoutNV<2, gl_CooperativeMatrixClampModeConstantNV> ld =
        createTensorLayoutNV(2, gl_CooperativeMatrixClampModeConstantNV);
    la = setTensorLayoutDimensionNV(la, a_rows(ke), a_cols(ke));
    la = setTensorLayoutStrideNV(la, a_ld(), 1);
    lb = setTensorLayoutDimensionNV(lb, b_rows(ke), b_cols(ke));
    lb = setTensorLayoutStrideNV(lb, b_ld(), 1);
    ld = setTensorLayoutDimensionNV(ld, pc.M, pc.N);
    ld = setTensorLayoutStrideNV(ld, pc.N, 1);
    tensorViewNV<2, false, 1, 0> transposed = createTensorViewNV(2, false, 1, 0);

    coopmat<float, gl_ScopeWorkgroup, BM, BN, gl_MatrixUseAccumulator> acc =
        coopmat<float, gl_ScopeWorkgroup, BM, BN, gl_MatrixUseAccumulator>(0.0);
    for (uint k0 = kb; k0 < ke; k0 += BK) {
        coopmat<float16_t, gl_ScopeWorkgroup, BM, BK, gl_MatrixUseA> fa;
        coopmat<float16_t, gl_ScopeWorkgroup, BK, BN, gl_MatrixUseB> fb;
        if (a_half()) {
            if (trans_a())
                coopMatLoadTensorNV(fa, ah16, pc.off_a, sliceTensorLayoutNV(la, k0, BK, m0, BM),
                                    transposed);
            else
                coopMatLoadTensorNV(fa, ah16, pc.off_a, sliceTensorLayoutNV(la, m0, BM, k0, BK));
        } else {
            coopmat<float, gl_ScopeWorkgroup, BM, BK, gl_MatrixUseA> a32;
            if (trans_a())
                coopMatLoadTensorNV(a32, a, pc.off_a, sliceTensorLayoutNV(la, k0, BK, m0, BM),
                                    transposed);
            else
                coopMatLoadTensorNV(a32, a, pc.off_a, sliceTensorLayoutNV(la, m0, BM, k0, BK));
            coopMatPerElementNV(a32, a32, f16_range);
            fa = coopmat<float16_t, gl_ScopeWorkgroup, BM, BK, gl_MatrixUseA>(a32);
        }
        if (b_half()) {
            if (trans_b())
                coopMatLoadTensorNV(fb, bh16, pc.off_b, sliceTensorLayoutNV(lb, n0, BN, k0, BK),
                                    transposed);
            else
                coopMatLoadTensorNV(fb, bh16, pc.off_b, sliceTensorLayoutNV(lb, k0, BK, n0, BN));
        } else {
            coopmat<float, gl_ScopeWorkgroup, BK, BN, gl_MatrixUseB> b32;
            if (trans_b())
                coopMatLoadTensorNV(b32, b, pc.off_b, sliceTensorLayoutNV(lb, n0, BN, k0, BK),
                                    transposed);
            else
                coopMatLoadTensorNV(b32, b, pc.off_b, sliceTensorLayoutNV(lb, k0, BK, n0, BN));
            coopMatPerElementNV(b32, b32, f16_range);
            fb = coopmat<float16_t, gl_ScopeWorkgroup, BK, BN, gl_MatrixUseB>(b32);
        }
        acc = coopMatMulAdd(fa, fb, acc);
    }
    coopMatPerElementNV(acc, acc, epilogue, m0, n0);
    coopMatStoreTensorNV(acc, c, c_base(), sliceTensorLayoutNV(ld, m0, BM, n0, BN));
}
