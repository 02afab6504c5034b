/* Tokenizer throughput on a corpus: byte encoding, BPE training (vocab 4096), BPE encoding and
 * decoding on one thread. Medians of several runs, side by side in one process.
 * Usage: bench_tokenizer [corpus (data/tinyshakespeare.txt)] [repeat for byte encoding (64)] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/fs.h"
#include "vktrain/tokenizer.h"

enum { REPS = 5, BPE_VOCAB = 4096 };

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, by_value);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void row(const char *what, double bytes, double *secs) {
    double s = median(secs, REPS);
    printf("%-28s %10.1f MB/s   (median of %d, %.4f s per run)\n", what, bytes / s / 1e6, REPS, s);
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "data/tinyshakespeare.txt";
    int repeat = argc > 2 ? atoi(argv[2]) : 64;
    if (repeat < 1) repeat = 1;
    char err[512];
    unsigned char *text;
    size_t len;
    if (vkt_read_file(path, &text, &len, err, sizeof err) != 0) {
        fprintf(stderr, "bench_tokenizer: %s\nHINT: pass the corpus path as the first argument\n",
                err);
        return 2;
    }
    size_t big_len = len * (size_t)repeat;
    unsigned char *big = malloc(big_len + 1);
    uint16_t *ids = malloc((big_len + 1) * sizeof *ids);
    unsigned char *back = malloc(len + 1);
    if (!big || !ids || !back) {
        fprintf(stderr, "bench_tokenizer: out of memory for %d x %zu bytes\n", repeat, len);
        return 1;
    }
    for (int r = 0; r < repeat; r++) memcpy(big + (size_t)r * len, text, len);
    printf("corpus %s: %zu bytes; byte encoding on %d x that (%.1f MB)\n", path, len, repeat,
           big_len / 1e6);

    double secs[REPS];
    vkt_tokenizer *byte = vkt_tokenizer_byte();
    for (int i = 0; i < REPS; i++) {
        double t0 = now_s();
        size_t n = vkt_tokenizer_encode(byte, big, big_len, ids);
        secs[i] = now_s() - t0;
        if (n != big_len) return 1;
    }
    row("byte encode", (double)big_len, secs);

    vkt_tokenizer *bpe = NULL;
    for (int i = 0; i < REPS; i++) {
        const unsigned char *texts[1] = {text};
        vkt_tokenizer_free(bpe);
        double t0 = now_s();
        bpe = vkt_tokenizer_train_bpe(texts, &len, 1, BPE_VOCAB, err, sizeof err);
        secs[i] = now_s() - t0;
        if (!bpe) {
            fprintf(stderr, "bench_tokenizer: %s\n", err);
            return 1;
        }
    }
    double train_s = median(secs, REPS);
    printf("%-28s %10.3f s      (median of %d; vocab %d reached)\n", "bpe train (vocab 4096)",
           train_s, REPS, vkt_tokenizer_vocab_size(bpe));

    size_t ntok = 0;
    for (int i = 0; i < REPS; i++) {
        double t0 = now_s();
        ntok = vkt_tokenizer_encode(bpe, text, len, ids);
        secs[i] = now_s() - t0;
    }
    row("bpe encode (1 thread)", (double)len, secs);
    printf("%-28s %10.3f tokens/byte (%zu tokens)\n", "bpe compression", (double)ntok / len, ntok);

    for (int i = 0; i < REPS; i++) {
        double t0 = now_s();
        size_t n = vkt_tokenizer_decode(bpe, ids, ntok, back, len);
        secs[i] = now_s() - t0;
        if (n != len || memcmp(back, text, len) != 0) {
            fprintf(stderr, "bench_tokenizer: BPE decode does not give the corpus back\n");
            return 1;
        }
    }
    row("bpe decode (output bytes)", (double)len, secs);

    vkt_tokenizer_free(byte);
    vkt_tokenizer_free(bpe);
    free(text);
    free(big);
    free(ids);
    free(back);
    return 0;
}
