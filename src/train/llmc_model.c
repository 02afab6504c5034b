/* llm.c model files (gpt2_124M.bin and friends): import to fine-tune or evaluate, export to
 * hand a model back to llm.c; and vkt_weights_read, which takes whichever weights file the
 * user names. Format in checkpoint.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/fs.h"
#include "vktrain/checkpoint.h"
#include "vktrain/data.h"

#define HEADER_INTS 256

static int bad(const char *path, char *err, size_t errlen, const char *what) {
    snprintf(err, errlen, "%s: %s", path, what);
    return 2;
}

/* The shape from a header (our padding), or 2 with err naming what is wrong with it. The
 * file's own padded vocab h[7] only has to hold the vocab: llm.c pads to 128, we to 64. */
static int header_shape(const int32_t *h, const char *path, vkt_gpt2_shape *s, char *err,
                        size_t errlen) {
    *s = (vkt_gpt2_shape){.max_seq_len = h[2], .vocab_size = h[3], .num_layers = h[4],
                          .num_heads = h[5], .channels = h[6]};
    s->padded_vocab_size = h[3] >= 1 && h[3] <= 65536 ? vkt_padded_vocab(h[3]) : 0;
    char why[256];
    if (vkt_gpt2_shape_check(s, why, sizeof why)) {
        snprintf(err, errlen, "%s: llm.c model header: %s", path, why);
        return 2;
    }
    if (h[7] < h[3] || h[7] > 2 * 65536) { /* the bound keeps the size arithmetic exact */
        snprintf(err, errlen, "%s: llm.c model header: padded vocab %d is outside [vocab_size = "
                 "%d, 131072]", path, h[7], h[3]);
        return 2;
    }
    return 0;
}

static float bf16_to_f32(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

int vkt_llmc_model_parse(const unsigned char *buf, size_t len, const char *path,
                         vkt_checkpoint *ck, char *err, size_t errlen) {
    memset(ck, 0, sizeof *ck);
    int32_t h[HEADER_INTS];
    vkt_gpt2_shape s;
    if (len < sizeof h)
        return bad(path, err, errlen, "llm.c model file is truncated (shorter than its header)");
    memcpy(h, buf, sizeof h);
    if (h[0] != VKT_LLMC_MODEL_MAGIC) return bad(path, err, errlen, "not an llm.c model file "
                                                 "(bad magic)");
    if (h[1] != VKT_LLMC_VERSION_FP32 && h[1] != VKT_LLMC_VERSION_BF16)
        return bad(path, err, errlen, "llm.c model version is neither 3 (fp32) nor 5 (bf16)");
    if (header_shape(h, path, &s, err, errlen)) return 2;
    /* the file's tensors, with the file's padded vocab */
    vkt_gpt2_shape fs = s;
    fs.padded_vocab_size = h[7];
    vkt_param_tensor ft[VKT_NUM_PARAM_TENSORS], t[VKT_NUM_PARAM_TENSORS];
    size_t fn = vkt_gpt2_param_layout(&fs, ft), n = vkt_gpt2_param_layout(&s, t);
    size_t elem = h[1] == VKT_LLMC_VERSION_FP32 ? 4 : 2;
    if (len - sizeof h != fn * elem) { /* fn < 2^45 after the header checks: no wrap */
        snprintf(err, errlen, "%s: llm.c model file holds %zu parameter bytes, its header needs %zu",
                 path, len - sizeof h, fn * elem);
        return 2;
    }
    float *p = calloc(n, sizeof(float)); /* padded wte rows stay 0 */
    if (!p) {
        snprintf(err, errlen, "%s: out of host memory", path);
        return 1;
    }
    const unsigned char *body = buf + sizeof h;
    for (int i = 0; i < VKT_NUM_PARAM_TENSORS; i++) {
        /* wte: only the real vocab rows (the padding may differ between llm.c and us) */
        size_t count = i == 0 ? (size_t)s.vocab_size * s.channels : t[i].size;
        const unsigned char *src = body + ft[i].offset * elem;
        float *dst = p + t[i].offset;
        if (elem == 4) {
            memcpy(dst, src, count * 4);
        } else {
            for (size_t j = 0; j < count; j++) {
                uint16_t b;
                memcpy(&b, src + 2 * j, 2);
                dst[j] = bf16_to_f32(b);
            }
        }
    }
    int rc = vkt_weights_check_finite(path, "the parameters", &s, p, err, errlen);
    if (rc) {
        free(p);
        return rc;
    }
    ck->shape = s;
    ck->params = p;
    ck->num_params = n;
    return 0;
}

int vkt_llmc_model_read(const char *path, vkt_checkpoint *ck, char *err, size_t errlen) {
    memset(ck, 0, sizeof *ck);
    unsigned char *buf;
    size_t len;
    int rc = vkt_read_file(path, &buf, &len, err, errlen);
    if (rc) return rc;
    rc = vkt_llmc_model_parse(buf, len, path, ck, err, errlen);
    free(buf);
    return rc;
}

int vkt_llmc_model_write(const char *path, const vkt_gpt2_shape *s, const float *params,
                         char *err, size_t errlen) {
    vkt_param_tensor t[VKT_NUM_PARAM_TENSORS];
    size_t n = vkt_gpt2_param_layout(s, t);
    size_t bytes = HEADER_INTS * 4 + n * sizeof(float);
    unsigned char *buf = malloc(bytes);
    if (!buf) {
        snprintf(err, errlen, "%s: out of host memory", path);
        return 1;
    }
    int32_t h[HEADER_INTS] = {VKT_LLMC_MODEL_MAGIC, VKT_LLMC_VERSION_FP32, s->max_seq_len,
                              s->vocab_size, s->num_layers, s->num_heads, s->channels,
                              s->padded_vocab_size};
    memcpy(buf, h, sizeof h);
    memcpy(buf + sizeof h, params, n * sizeof(float));
    int rc = vkt_write_file_atomic(path, buf, bytes, err, errlen);
    free(buf);
    return rc;
}

int vkt_weights_read(const char *path, vkt_checkpoint *ck, char *err, size_t errlen) {
    char file[VKT_PATH_MAX + 32];
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(file, sizeof file, "%s/%s", path, VKT_CHECKPOINT_FILE);
        if (stat(file, &st) != 0) { /* present but not a regular file: vkt_read_file says so */
            memset(ck, 0, sizeof *ck);
            snprintf(err, errlen, "%s: directory holds no %s (is it a run's out_dir?)", path,
                     VKT_CHECKPOINT_FILE);
            return 2;
        }
        path = file;
    }
    /* one read, then told apart by the magic: a FIFO or device is refused before any open */
    unsigned char *buf;
    size_t len;
    int32_t magic = 0;
    memset(ck, 0, sizeof *ck);
    int rc = vkt_read_file(path, &buf, &len, err, errlen);
    if (rc) return rc;
    if (len >= 4) memcpy(&magic, buf, 4);
    if (magic == VKT_LLMC_MODEL_MAGIC) rc = vkt_llmc_model_parse(buf, len, path, ck, err, errlen);
    else rc = vkt_checkpoint_parse(buf, len, path, ck, err, errlen);
    free(buf);
    if (rc == 2 && strstr(err, "bad magic"))
        snprintf(err, errlen, "%s: neither a vktrain checkpoint nor an llm.c model file", path);
    return rc;
}
