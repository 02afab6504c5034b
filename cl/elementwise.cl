// Pointwise ops of include/vktrain/backend.h: one work-item per element.

__kernel void gelu_forward(__global float *out, uint o_out, __global const float *inp,
                           uint o_inp, uint n) {
    uint i = get_global_id(0);
    if (i >= n) return;
    float v = inp[o_inp + i];
    float u = GELU_SCALE * (v + 0.044715f * v * v * v);
    out[o_out + i] = 0.5f * v * (1.0f + tanh(u));
}

// dinp may alias dout (same buffer and offset): each element reads dout before writing dinp
__kernel void gelu_backward(__global float *dinp, uint o_dinp, __global const float *inp,
                            uint o_inp, __global const float *dout, uint o_dout, uint n) {
    uint i = get_global_id(0);
    if (i >= n) return;
    float v = inp[o_inp + i];
    float u = GELU_SCALE * (v + 0.044715f * v * v * v);
    float th = tanh(u);
    float sech2 = 1.0f - th * th;
    float g = 0.5f * (1.0f + th) + 0.5f * v * sech2 * GELU_SCALE * (1.0f + 3.0f * 0.044715f * v * v);
    dinp[o_dinp + i] = g * dout[o_dout + i];
}

__kernel void residual_forward(__global float *out, uint o_out, __global const float *a,
                               uint o_a, __global const float *b, uint o_b, uint n) {
    uint i = get_global_id(0);
    if (i < n) out[o_out + i] = a[o_a + i] + b[o_b + i];
}

__kernel void scale(__global float *x, uint o_x, float s, uint n) {
    uint i = get_global_id(0);
    if (i < n) x[o_x + i] *= s;
}

// C(M,N) += bias(N) broadcast over rows: the bias of vkt_matmul, after CLBlast's GEMM
__kernel void add_bias(__global float *c, uint o_c, __global const float *bias, uint o_bias,
                       uint M, uint N) {
    uint i = get_global_id(0);
    if (i < M * N) c[o_c + i] += bias[o_bias + i % N];
}

// dst = fp16(src) kept in fp32: round to nearest even, +-inf beyond fp16's range, subnormals
// kept (precision = fp16 on a device without a native fp16 GEMM path: see cl_gemm.c)
__kernel void round_f16(__global float *dst, uint o_dst, __global const float *src, uint o_src,
                        uint n) {
    uint i = get_global_id(0);
    if (i >= n) return;
    float x = src[o_src + i];
    uint u = as_uint(x), sign = u & 0x80000000u, a = u & 0x7fffffffu;
    float r;
    if (a >= 0x7f800000u) {
        r = x; // inf, NaN
    } else if (a >= 0x477ff000u) {
        r = as_float(sign | 0x7f800000u); // >= 65520: overflows to inf
    } else if (a < 0x38800000u) {
        // below fp16's smallest normal: a multiple of 2^-24, rounded to nearest even
        float m = fabs(x) * 16777216.0f; // exact (power of two)
        r = as_float(sign | as_uint(rint(m) * 5.9604644775390625e-8f));
    } else {
        // keep 10 mantissa bits: add half an ulp of fp16 (less one when the kept lsb is even)
        uint lsb = (a >> 13) & 1u;
        a = (a + 0x0fffu + lsb) & ~0x1fffu;
        r = as_float(sign | a);
    }
    dst[o_dst + i] = r;
}

// vkt_to_half: dst (fp16 bit patterns) = src rounded to fp16 exactly as round_f16 rounds, bit
// for bit the host's vkt_f16_bits (src/util/half.h); integer arithmetic, no cl_khr_fp16.
__kernel void to_half(__global ushort *dst, uint o_dst, __global const float *src, uint o_src,
                      uint n) {
    uint i = get_global_id(0);
    if (i >= n) return;
    uint u = as_uint(src[o_src + i]), sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu, h;
    if (a > 0x7f800000u) {
        h = sign | 0x7e00u | ((a >> 13) & 0x3ffu); // NaN
    } else if (a >= 0x477ff000u) {
        h = sign | 0x7c00u; // >= 65520: inf
    } else if (a < 0x38800000u) {
        h = sign | (uint)rint(as_float(a) * 16777216.0f); // subnormal: units of 2^-24
    } else {
        uint keep = a + 0x0fffu + ((a >> 13) & 1u);
        h = sign | ((((keep >> 23) & 0xffu) - 112u) << 10) | ((keep >> 13) & 0x3ffu);
    }
    dst[o_dst + i] = (ushort)h;
}

// dst = the values of fp16 tensor src (exact): a matmul operand copy for CLBlast's SGEMM.
__kernel void from_half(__global float *dst, uint o_dst, __global const ushort *src, uint o_src,
                        uint n) {
    uint i = get_global_id(0);
    if (i >= n) return;
    uint h = src[o_src + i], sign = (h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    float r;
    if (e == 0u) r = as_float(sign | as_uint((float)m * 5.9604644775390625e-8f)); // m * 2^-24
    else if (e == 31u) r = as_float(sign | 0x7f800000u | (m << 13));
    else r = as_float(sign | ((e + 112u) << 23) | (m << 13));
    dst[o_dst + i] = r;
}
