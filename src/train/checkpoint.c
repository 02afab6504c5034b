/* Checkpoint file I/O (format in include/vktrain/checkpoint.h). */
#include <errno.h>
#include <stdarg.h>
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
                        const vkt_tokenizer *tok, const vkt_batch_split *split, char *err,
                        size_t errlen) {
    const vkt_gpt2_shape *s = vkt_model_shape(m);
    size_t np = vkt_model_num_params(m), pbytes = np * sizeof(float);
    vkt_backend *be = vkt_model_backend(m);
    float *params = malloc(pbytes), *adam_m = malloc(pbytes), *adam_v = malloc(pbytes);
    char *conf = NULL;
    size_t conf_len = 0, tok_len = 0;
    unsigned char *tok_data = NULL;
    FILE *mem = open_memstream(&conf, &conf_len);
    char tmp[VKT_PATH_MAX + 32];
    vkt_temp_path(tmp, sizeof tmp, path); /* per process: a concurrent save never shares it */
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
    int32_t splitbuf[1 + VKT_MAX_SPLIT_RANKS];
    int nsplit = split && split->ranks > 0 ? split->ranks : 0;
    splitbuf[0] = nsplit;
    for (int i = 0; i < nsplit; i++) splitbuf[1 + i] = split->counts[i];
    section secs[] = {
        {"SHPE", {shape, NULL}, {sizeof shape, 0}},
        {"SCAL", {scalbuf, NULL}, {sizeof scalbuf, 0}},
        {"STEP", {stepbuf, NULL}, {sizeof stepbuf, 0}},
        {"CONF", {conf, NULL}, {conf_len, 0}},
        {"PARM", {params, NULL}, {pbytes, 0}},
        {"ADAM", {adam_m, adam_v}, {pbytes, pbytes}},
        {"SPLT", {splitbuf, NULL}, {4 * (size_t)(1 + nsplit), 0}}, /* absent without one */
        {"TOKN", {tok_data, NULL}, {tok_len, 0}}, /* absent when the tokenizer is unknown */
    };
    uint32_t version = VKT_CHECKPOINT_VERSION, nsec = 0;
    const int nall = (int)(sizeof secs / sizeof secs[0]);
    for (int i = 0; i < nall; i++) { /* the sections present, in order */
        int absent = (!memcmp(secs[i].tag, "SPLT", 4) && !nsplit) ||
                     (!memcmp(secs[i].tag, "TOKN", 4) && !tok);
        if (!absent) secs[nsec++] = secs[i];
    }
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

/* ---- reading: every field checked against the others before anything is allocated ---- */

enum {
    SEC_SHPE, SEC_STEP, SEC_CONF, SEC_PARM, SEC_ADAM, SEC_TOKN, SEC_SCAL, SEC_SPLT, NUM_SECS
};
static const char TAGS[NUM_SECS][5] = {"SHPE", "STEP", "CONF", "PARM", "ADAM", "TOKN", "SCAL",
                                       "SPLT"};

typedef struct found {
    const unsigned char *p; /* NULL: absent */
    size_t bytes;
} found;

/* The loader position a file may hold: far beyond any run (2.8e14 batches), small enough
 * that no arithmetic on it wraps. */
#define MAX_LOADER_BATCHES (1ull << 48)

static int ck_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int ck_fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return 2;
}

