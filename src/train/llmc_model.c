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

/* The shape from a header, or a message on what is wrong with it. */
static const char *header_shape(const int32_t *h, vkt_gpt2_shape *s) {
    *s = (vkt_gpt2_shape){.max_seq_len = h[2], .vocab_size = h[3], .num_layers = h[4],
                          .num_heads = h[5], .channels = h[6]};
    if (h[2] <= 0 || h[3] <= 0 || h[4] <= 0 || h[5] <= 0 || h[6] <= 0 || h[7] < h[3])
        return "header has a non-positive size or a padded vocab below the vocab";
    if (h[6] % h[5]) return "header's channels are not divisible by its heads";
    if (h[3] > 65536) return "vocab above 65536 (vktrain stores tokens as uint16)";
    if ((int64_t)h[2] * h[6] > (1ll << 34) || (int64_t)h[4] * 12 * h[6] * h[6] > (1ll << 36))
        return "header sizes are implausibly large";
    s->padded_vocab_size = vkt_padded_vocab(h[3]);
    return NULL;
}

static float bf16_to_f32(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

int vkt_llmc_model_read(const char *path, vkt_checkpoint *ck, char *err, size_t errlen) {
    memset(ck, 0, sizeof *ck);
    unsigned char *buf;
    size_t len;
    int rc = vkt_read_file(path, &buf, &len, err, errlen);
    if (rc) return rc;
    int32_t h[HEADER_INTS];
    const char *why = NULL;
    vkt_gpt2_shape s;
    if (len < sizeof h) {
        free(buf);
        return bad(path, err, errlen, "llm.c model file is truncated (shorter than its header)");
    }
    memcpy(h, buf, sizeof h);
    if (h[0] != VKT_LLMC_MODEL_MAGIC) why = "not an llm.c model file (bad magic)";
    else if (h[1] != VKT_LLMC_VERSION_FP32 && h[1] != VKT_LLMC_VERSION_BF16)
        why = "llm.c model version is neither 3 (fp32) nor 5 (bf16)";
    else why = header_shape(h, &s);
    if (why) {
        free(buf);
        return bad(path, err, errlen, why);
    }
    /* the file's tensors, with the file's padded vocab */
    vkt_gpt2_shape fs = s;
    fs.padded_vocab_size = h[7];
    vkt_param_tensor ft[VKT_NUM_PARAM_TENSORS], t[VKT_NUM_PARAM_TENSORS];
    size_t fn = vkt_gpt2_param_layout(&fs, ft), n = vkt_gpt2_param_layout(&s, t);
    size_t elem = h[1] == VKT_LLMC_VERSION_FP32 ? 4 : 2;
    if (len - sizeof h != fn * elem) {
        snprintf(err, errlen, "%s: llm.c model file holds %zu parameter bytes, its header needs %zu",
                 path, len - sizeof h, fn * elem);
        free(buf);
        return 2;
    }
    float *p = calloc(n, sizeof(float)); /* padded wte rows stay 0 */
    if (!p) {
        free(buf);
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
    free(buf);
    ck->shape = s;
    ck->params = p;
    ck->num_params = n;
    return 0;
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
        if (!vkt_file_exists(file)) {
            memset(ck, 0, sizeof *ck);
            snprintf(err, errlen, "%s: directory holds no %s (is it a run's out_dir?)", path,
                     VKT_CHECKPOINT_FILE);
            return 2;
        }
        path = file;
    }
    FILE *f = fopen(path, "rb");
    int32_t magic = 0;
    if (f) {
        if (fread(&magic, 4, 1, f) != 1) magic = 0;
        fclose(f);
    }
    if (magic == VKT_LLMC_MODEL_MAGIC) return vkt_llmc_model_read(path, ck, err, errlen);
    int rc = vkt_checkpoint_read(path, ck, err, errlen);
    if (rc == 2 && strstr(err, "bad magic"))
        snprintf(err, errlen, "%s: neither a vktrain checkpoint nor an llm.c model file", path);
    return rc;
}
