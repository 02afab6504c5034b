/* Checkpoint file I/O (format in include/vktrain/checkpoint.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/crc32.h"
#include "util/fs.h"
#include "vktrain/checkpoint.h"

static const char MAGIC[8] = "VKTCKPT";


typedef struct section {
    char tag[4];
    const void *parts[2]; /* a payload may come in two pieces (ADAM: m then v) */
    size_t sizes[2];
} section;

static int write_section(FILE *f, const section *s) {
    uint32_t crc = vkt_crc32_update(0, s->parts[0], s->sizes[0]);
    if (s->sizes[1]) crc = vkt_crc32_update(crc, s->parts[1], s->sizes[1]);
    uint64_t bytes = s->sizes[0] + s->sizes[1];
    int ok = fwrite(s->tag, 4, 1, f) == 1 && fwrite(&crc, 4, 1, f) == 1 &&
             fwrite(&bytes, 8, 1, f) == 1;
    for (int i = 0; ok && i < 2; i++)
        if (s->sizes[i]) ok = fwrite(s->parts[i], s->sizes[i], 1, f) == 1;
    return ok ? 0 : -1;
}

int vkt_checkpoint_save(const char *path, vkt_model *m, const vkt_config *cfg, int step,
                        const vkt_loader_state *loader, const vkt_loss_scale *ls,
                        const vkt_tokenizer *tok, char *err, size_t errlen) {
    const vkt_gpt2_shape *s = vkt_model_shape(m);
    size_t np = vkt_model_num_params(m), pbytes = np * sizeof(float);
    vkt_backend *be = vkt_model_backend(m);
    float *params = malloc(pbytes), *adam_m = malloc(pbytes), *adam_v = malloc(pbytes);
    char *conf = NULL;
    size_t conf_len = 0, tok_len = 0;
    unsigned char *tok_data = NULL;
    FILE *mem = open_memstream(&conf, &conf_len);
    char tmp[VKT_PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int rc = 1;
    FILE *f = NULL;
    if (!params || !adam_m || !adam_v || !mem ||
        (tok && vkt_tokenizer_serialize(tok, &tok_data, &tok_len) != 0)) {
        snprintf(err, errlen, "%s: out of host memory writing the checkpoint", path);
        goto done;
    }
    vkt_config_print(cfg, mem);
    fclose(mem);
    mem = NULL;
    /* a device that has failed (before or during these) gives no state worth saving: the
     * previous checkpoint stays as it is, and no temp file is made */
    if (vkt_download(be, params, vkt_at(vkt_model_params(m), 0), pbytes) ||
        vkt_download(be, adam_m, vkt_at(vkt_model_adam_m(m), 0), pbytes) ||
        vkt_download(be, adam_v, vkt_at(vkt_model_adam_v(m), 0), pbytes)) {
        char dev[768];
        vkt_backend_error(be, dev, sizeof dev);
        snprintf(err, errlen, "%s: not written: reading the model from the device failed: %s",
                 path, dev);
        goto done;
    }
    int32_t shape[6] = {s->max_seq_len, s->vocab_size, s->padded_vocab_size, s->num_layers,
                        s->num_heads, s->channels};
    unsigned char stepbuf[20];
    int32_t step32 = step;
    memcpy(stepbuf, &step32, 4);
    memcpy(stepbuf + 4, &loader->seed, 8);
    memcpy(stepbuf + 12, &loader->batches, 8);
    unsigned char scalbuf[12];
    int32_t clean = ls->clean_steps, skipped = ls->skipped;
    memcpy(scalbuf, &ls->scale, 4);
    memcpy(scalbuf + 4, &clean, 4);
    memcpy(scalbuf + 8, &skipped, 4);
    section secs[] = {
        {"SHPE", {shape, NULL}, {sizeof shape, 0}},
        {"SCAL", {scalbuf, NULL}, {sizeof scalbuf, 0}},
        {"STEP", {stepbuf, NULL}, {sizeof stepbuf, 0}},
        {"CONF", {conf, NULL}, {conf_len, 0}},
        {"PARM", {params, NULL}, {pbytes, 0}},
        {"ADAM", {adam_m, adam_v}, {pbytes, pbytes}},
        {"TOKN", {tok_data, NULL}, {tok_len, 0}}, /* last: absent when the tokenizer is unknown */
    };
    uint32_t version = VKT_CHECKPOINT_VERSION, nsec = sizeof secs / sizeof secs[0] - !tok;
    f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot write: %s", tmp, strerror(errno));
        goto done;
    }
    int ok = fwrite(MAGIC, 8, 1, f) == 1 && fwrite(&version, 4, 1, f) == 1 &&
             fwrite(&nsec, 4, 1, f) == 1;
    for (uint32_t i = 0; ok && i < nsec; i++) ok = write_section(f, &secs[i]) == 0;
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0) ok = 0;
    f = NULL;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: cannot write the checkpoint: %s", path, strerror(errno));
        remove(tmp);
        goto done;
    }
    rc = 0;
done:
    if (mem) fclose(mem);
    free(conf);
    free(tok_data);
    free(params);
    free(adam_m);
    free(adam_v);
    return rc;
}

