/* 64-bit hashing: four independent multiply-rotate lanes over 32-byte blocks (so the CPU
 * overlaps them; several GB/s), folded with a strong finalizer. Not for security. */
#include <string.h>

#include "util/hash.h"

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t lane(uint64_t acc, uint64_t w) { return rotl(acc + w * P2, 31) * P1; }
static inline uint64_t load64(const unsigned char *p) {
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}
/* murmur3's fmix64: every input bit affects every output bit */
static inline uint64_t fmix(uint64_t h) {
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 33);
}

uint64_t vkt_hash64_update(uint64_t h, const void *data, size_t len) {
    const unsigned char *p = data;
    uint64_t a = h + P1, b = h ^ P2, c = h, d = h - P1;
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        a = lane(a, load64(p + i));
        b = lane(b, load64(p + i + 8));
        c = lane(c, load64(p + i + 16));
        d = lane(d, load64(p + i + 24));
    }
    uint64_t acc = rotl(a, 1) + rotl(b, 7) + rotl(c, 12) + rotl(d, 18);
    for (; i + 8 <= len; i += 8) acc = lane(acc, load64(p + i));
    uint64_t tail = 0;
    memcpy(&tail, p + i, len - i);
    acc = lane(acc, tail ^ ((uint64_t)(len - i) << 56));
    return fmix(acc ^ fmix(h) ^ (uint64_t)len);
}

uint64_t vkt_hash64(const void *data, size_t len) {
    return vkt_hash64_update(VKT_HASH64_SEED, data, len);
}
