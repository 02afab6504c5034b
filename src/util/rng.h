/* The one random number generator of vktrain: small, seedable, state is a single uint64 so it
 * can be saved in checkpoints. SplitMix64 output, Box-Muller normals. */
#ifndef VKTRAIN_RNG_H
#define VKTRAIN_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct vkt_rng {
    uint64_t state;
} vkt_rng;

static inline void vkt_rng_seed(vkt_rng *r, uint64_t seed) { r->state = seed; }

static inline uint64_t vkt_rng_u64(vkt_rng *r) {
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* uniform in [0, 1) with 53 random bits */
static inline double vkt_rng_uniform(vkt_rng *r) { return (vkt_rng_u64(r) >> 11) * 0x1.0p-53; }

/* uniform integer in [0, n), n > 0 (modulo bias is below 2^-40 for n < 2^24) */
static inline uint64_t vkt_rng_below(vkt_rng *r, uint64_t n) { return vkt_rng_u64(r) % n; }

static inline double vkt_rng_normal(vkt_rng *r) {
    double u1 = vkt_rng_uniform(r), u2 = vkt_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

#endif
