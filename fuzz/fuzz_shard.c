/* libFuzzer target: an llm.c token shard (src/data/shard.c, vkt_shard_open through a file, as
 * the data set opens it), then every token read and batches drawn from it as the loader does. */
#include "fuzz_util.h"
#include "vktrain/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[600], err[2048] = "";
    vkt_shard s;
    vkt_fuzz_write(path, sizeof path, "shard.bin", data, size);
    if (vkt_shard_open(path, &s, err, sizeof err) != 0) {
        vkt_fuzz_check_msg(err);
        return 0;
    }
    vkt_fuzz_check(s.n >= 1 && VKT_SHARD_HEADER_BYTES + 2 * s.n <= size,
                   "shard of %zu bytes opened with %zu tokens", size, s.n);
    uint64_t sum = 0;
    for (size_t i = 0; i < s.n; i++) sum += s.ids[i];
    vkt_fuzz_sink = sum;
    if (s.n >= 2) {
        vkt_span span = {s.ids, s.n};
        vkt_token_view v = {.spans = &span, .n_spans = 1, .n_tokens = s.n};
        enum { B = 2, MAX_T = 8 };
        int T = s.n > MAX_T ? MAX_T : (int)s.n - 1;
        int32_t in[B * MAX_T], tg[B * MAX_T];
        vkt_batch_at(&v, VKT_ORDER_RANDOM, sum, 3, B, T, in, tg);
        vkt_batch_at(&v, VKT_ORDER_SEQUENTIAL, sum, 3, B, T, in, tg);
        vkt_fuzz_sink += (uint64_t)in[0] + (uint64_t)tg[B * T - 1];
    }
    vkt_shard_close(&s);
    return 0;
}
