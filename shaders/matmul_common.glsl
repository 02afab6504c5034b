// The interface every matmul variant shares (include/vktrain/backend.h, vkt_matmul), row-major
// and packed:   C(M,N) = alpha * op(A) * op(B) + beta * C + bias
// op(A) is (M,K): A stored (M,K), or (K,M) when trans_a. op(B) is (K,N): B stored (K,N), or
// (N,K) when trans_b. bias (N, broadcast over rows) when flags & VKT_FLAG_BIAS. beta == 0
// never reads C (it may hold NaNs). A, B, C and bias are fp32 buffers; the fp16 variants round
// A and B to fp16 (to_f16, common.glsl) on their way to the multiply and accumulate in fp32.
//
// Split-K: workgroup z of the grid multiplies the K slice [z * k_split, (z+1) * k_split) and
// writes its partial product to C + z * M * N; the host then binds C to a scratch buffer, sets
// alpha 1, beta 0, no bias, and sums the slices with matmul_splitk_reduce (matmul_reduce.comp),
// in a fixed order, so the result does not depend on scheduling. Without a split, k_split = K
// and the grid has one z.
//
// The fused GELU epilogue (vkt_matmul_gelu, flags & VKT_FLAG_GELU): C holds the
// pre-activation alpha * op(A) op(B) + bias as always and G = gelu(C) is written beside it;
// with VKT_FLAG_GELU_HALF (only the variants with 16-bit storage, USE_STORAGE16) also G's fp16
// copy GH. The host sets them for an unsplit matmul of any tier but coopmat2; a split one
// leaves them to matmul_splitk_reduce (vk_matmul.c).
//
// Shared by matmul.comp (fp32/fp16 tiles, direct), matmul_coopmat.comp and matmul_cm2.comp.

layout(set = 0, binding = 0) buffer BufC { float c[]; };
layout(set = 0, binding = 1) readonly buffer BufA { float a[]; };
layout(set = 0, binding = 2) readonly buffer BufB { float b[]; };
layout(set = 0, binding = 3) readonly buffer BufBias { float bias[]; };
layout(set = 0, binding = 4) writeonly buffer BufG { float g[]; }; // VKT_FLAG_GELU
// The same bindings seen as vec4: 128-bit loads where VKT_FLAG_ALIGNED says they are aligned.
layout(set = 0, binding = 1) readonly buffer BufA4 { vec4 a4[]; };
layout(set = 0, binding = 2) readonly buffer BufB4 { vec4 b4[]; };
// fp16 operands (VKT_FLAG_A_HALF, VKT_FLAG_B_HALF: the model's fp16 copies, vkt_to_half):
// the bindings seen as 32-bit words of two halves (unpackHalf2x16: no 16-bit storage
// feature needed), or as 64-bit pairs of words, four halves, where aligned.
layout(set = 0, binding = 1) readonly buffer BufAh { uint ah[]; };
layout(set = 0, binding = 2) readonly buffer BufBh { uint bh[]; };
layout(set = 0, binding = 1) readonly buffer BufAh4 { uvec2 ah4[]; };
layout(set = 0, binding = 2) readonly buffer BufBh4 { uvec2 bh4[]; };

// 52 bytes; offsets are in elements: floats, halves for an fp16 tensor (vkt_matmul_push,
// src/backend/vkt_spirv.h).
layout(push_constant) uniform PushConstants {
    uint M, N, K;
    uint off_c, off_a, off_b, off_bias;
    uint flags; // VKT_FLAG_TRANS_A | _TRANS_B | _BIAS | _ALIGNED | _A_HALF | _B_HALF | _GELU..
    float alpha, beta;
    uint k_split; // K per workgroup z (split-K); K when not split
    uint off_g, off_gh; // the fused GELU's outputs
} pc;

// off_a, off_b, off_c and the row lengths of A, B and C are multiples of 4 elements: rows of
// the stored matrices start 16-byte aligned (8-byte for fp16 operands), so vec4 (uvec2)
// loads and cooperative-matrix stores may address them directly.
#define VKT_FLAG_ALIGNED 8u
#define VKT_FLAG_A_HALF 16u
#define VKT_FLAG_B_HALF 32u
#define VKT_FLAG_GELU 64u
#define VKT_FLAG_GELU_HALF 128u
bool gelu_epilogue() { return (pc.flags & VKT_FLAG_GELU) != 0u; }

bool trans_a() { return (pc.flags & VKT_FLAG_TRANS_A) != 0u; }
bool trans_b() { return (pc.flags & VKT_FLAG_TRANS_B) != 0u; }
bool aligned() { return (pc.flags & VKT_FLAG_ALIGNED) != 0u; }
bool a_half() { return (pc.flags & VKT_FLAG_A_HALF) != 0u; }
bool b_half() { return (pc.flags & VKT_FLAG_B_HALF) != 0u; }

// Element i (offset included) of A or B, whatever its type.
float elem_a(uint i) { return a_half() ? unpackHalf2x16(ah[i >> 1])[i & 1u] : a[i]; }
float elem_b(uint i) { return b_half() ? unpackHalf2x16(bh[i >> 1])[i & 1u] : b[i]; }
vec4 unpack4(uvec2 w) { return vec4(unpackHalf2x16(w.x), unpackHalf2x16(w.y)); }
uint k_begin() { return gl_WorkGroupID.z * pc.k_split; }
uint k_end() { return min(pc.K, k_begin() + pc.k_split); }
uint c_base() { return pc.off_c + gl_WorkGroupID.z * pc.M * pc.N; }

