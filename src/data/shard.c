/* Token shards in llm.c's format: memory-mapped for reading (the loader copies windows out of
 * the page cache; nothing is read twice into our own memory), written atomically. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "util/fs.h"
#include "vktrain/data.h"

/* What a file that is not a shard probably is, for the message. */
static const char *guess_kind(int32_t magic) {
    if (magic == VKT_LLMC_MODEL_MAGIC) return " (it is an llm.c model file, not token data)";
    if (magic == VKT_LLMC_TOKENIZER_MAGIC) return " (it is an llm.c tokenizer file)";
    return "";
}

static int bad_shard(vkt_shard *s) {
    vkt_shard_close(s);
    return 2;
}

int vkt_shard_open(const char *path, vkt_shard *s, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    snprintf(s->path, sizeof s->path, "%s", path);
    const void *map;
    size_t len;
    int rc = vkt_map_file(path, POSIX_MADV_WILLNEED, &map, &len, err, errlen);
    if (rc) return rc;
    s->map = (void *)map;
    s->map_len = len;
    if (len < VKT_SHARD_HEADER_BYTES) {
        snprintf(err, errlen, "%s: token shard is truncated: %zu bytes, the header alone is %d",
                 path, len, VKT_SHARD_HEADER_BYTES);
        return bad_shard(s);
    }
    int32_t h[3];
    memcpy(h, map, sizeof h);
    if (h[0] != VKT_SHARD_MAGIC) {
        snprintf(err, errlen,
                 "%s: not a token shard: magic %d, expected %d%s. HINT: to train on a file's "
                 "bytes as text, give it a name that does not end in .bin, or vktrain prepare it",
                 path, h[0], VKT_SHARD_MAGIC, guess_kind(h[0]));
        return bad_shard(s);
    }
    if (h[1] != VKT_SHARD_VERSION) {
        snprintf(err, errlen, "%s: token shard version %d, this vktrain reads version %d", path,
                 h[1], VKT_SHARD_VERSION);
        return bad_shard(s);
    }
    size_t body = (len - VKT_SHARD_HEADER_BYTES) / sizeof(uint16_t);
    if (h[2] < 0 || (size_t)h[2] > body) {
        snprintf(err, errlen,
                 "%s: token shard is truncated: header says %d tokens, the body holds %zu", path,
                 h[2], body);
        return bad_shard(s);
    }
    if (h[2] == 0) {
        snprintf(err, errlen, "%s: token shard holds no tokens", path);
        return bad_shard(s);
    }
    s->ids = (const uint16_t *)((const char *)map + VKT_SHARD_HEADER_BYTES);
    s->n = (size_t)h[2];
    return 0;
}

void vkt_shard_close(vkt_shard *s) {
    vkt_unmap_file(s->map, s->map_len);
    s->map = NULL;
    s->ids = NULL;
    s->n = 0;
}

int vkt_shard_write(const char *path, const uint16_t *ids, size_t n, char *err, size_t errlen) {
    if (n > VKT_SHARD_MAX_TOKENS) {
        snprintf(err, errlen, "%s: %zu tokens do not fit one shard (at most %u)", path, n,
                 VKT_SHARD_MAX_TOKENS);
        return 1;
    }
    int32_t header[VKT_SHARD_HEADER_BYTES / 4] = {VKT_SHARD_MAGIC, VKT_SHARD_VERSION, (int32_t)n};
    const void *pieces[2] = {header, ids};
    size_t lens[2] = {sizeof header, n * sizeof(uint16_t)};
    return vkt_write_pieces_atomic(path, pieces, lens, 2, err, errlen);
}
