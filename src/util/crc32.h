/* CRC-32 (IEEE, as zlib's crc32). */
#ifndef VKTRAIN_CRC32_H
#define VKTRAIN_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continued over pieces: crc = vkt_crc32_update(crc, piece), starting from 0. */
uint32_t vkt_crc32_update(uint32_t crc, const void *data, size_t len);
uint32_t vkt_crc32(const void *data, size_t len);

#endif
