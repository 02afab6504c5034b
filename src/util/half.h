/* fp16 rounding on the host: the reference of what precision = fp16 does to matmul operands
 * (backend.h). Round to nearest, ties to even, like a GPU's fp32 -> fp16 conversion; values
 * beyond the largest fp16 (65504, plus half an ulp) become +-inf, NaN stays NaN. The result is
 * returned as the float of the same value, so the arithmetic that follows stays fp32. */
#ifndef VKT_UTIL_HALF_H
#define VKT_UTIL_HALF_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#define VKT_F16_MAX 65504.0f
#define VKT_F16_MIN_NORMAL 6.103515625e-05f /* 2^-14 */

static inline float vkt_round_f16(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint32_t sign = u & 0x80000000u, mag = u & 0x7fffffffu;
    if (mag >= 0x7f800000u) return x; /* inf, NaN */
    float ax, r;
    memcpy(&ax, &mag, sizeof ax);
    if (ax >= 65520.0f) { /* halfway from 65504 to 65536 rounds to the even side: inf */
        r = INFINITY;
    } else if (ax < VKT_F16_MIN_NORMAL) {
        /* fp16 subnormals are the multiples of 2^-24; scaling by powers of two is exact, and
         * nearbyintf rounds ties to even in the default rounding mode */
        r = nearbyintf(ax * 16777216.0f) * (1.0f / 16777216.0f);
    } else {
        /* keep 10 of float's 23 mantissa bits, ties to even; a carry into the exponent is
         * the correctly rounded next power of two */
        uint32_t keep = mag + 0xfffu + ((mag >> 13) & 1u);
        keep &= ~0x1fffu;
        memcpy(&r, &keep, sizeof r);
    }
    memcpy(&u, &r, sizeof u);
    u |= sign;
    memcpy(&r, &u, sizeof r);
    return r;
}

/* The binary16 bit pattern of x rounded to fp16 (vkt_round_f16's value, exactly). */
static inline uint16_t vkt_f16_bits(float x) {
    float r = vkt_round_f16(x);
    uint32_t u;
    memcpy(&u, &r, sizeof u);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t mag = u & 0x7fffffffu;
    if (mag > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((mag >> 13) & 0x3ffu)); /* NaN */
    if (mag == 0x7f800000u) return (uint16_t)(sign | 0x7c00u);                          /* inf */
    float ar;
    memcpy(&ar, &mag, sizeof ar);
    if (ar < VKT_F16_MIN_NORMAL) return (uint16_t)(sign | (uint16_t)(ar * 16777216.0f)); /* 2^-24 units */
    return (uint16_t)(sign | (((mag >> 23) - 112u) << 10) | ((mag >> 13) & 0x3ffu));
}

/* The value of binary16 bit pattern h, as a float (exact). */
static inline float vkt_f16_value(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, u;
    if (e == 0) { /* zero, subnormal: m * 2^-24 */
        float r = (float)m * (1.0f / 16777216.0f);
        memcpy(&u, &r, sizeof u);
        u |= sign;
    } else if (e == 31) {
        u = sign | 0x7f800000u | (m << 13);
    } else {
        u = sign | ((e + 112u) << 23) | (m << 13);
    }
    float r;
    memcpy(&r, &u, sizeof r);
    return r;
}

#endif