/* Pass 1: the section table. Sizes against the file, CRCs, duplicates; nothing allocated. */
static int index_sections(const unsigned char *buf, size_t len, const char *name,
                          found secs[NUM_SECS], char *err, size_t errlen) {
    uint32_t version, nsec;
    if (len < 16 || memcmp(buf, MAGIC, 8) != 0)
        return ck_fail(err, errlen, "%s: not a vktrain checkpoint (bad magic)", name);
    memcpy(&version, buf + 8, 4);
    memcpy(&nsec, buf + 12, 4);
    if (version != VKT_CHECKPOINT_VERSION)
        return ck_fail(err, errlen, "%s: checkpoint version %u, this vktrain reads version %d",
                       name, version, VKT_CHECKPOINT_VERSION);
    if (nsec > (len - 16) / 16) /* every section has a 16-byte header */
        return ck_fail(err, errlen, "%s: checkpoint announces %u sections, more than its %zu "
                       "bytes can hold (it is truncated or damaged)", name, nsec, len);
    size_t pos = 16;
    for (uint32_t i = 0; i < nsec; i++) {
        uint32_t crc;
        uint64_t bytes;
        if (len - pos < 16)
            return ck_fail(err, errlen, "%s: checkpoint is truncated (in the header of section "
                           "%u of %u)", name, i + 1, nsec);
        char tag[5] = {0};
        memcpy(tag, buf + pos, 4);
        memcpy(&crc, buf + pos + 4, 4);
        memcpy(&bytes, buf + pos + 8, 8);
        pos += 16;
        for (int c = 0; c < 4; c++) /* a damaged tag must not print raw bytes */
            if (tag[c] < 0x21 || tag[c] > 0x7e) tag[c] = '?';
        if (bytes > len - pos)
            return ck_fail(err, errlen, "%s: checkpoint is truncated: section %s announces %llu "
                           "bytes, %zu are left", name, tag, (unsigned long long)bytes, len - pos);
        const unsigned char *p = buf + pos;
        if (vkt_crc32(p, (size_t)bytes) != crc)
            return ck_fail(err, errlen, "%s: section %s is corrupt (CRC mismatch)", name, tag);
        pos += (size_t)bytes;
        for (int k = 0; k < NUM_SECS; k++) {
            if (memcmp(tag, TAGS[k], 4) != 0) continue;
            if (secs[k].p)
                return ck_fail(err, errlen, "%s: section %s appears twice", name, tag);
            secs[k] = (found){p, (size_t)bytes};
        }
        /* a tag not in TAGS: a section of a later vktrain, skipped */
    }
    if (pos != len)
        return ck_fail(err, errlen, "%s: checkpoint has %zu unexpected bytes after its last "
                       "section", name, len - pos);
    for (int k = 0; k < SEC_CONF; k++) /* SHPE, STEP */
        if (!secs[k].p)
            return ck_fail(err, errlen, "%s: checkpoint lacks its %s section", name, TAGS[k]);
    if (!secs[SEC_PARM].p)
        return ck_fail(err, errlen, "%s: checkpoint lacks its PARM section", name);
    const int fixed[][2] = {{SEC_SHPE, 24}, {SEC_STEP, 20}, {SEC_SCAL, 12}};
    for (int k = 0; k < 3; k++) {
        const found *f = &secs[fixed[k][0]];
        if (f->p && f->bytes != (size_t)fixed[k][1])
            return ck_fail(err, errlen, "%s: section %s is %zu bytes, it must be %d", name,
                           TAGS[fixed[k][0]], f->bytes, fixed[k][1]);
    }
    return 0;
}

