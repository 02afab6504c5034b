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

#endif
