/* libFuzzer target: a tokenizer file (src/data/tokenizer.c, vkt_tokenizer_parse: ours or
 * llm.c's). Parsed as given and, for our format, once more with its CRC made to match (so the
 * fuzzer gets past the CRC); a tokenizer that parses must decode every token, encode and
 * decode a text back to itself, and serialise to a file that parses to the same fingerprint. */
#include "fuzz_util.h"
#include "util/crc32.h"
#include "vktrain/tokenizer.h"

static void exercise(vkt_tokenizer *t, const uint8_t *data, size_t size) {
    int vocab = vkt_tokenizer_vocab_size(t);
    vkt_fuzz_check(vocab >= 1 && vocab <= 65536, "vocab size %d", vocab);
    uint64_t sum = 0;
    for (int id = 0; id < vocab && id < 4096; id++) {
        size_t len;
        const unsigned char *b = vkt_tokenizer_token_bytes(t, id, &len);
        if (len) sum += b[0] + b[len - 1];
    }
    size_t len = 1;
    vkt_fuzz_check(!vkt_tokenizer_token_bytes(t, vocab, &len) && len == 0,
                   "token %d of a vocab of %d has bytes", vocab, vocab);
    uint16_t ids[256];
    unsigned char out[64];
    for (int i = 0; i < 256; i++) ids[i] = (uint16_t)(i * 257u + data[i % size]);
    vkt_tokenizer_decode(t, ids, 256, out, sizeof out); /* ids beyond the vocab decode to nothing */
    if (vkt_tokenizer_can_encode(t)) {
        size_t n = size < 256 ? size : 256;
        size_t m = vkt_tokenizer_encode(t, data, n, ids);
        vkt_fuzz_check(m <= n, "%zu bytes encoded to %zu ids", n, m);
        unsigned char back[256];
        size_t need = vkt_tokenizer_decode(t, ids, m, back, sizeof back);
        vkt_fuzz_check(need == n && !memcmp(back, data, n), "decode(encode(x)) != x");
        size_t cut = vkt_tokenizer_safe_cut(t, data, n, n / 2);
        vkt_fuzz_check(cut >= n / 2 && cut <= n, "safe cut %zu outside [%zu, %zu]", cut, n / 2, n);
    }
    unsigned char *ser;
    size_t ser_len;
    if (vkt_tokenizer_serialize(t, &ser, &ser_len) == 0) {
        char err[2048] = "";
        vkt_tokenizer *u = vkt_tokenizer_parse(ser, ser_len, "serialised", err, sizeof err);
        vkt_fuzz_check(u != NULL, "a serialised tokenizer does not parse: %s", err);
        if (u)
            vkt_fuzz_check(vkt_tokenizer_fingerprint(u) == vkt_tokenizer_fingerprint(t),
                           "fingerprint changed through serialise + parse");
        vkt_tokenizer_free(u);
        free(ser);
    }
    vkt_fuzz_sink = sum;
}

static void parse(const uint8_t *data, size_t size) {
    char err[2048] = "";
    vkt_tokenizer *t = vkt_tokenizer_parse(data, size, "fuzz.tok", err, sizeof err);
    if (!t) {
        vkt_fuzz_check_msg(err);
        return;
    }
    exercise(t, data, size);
    vkt_tokenizer_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    parse(data, size);
    if (size >= 28 && !memcmp(data, "VKTTOKEN", 8)) {
        /* our format ends in a CRC32 of everything before it: fix it up (the project's CRC) */
        uint8_t *copy = malloc(size);
        if (!copy) return 0;
        memcpy(copy, data, size);
        uint32_t crc = vkt_crc32(copy, size - 4);
        for (int i = 0; i < 4; i++) copy[size - 4 + i] = (uint8_t)(crc >> 8 * i);
        parse(copy, size);
        free(copy);
    }
    return 0;
}