void vkt_checkpoint_free(vkt_checkpoint *ck) {
    free(ck->params);
    free(ck->adam);
    free(ck->config_text);
    vkt_tokenizer_free(ck->tokenizer);
    memset(ck, 0, sizeof *ck);
}

int vkt_checkpoint_read(const char *path, vkt_checkpoint *ck, char *err, size_t errlen) {
    memset(ck, 0, sizeof *ck);
    ck->loss_scale.scale = 1.0f; /* files without SCAL: fp32 runs of older versions */
    unsigned char *buf;
    size_t len, pos = 16;
    int rc = vkt_read_file(path, &buf, &len, err, errlen);
    if (rc) return rc;
    uint32_t version, nsec;
    if (len < 16 || memcmp(buf, MAGIC, 8) != 0) {
        snprintf(err, errlen, "%s: not a vktrain checkpoint (bad magic)", path);
        goto fail;
    }
    memcpy(&version, buf + 8, 4);
    memcpy(&nsec, buf + 12, 4);
    if (version != VKT_CHECKPOINT_VERSION) {
        snprintf(err, errlen, "%s: checkpoint version %u, this vktrain reads version %d", path,
                 version, VKT_CHECKPOINT_VERSION);
        goto fail;
    }
    int have_shape = 0, have_step = 0;
    const unsigned char *adam = NULL, *params = NULL;
    size_t adam_bytes = 0, param_bytes = 0;
    for (uint32_t i = 0; i < nsec; i++) {
        uint32_t crc;
        uint64_t bytes;
        if (len - pos < 16) goto truncated;
        char tag[5] = {0};
        memcpy(tag, buf + pos, 4);
        memcpy(&crc, buf + pos + 4, 4);
        memcpy(&bytes, buf + pos + 8, 8);
        pos += 16;
        if (bytes > len - pos) goto truncated;
        const unsigned char *p = buf + pos;
        if (vkt_crc32(p, bytes) != crc) {
            snprintf(err, errlen, "%s: section %s is corrupt (CRC mismatch)", path, tag);
            goto fail;
        }
        if (!strcmp(tag, "SHPE") && bytes == 24) {
            int32_t s[6];
            memcpy(s, p, 24);
            ck->shape = (vkt_gpt2_shape){.max_seq_len = s[0], .vocab_size = s[1],
                                         .padded_vocab_size = s[2], .num_layers = s[3],
                                         .num_heads = s[4], .channels = s[5]};
            have_shape = 1;
        } else if (!strcmp(tag, "STEP") && bytes == 20) {
            int32_t step;
            memcpy(&step, p, 4);
            memcpy(&ck->loader.seed, p + 4, 8);
            memcpy(&ck->loader.batches, p + 12, 8);
            ck->step = step;
            have_step = 1;
        } else if (!strcmp(tag, "CONF")) {
            ck->config_text = malloc(bytes + 1);
            if (!ck->config_text) goto truncated;
            memcpy(ck->config_text, p, bytes);
            ck->config_text[bytes] = 0;
        } else if (!strcmp(tag, "PARM")) {
            params = p;
            param_bytes = bytes;
        } else if (!strcmp(tag, "ADAM")) {
            adam = p;
            adam_bytes = bytes;
        } else if (!strcmp(tag, "SCAL") && bytes == 12) {
            int32_t clean, skipped;
            memcpy(&ck->loss_scale.scale, p, 4);
            memcpy(&clean, p + 4, 4);
            memcpy(&skipped, p + 8, 4);
            ck->loss_scale.clean_steps = clean;
            ck->loss_scale.skipped = skipped;
        } else if (!strcmp(tag, "TOKN") && !ck->tokenizer) {
            ck->tokenizer = vkt_tokenizer_parse(p, bytes, path, err, errlen);
            if (!ck->tokenizer) goto fail;
        }
        pos += bytes;
    }
    if (!have_shape || !have_step || !params) {
        snprintf(err, errlen, "%s: checkpoint lacks a required section (SHPE, STEP, PARM)", path);
        goto fail;
    }
    vkt_param_tensor t[VKT_NUM_PARAM_TENSORS];
    ck->num_params = vkt_gpt2_param_layout(&ck->shape, t);
    if (param_bytes != ck->num_params * sizeof(float) ||
        (adam && adam_bytes != 2 * param_bytes)) {
        snprintf(err, errlen, "%s: parameter section size does not match the model shape", path);
        goto fail;
    }
    /* copied out: sections are not float-aligned in the file */
    ck->params = malloc(param_bytes);
    ck->adam = adam ? malloc(adam_bytes) : NULL;
    if (!ck->params || (adam && !ck->adam)) {
        snprintf(err, errlen, "%s: out of host memory reading the checkpoint", path);
        goto fail;
    }
    memcpy(ck->params, params, param_bytes);
    if (adam) memcpy(ck->adam, adam, adam_bytes);
    free(buf);
    return 0;
truncated:
    snprintf(err, errlen, "%s: checkpoint is truncated", path);
fail:
    free(buf);
    vkt_checkpoint_free(ck);
    return 2;
}