/* Pass 2: the fixed-size sections into ck, each field range-checked. */
static int read_fields(const found secs[NUM_SECS], const char *name, vkt_checkpoint *ck,
                       char *err, size_t errlen) {
    int32_t s[6];
    memcpy(s, secs[SEC_SHPE].p, 24);
    ck->shape = (vkt_gpt2_shape){.max_seq_len = s[0], .vocab_size = s[1],
                                 .padded_vocab_size = s[2], .num_layers = s[3],
                                 .num_heads = s[4], .channels = s[5]};
    char why[256];
    if (vkt_gpt2_shape_check(&ck->shape, why, sizeof why))
        return ck_fail(err, errlen, "%s: section SHPE: %s", name, why);
    vkt_param_tensor t[VKT_NUM_PARAM_TENSORS];
    ck->num_params = vkt_gpt2_param_layout(&ck->shape, t);

    const unsigned char *p = secs[SEC_STEP].p;
    int32_t step;
    memcpy(&step, p, 4);
    memcpy(&ck->loader.seed, p + 4, 8);
    memcpy(&ck->loader.batches, p + 12, 8);
    if (step < 0 || step > INT32_MAX - 1)
        return ck_fail(err, errlen, "%s: section STEP: step = %d is outside [0, %d]", name, step,
                       INT32_MAX - 1);
    ck->step = step;
    /* every step draws at least one batch (grad_accum_steps of them) */
    if (ck->loader.batches < (uint64_t)step || ck->loader.batches > MAX_LOADER_BATCHES)
        return ck_fail(err, errlen, "%s: section STEP: loader batches drawn = %llu is outside "
                       "[step = %d, 2^48]", name, (unsigned long long)ck->loader.batches, step);

    if (secs[SEC_SCAL].p) {
        int32_t clean, skipped;
        float scale;
        memcpy(&scale, secs[SEC_SCAL].p, 4);
        memcpy(&clean, secs[SEC_SCAL].p + 4, 4);
        memcpy(&skipped, secs[SEC_SCAL].p + 8, 4);
        if (!(scale > 0.0f && scale <= 3.4e38f)) /* also refuses NaN and infinity */
            return ck_fail(err, errlen, "%s: section SCAL: loss scale = %g is not a finite "
                           "number > 0", name, (double)scale);
        if (clean < 0)
            return ck_fail(err, errlen, "%s: section SCAL: clean steps = %d is negative", name,
                           clean);
        /* AdamW's update count is step + 1 - skipped: it must stay >= 1 */
        if (skipped < 0 || skipped > step)
            return ck_fail(err, errlen, "%s: section SCAL: skipped steps = %d is outside [0, "
                           "step = %d]", name, skipped, step);
        ck->loss_scale = (vkt_loss_scale){scale, clean, skipped};
    }
    if (secs[SEC_SPLT].p) {
        size_t n = secs[SEC_SPLT].bytes / 4;
        int32_t k = 0;
        if (n >= 1) memcpy(&k, secs[SEC_SPLT].p, 4);
        if (secs[SEC_SPLT].bytes % 4 || n < 2 || k < 1 || k > VKT_MAX_SPLIT_RANKS ||
            (size_t)k != n - 1)
            return ck_fail(err, errlen, "%s: section SPLT: %zu bytes do not hold a batch split "
                           "of 1 to %d ranks", name, secs[SEC_SPLT].bytes, VKT_MAX_SPLIT_RANKS);
        ck->split.ranks = k;
        for (int i = 0; i < k; i++) {
            int32_t c;
            memcpy(&c, secs[SEC_SPLT].p + 4 * (1 + (size_t)i), 4);
            if (c < 0 || c > 1 << 24)
                return ck_fail(err, errlen, "%s: section SPLT: rank %d's share %d is outside "
                               "[0, 2^24]", name, i, c);
            ck->split.counts[i] = c;
        }
    }
    size_t pbytes = ck->num_params * sizeof(float); /* < 2^46: shape_check bounds it */
    if (secs[SEC_PARM].bytes != pbytes)
        return ck_fail(err, errlen, "%s: section PARM is %zu bytes, the shape in SHPE needs %zu "
                       "(%zu parameters)", name, secs[SEC_PARM].bytes, pbytes, ck->num_params);
    if (secs[SEC_ADAM].p && secs[SEC_ADAM].bytes != 2 * pbytes)
        return ck_fail(err, errlen, "%s: section ADAM is %zu bytes, the shape in SHPE needs %zu "
                       "(m and v of %zu parameters)", name, secs[SEC_ADAM].bytes, 2 * pbytes,
                       ck->num_params);
    return 0;
}

int vkt_weights_check_finite(const char *name, const char *what, const vkt_gpt2_shape *s,
                             const float *x, char *err, size_t errlen) {
    size_t elem;
    int i = vkt_params_first_nonfinite(s, x, &elem);
    if (i < 0) return 0;
    vkt_param_tensor t[VKT_NUM_PARAM_TENSORS];
    vkt_gpt2_param_layout(s, t);
    float v = x[t[i].offset + elem];
    snprintf(err, errlen,
             "%s: tensor %s element %zu of %s is %s: the weights are not finite. HINT: the run "
             "that wrote them diverged; use an earlier checkpoint (a lower [optim] lr avoids it)",
             name, t[i].name, elem, what, v != v ? "NaN" : v > 0 ? "+inf" : "-inf");
    return 2;
}

