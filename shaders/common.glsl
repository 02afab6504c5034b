// Shared by every compute shader: extensions, the binding and push-constant conventions, and
// small helpers. Each .comp starts with `#version 450`, enables GL_GOOGLE_include_directive and
// includes this file; variants are chosen with -D defines (see cmake/Shaders.cmake), never by
// copying a shader.
//
// Conventions the host code (src/backend/vulkan/) relies on:
//  - descriptor set 0 only; storage buffers at bindings 0, 1, 2, ... in the order of the op's
//    arguments in include/vktrain/backend.h: outputs first, then inputs, then weights/bias.
//    An optional buffer that is absent (e.g. the bias) must still be bound (bind any buffer,
//    e.g. the output) and is then flagged off in the push constants.
//  - buffers are unsized arrays of their element type; tensors are addressed by ELEMENT
//    offsets passed in push constants (a vkt_ptr's byte offset / element size), so one
//    descriptor can cover a whole contiguous parameter buffer.
//  - push constants: one block per shader, named `pc`, scalars only (uint/int/float, 4 bytes
//    each, no vec3 padding surprises), at most 128 bytes (the Vulkan minimum limit).
//  - tile and workgroup sizes are specialization constants with working defaults, so the host
//    may tune them per device without recompiling; the workgroup size uses local_size_*_id
//    AND a literal local_size_* default (without one the default workgroup size is 1).

#extension GL_EXT_control_flow_attributes : enable

// HALF_OUT: a producer that also writes its output's fp16 copy (out_half, backend.h) through
// a uint16_t binding, which needs only 16-bit storage (the host picks these variants where
// the device has storageBuffer16BitAccess; elsewhere it runs vkt_to_half after the op).
#ifdef HALF_OUT
#extension GL_EXT_shader_16bit_storage : require
#endif

#if defined(USE_FP16) || defined(USE_COOPMAT)
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif

#ifdef USE_COOPMAT
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#endif

#if defined(USE_FP16) || defined(USE_COOPMAT)
// fp32 -> fp16 as precision = fp16 defines it (include/vktrain/backend.h): round to nearest
// even, and +-inf beyond fp16's range. The explicit overflow test matters: a driver may convert
// with saturation or round toward zero, and then a gradient overflow would go unseen instead of
// making the step's gradient norm non-finite (which skips the step and lowers the loss scale).
float16_t to_f16(float x) {
    if (abs(x) >= 65520.0) return float16_t(x > 0.0 ? uintBitsToFloat(0x7f800000u)
                                                    : uintBitsToFloat(0xff800000u));
    return float16_t(x);
}
#endif

uint ceil_div(uint a, uint b) { return (a + b - 1u) / b; }

// The fp16 bits of v as precision = fp16 rounds it (nearest even; |v| >= 65520 becomes inf;
// NaN stays NaN), bit for bit the host's vkt_f16_bits (src/util/half.h): integer arithmetic,
// the same on every driver (a float-to-half conversion may flush or round otherwise).
uint f16_bits(float v) {
    uint u = floatBitsToUint(v);
    uint sign = (u >> 16) & 0x8000u, mag = u & 0x7fffffffu;
    if (mag > 0x7f800000u) return sign | 0x7e00u | ((mag >> 13) & 0x3ffu); // NaN
    if (mag >= 0x477ff000u) return sign | 0x7c00u;                          // >= 65520: inf
    if (mag < 0x38800000u) // below 2^-14: a multiple of 2^-24, ties to even
        return sign | uint(roundEven(uintBitsToFloat(mag) * 16777216.0));
    uint keep = mag + 0xfffu + ((mag >> 13) & 1u); // 10 mantissa bits, ties to even
    return sign | ((((keep >> 23) & 0xffu) - 112u) << 10) | ((keep >> 13) & 0x3ffu);
}

// Flag bits shared by ops that take optional inputs or transposes (pc.flags).
#define VKT_FLAG_TRANS_A 1u
#define VKT_FLAG_TRANS_B 2u
#define VKT_FLAG_BIAS 4u

// Element index of a 1-D launch spread over a 2-D grid (x at most 65535 workgroups): the host
// dispatches (min(groups, 65535), ceil(groups / 65535)) workgroups (vk_ops.c, grid1d).
uint flat_group() { return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x; }
// A macro, not a function: gl_WorkGroupSize is only known after the shader's local_size
// layout, which comes after this include (a function here would see 1).
#define flat_index() (flat_group() * gl_WorkGroupSize.x + gl_LocalInvocationID.x)

// tanh that saturates instead of returning inf/inf = NaN for large arguments.
float safe_tanh(float x) { return 1.0 - 2.0 / (exp(2.0 * x) + 1.0); }

// True when x is inf or NaN, by its exponent bits (immune to fast-math folding).
bool not_finite(float x) { return ((floatBitsToUint(x) >> 23) & 0xffu) == 0xffu; }

// Accumulator type of the sums the cpu reference keeps in double (layernorm statistics, the
// softmax denominators of attention): double in the *_f64 variants, chosen by the host when
// the device has shaderFloat64, so results round like the reference; float otherwise.
#ifdef USE_FP64
#define acc_t double
#else
#define acc_t float
#endif

// exp rounded like the C library's expf (correctly rounded but for rare double-rounding
// ties): evaluated in double, where drivers' float exp may be off by an ulp or two, which
// cancellation in attention's weighted sums magnifies beyond the tests' tolerance.
#ifdef USE_FP64
double exp_d(double x) { // for |x| < 700
    double n = floor(x * 1.4426950408889634LF + 0.5LF);
    double r = x - n * 0.6931471805599453094LF; // |r| <= 0.347; ln2's error * n is negligible
    double p = 1.0LF / 479001600.0LF;            // 1/12!
    p = p * r + 1.0LF / 39916800.0LF;
    p = p * r + 1.0LF / 3628800.0LF;
    p = p * r + 1.0LF / 362880.0LF;
    p = p * r + 1.0LF / 40320.0LF;
    p = p * r + 1.0LF / 5040.0LF;
    p = p * r + 1.0LF / 720.0LF;
    p = p * r + 1.0LF / 120.0LF;
    p = p * r + 1.0LF / 24.0LF;
    p = p * r + 1.0LF / 6.0LF;
    p = p * r + 0.5LF;
    p = p * r + 1.0LF;
    p = p * r + 1.0LF;
    return ldexp(p, int(n));
}
float exp_ref(float x) { return x < -104.0 ? 0.0 : float(exp_d(double(x))); }
// tanh rounded like tanhf: gelu's backward cancels to a few digits where tanh is near -1.
float tanh_ref(float x) {
    if (abs(x) > 20.0) return sign(x);
    double e = exp_d(2.0LF * double(x));
    return float(1.0LF - 2.0LF / (e + 1.0LF));
}
#else
float exp_ref(float x) { return exp(x); }
float tanh_ref(float x) { return safe_tanh(x); }
#endif

// GELU, tanh approximation, as the cpu reference evaluates it (vkt_cpu_gelu_forward): used by
// gelu_forward (elementwise.comp) and by the matmul epilogue that fuses it (matmul_common.glsl).
// precise: no fused multiply-adds, so it rounds the same wherever it is inlined.
#define GELU_SCALE 0.7978845608028654
float gelu_value(float v) {
    precise float u = GELU_SCALE * (v + 0.044715 * v * v * v);
    precise float o = 0.5 * v * (1.0 + tanh_ref(u));
    return o;
}