// op(A)(m,k) and op(B)(k,n) as fp32, zero outside the matrix and outside this workgroup's K
// slice (ke = k_end()).
float load_a(uint m, uint k, uint ke) {
    if (m >= pc.M || k >= ke) return 0.0;
    uint i = trans_a() ? k * pc.M + m : m * pc.K + k;
    return elem_a(pc.off_a + i);
}
float load_b(uint k, uint n, uint ke) {
    if (k >= ke || n >= pc.N) return 0.0;
    uint i = trans_b() ? n * pc.K + k : k * pc.N + n;
    return elem_b(pc.off_b + i);
}

// Four consecutive elements (r, col..col+3) of A or B as stored (row-major, row length ld),
// zero outside rows < rlim, columns < clim. One 128-bit load (64-bit for fp16 operands) when
// aligned and inside.
vec4 load4_a(uint r, uint col, uint rlim, uint clim, uint ld) {
    uint i = pc.off_a + r * ld + col;
    if (aligned() && r < rlim && col + 3u < clim) return a_half() ? unpack4(ah4[i >> 2]) : a4[i >> 2];
    vec4 v = vec4(0.0);
    [[unroll]] for (uint j = 0u; j < 4u; j++)
        if (r < rlim && col + j < clim) v[j] = elem_a(i + j);
    return v;
}
vec4 load4_b(uint r, uint col, uint rlim, uint clim, uint ld) {
    uint i = pc.off_b + r * ld + col;
    if (aligned() && r < rlim && col + 3u < clim) return b_half() ? unpack4(bh4[i >> 2]) : b4[i >> 2];
    vec4 v = vec4(0.0);
    [[unroll]] for (uint j = 0u; j < 4u; j++)
        if (r < rlim && col + j < clim) v[j] = elem_b(i + j);
    return v;
}

#if defined(USE_FP16) || defined(USE_COOPMAT)
// The fp16 kernels stage fp16: four elements of A or B as load4_* reads them, as fp16. An fp32
// operand is rounded here (to_f16: precision = fp16's rounding); an fp16 tensor already is
// fp16: with USE_STORAGE16 (the *_s16 variants, for devices with storageBuffer16BitAccess) it
// is read as fp16 and nothing is converted at all, one 64-bit load where aligned; without,
// its 32-bit words are unpacked (exactly).
#ifdef USE_STORAGE16
#extension GL_EXT_shader_16bit_storage : require
layout(set = 0, binding = 1) readonly buffer BufAs16 { float16_t as16[]; };
layout(set = 0, binding = 2) readonly buffer BufBs16 { float16_t bs16[]; };
layout(set = 0, binding = 1) readonly buffer BufAv16 { f16vec4 av16[]; };
layout(set = 0, binding = 2) readonly buffer BufBv16 { f16vec4 bv16[]; };
#endif
f16vec4 round4(vec4 x) { return f16vec4(to_f16(x.x), to_f16(x.y), to_f16(x.z), to_f16(x.w)); }
f16vec4 load4h_a(uint r, uint col, uint rlim, uint clim, uint ld) {
#ifdef USE_STORAGE16
    if (a_half()) {
        uint i = pc.off_a + r * ld + col;
        if (aligned() && r < rlim && col + 3u < clim) return av16[i >> 2];
        f16vec4 v = f16vec4(0.0);
        [[unroll]] for (uint j = 0u; j < 4u; j++)
            if (r < rlim && col + j < clim) v[j] = as16[i + j];
        return v;
    }
#endif
    vec4 x = load4_a(r, col, rlim, clim, ld);
    return a_half() ? f16vec4(x) : round4(x);
}
f16vec4 load4h_b(uint r, uint col, uint rlim, uint clim, uint ld) {
#ifdef USE_STORAGE16
    if (b_half()) {
        uint i = pc.off_b + r * ld + col;
        if (aligned() && r < rlim && col + 3u < clim) return bv16[i >> 2];
        f16vec4 v = f16vec4(0.0);
        [[unroll]] for (uint j = 0u; j < 4u; j++)
            if (r < rlim && col + j < clim) v[j] = bs16[i + j];
        return v;
    }
#endif
    vec4 x = load4_b(r, col, rlim, clim, ld);
    return b_half() ? f16vec4(x) : round4(x);
}
#endif
#ifdef USE_STORAGE16
layout(set = 0, binding = 5) writeonly buffer BufGh { uint16_t gh[]; }; // VKT_FLAG_GELU_HALF
#endif

// The stored shapes, bounded by this workgroup's K slice: A is (M, ke) or (ke, M), B is
// (ke, N) or (N, ke); the row lengths stay K, M or N.
uint a_rows(uint ke) { return trans_a() ? ke : pc.M; }
uint a_cols(uint ke) { return trans_a() ? pc.M : ke; }
uint a_ld() { return trans_a() ? pc.M : pc.K; }
uint b_rows(uint ke) { return trans_b() ? pc.N : ke; }
uint b_cols(uint ke) { return trans_b() ? ke : pc.N; }
uint b_ld() { return trans_b() ? pc.K : pc.N; }

// One output element from its accumulated dot product: alpha, beta, bias, the bounds and
// the fused GELU (never set on a split: c_base() is then off_c).
void store_c(uint m, uint n, float acc) {
    if (m >= pc.M || n >= pc.N) return;
    uint i = c_base() + m * pc.N + n;
    float v = pc.alpha * acc;
    if (pc.beta != 0.0) v += pc.beta * c[i];
    if ((pc.flags & VKT_FLAG_BIAS) != 0u) v += bias[pc.off_bias + n];
    c[i] = v;
    if (gelu_epilogue()) {
        float o = gelu_value(v);
        g[pc.off_g + m * pc.N + n] = o;
#ifdef USE_STORAGE16
        if ((pc.flags & VKT_FLAG_GELU_HALF) != 0u)
            gh[pc.off_gh + m * pc.N + n] = uint16_t(f16_bits(o));
#endif
    }
}