/* Pass 3: the variable sections, copied out (sections are not float-aligned in the file). */
static int read_payloads(const found secs[NUM_SECS], const char *name, vkt_checkpoint *ck,
                         char *err, size_t errlen) {
    size_t np = ck->num_params, pbytes = np * sizeof(float);
    if (secs[SEC_TOKN].p) {
        ck->tokenizer = vkt_tokenizer_parse(secs[SEC_TOKN].p, secs[SEC_TOKN].bytes, name, err,
                                            errlen);
        if (!ck->tokenizer) return 2;
        int tv = vkt_tokenizer_vocab_size(ck->tokenizer);
        if (tv > ck->shape.vocab_size)
            return ck_fail(err, errlen, "%s: section TOKN: the tokenizer has %d tokens, the "
                           "model's vocab_size (SHPE) only %d", name, tv, ck->shape.vocab_size);
    }
    if (secs[SEC_CONF].p) {
        ck->config_text = malloc(secs[SEC_CONF].bytes + 1);
        if (!ck->config_text) goto oom;
        memcpy(ck->config_text, secs[SEC_CONF].p, secs[SEC_CONF].bytes);
        ck->config_text[secs[SEC_CONF].bytes] = 0;
    }
    ck->params = malloc(pbytes ? pbytes : 1);
    if (!ck->params) goto oom;
    memcpy(ck->params, secs[SEC_PARM].p, pbytes);
    int rc = vkt_weights_check_finite(name, "the parameters", &ck->shape, ck->params, err,
                                      errlen);
    if (rc) return rc;
    if (secs[SEC_ADAM].p) {
        ck->adam = malloc(2 * pbytes);
        if (!ck->adam) goto oom;
        memcpy(ck->adam, secs[SEC_ADAM].p, 2 * pbytes);
        if ((rc = vkt_weights_check_finite(name, "AdamW's first moment (section ADAM)", &ck->shape,
                                           ck->adam, err, errlen)) ||
            (rc = vkt_weights_check_finite(name, "AdamW's second moment (section ADAM)", &ck->shape,
                                           ck->adam + np, err, errlen)))
            return rc;
        for (size_t i = 0; i < np; i++)
            if (ck->adam[np + i] < 0) /* a sum of squares: sqrt of it must exist */
                return ck_fail(err, errlen, "%s: section ADAM: second moment %zu is negative "
                               "(%g)", name, i, (double)ck->adam[np + i]);
    }
    return 0;
oom:
    snprintf(err, errlen, "%s: out of host memory reading the checkpoint", name);
    return 1;
}

int vkt_checkpoint_parse(const unsigned char *buf, size_t len, const char *name,
                         vkt_checkpoint *ck, char *err, size_t errlen) {
    memset(ck, 0, sizeof *ck);
    ck->loss_scale.scale = 1.0f; /* files without SCAL: fp32 runs of older versions */
    found secs[NUM_SECS];
    memset(secs, 0, sizeof secs);
    int rc = index_sections(buf, len, name, secs, err, errlen);
    if (!rc) rc = read_fields(secs, name, ck, err, errlen);
    if (!rc) rc = read_payloads(secs, name, ck, err, errlen);
    if (rc) vkt_checkpoint_free(ck);
    return rc;
}

int vkt_checkpoint_read(const char *path, vkt_checkpoint *ck, char *err, size_t errlen) {
    memset(ck, 0, sizeof *ck);
    unsigned char *buf;
    size_t len;
    int rc = vkt_read_file(path, &buf, &len, err, errlen);
    if (rc) return rc;
    rc = vkt_checkpoint_parse(buf, len, path, ck, err, errlen);
    free(buf);
    return rc;
}
