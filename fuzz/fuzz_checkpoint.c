/* libFuzzer target: a vktrain checkpoint (src/train/checkpoint.c, vkt_checkpoint_parse on the
 * bytes: the same code vkt_checkpoint_read runs on a file). Every section's CRC is first made
 * to match (fix_crcs), so the fuzzer reaches the field checks behind them; a checkpoint that
 * reads must hold as many floats as its shape. */
#include "fuzz_weights.h"
#include "util/crc32.h"

/* Walks "VKTCKPT\0" u32 version, u32 count, then (u32 tag, u32 crc, u64 bytes, payload)
 * sections as far as they fit, writing each payload's CRC into its crc field. */
static void fix_crcs(uint8_t *buf, size_t len) {
    if (len < 16) return;
    uint32_t nsec;
    memcpy(&nsec, buf + 12, 4);
    size_t pos = 16;
    for (uint32_t i = 0; i < nsec && len - pos >= 16; i++) {
        uint64_t bytes;
        memcpy(&bytes, buf + pos + 8, 8);
        if (bytes > len - pos - 16) return;
        uint32_t crc = vkt_crc32(buf + pos + 16, (size_t)bytes);
        memcpy(buf + pos + 4, &crc, 4);
        pos += 16 + (size_t)bytes;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[2048] = "";
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    fix_crcs(copy, size);
    vkt_checkpoint ck;
    int rc = vkt_checkpoint_parse(copy, size, "checkpoint.bin", &ck, err, sizeof err);
    free(copy); /* the parse copies out what it keeps */
    if (rc != 0) {
        vkt_fuzz_check_msg(err);
        return 0;
    }
    vkt_fuzz_use_weights(&ck);
    return 0;
}
