/* vkt_round_f16 (src/util/half.h), the host reference of precision = fp16, against the
 * compiler's own float -> _Float16 conversion (IEEE round to nearest even) on every float of
 * a dense sweep: all exponents where fp16 is normal, subnormal, underflows or overflows, ties
 * included, both signs. Without _Float16 a table of hand-derived cases is checked instead. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/half.h"
#include "vkt_test.h"

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static int same_value(float a, float b) { return (isnan(a) && isnan(b)) || a == b; }

int main(void) {
    /* cases that hold whatever the compiler */
    const struct { float in, out; } table[] = {
        {1.0f, 1.0f},
        {1.0f + 1.0f / 4096.0f, 1.0f},                      /* half an fp16 ulp: tie, to even */
        {1.0f + 3.0f / 4096.0f, 1.0f + 1.0f / 1024.0f},     /* 1.5 ulp: tie, to even (up) */
        {65504.0f, 65504.0f},                               /* largest fp16 */
        {65519.0f, 65504.0f},
        {65520.0f, INFINITY},                               /* the tie above it: inf */
        {-1e9f, -INFINITY},
        {6.103515625e-05f, 6.103515625e-05f},               /* smallest normal */
        {1.0f / 16777216.0f, 1.0f / 16777216.0f},           /* smallest subnormal 2^-24 */
        {1.0f / 33554432.0f, 0.0f},                         /* 2^-25: tie, to even (0) */
        {3.0f / 67108864.0f, 1.0f / 16777216.0f},           /* 1.5 x 2^-25 */
        {1e-10f, 0.0f},
        {-0.0f, -0.0f},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        float got = vkt_round_f16(table[i].in);
        CHECK(same_value(got, table[i].out), "round_f16(%.9g) = %.9g, want %.9g", table[i].in,
              got, table[i].out);
    }
    CHECK(isnan(vkt_round_f16(NAN)), "NaN stays NaN");
    /* the binary16 encoding (vkt_to_half's output): every one of the 65536 patterns decodes to
     * a value that encodes back to itself (NaNs stay NaNs), and encoding rounds as
     * vkt_round_f16 does */
    for (uint32_t h = 0; h < 65536; h++) {
        float v = vkt_f16_value((uint16_t)h);
        uint16_t back = vkt_f16_bits(v);
        int nan = (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu);
        if (nan ? !(isnan(v) && (back & 0x7c00u) == 0x7c00u && (back & 0x3ffu))
                : back != h) {
            CHECK(0, "fp16 pattern 0x%04x decodes to %a, which encodes to 0x%04x", h, v, back);
            break;
        }
    }
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        CHECK(same_value(vkt_f16_value(vkt_f16_bits(table[i].in)), table[i].out),
              "f16_bits(%.9g) decodes to %.9g, want %.9g", table[i].in,
              vkt_f16_value(vkt_f16_bits(table[i].in)), table[i].out);
    CHECK(vkt_f16_bits(1.0f) == 0x3c00u && vkt_f16_bits(-2.0f) == 0xc000u &&
              vkt_f16_bits(65504.0f) == 0x7bffu && vkt_f16_bits(1e9f) == 0x7c00u &&
              vkt_f16_bits(1.0f / 16777216.0f) == 0x0001u,
          "known fp16 patterns (1, -2, 65504, inf, 2^-24)");
#if defined(__FLT16_MAX__)
    long checked = 0;
    /* every float whose exponent is within reach of fp16, every 61st mantissa: ~17 M values */
    for (uint32_t e = 90; e <= 150; e++)
        for (uint32_t m = 0; m < (1u << 23); m += 61)
            for (uint32_t s = 0; s < 2; s++) {
                float x = from_bits(s << 31 | e << 23 | m);
                _Float16 hx = (_Float16)x;
                float want = (float)hx, got = vkt_round_f16(x);
                uint16_t want_bits;
                memcpy(&want_bits, &hx, sizeof want_bits);
                checked++;
                if (!same_value(got, want) || vkt_f16_bits(x) != want_bits) {
                    CHECK(0, "round_f16(%a) = %a, _Float16 gives %a", x, got, want);
                    return vkt_test_finish("test_half");
                }
            }
    /* and the ties of every fp16 exponent exactly: mantissa bits 0x1000 set, 0xfff clear */
    for (uint32_t e = 90; e <= 150; e++)
        for (uint32_t m = 0x1000; m < (1u << 23); m += 0x2000) {
            float x = from_bits(e << 23 | m);
            CHECK(same_value(vkt_round_f16(x), (float)(_Float16)x), "tie %a", x);
            checked++;
        }
    printf("test_half: %ld floats agree with _Float16\n", checked);
#else
    printf("test_half: no _Float16 in this compiler; table only\n");
#endif
    return vkt_test_finish("test_half");
}
