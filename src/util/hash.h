/* A fast non-cryptographic 64-bit hash for cache keys and file fingerprints. */
#ifndef VKTRAIN_HASH_H
#define VKTRAIN_HASH_H

#include <stddef.h>
#include <stdint.h>

/* h = vkt_hash64_update(h, piece) over pieces, starting from VKT_HASH64_SEED. Each piece's
 * length is mixed in, so ("ab","c") and ("a","bc") differ: hash a file as one piece. */
#define VKT_HASH64_SEED 0x9E3779B97F4A7C15ull
uint64_t vkt_hash64_update(uint64_t h, const void *data, size_t len);
uint64_t vkt_hash64(const void *data, size_t len);

#endif
