/* Option parsing and model opening shared by the subcommands (see cli.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/text.h"

int cli_usage(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vktrain %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nHINT: vktrain %s --help\n", cmd);
    va_end(ap);
    return 2;
}

int cli_fail(const char *cmd, int rc, const char *err) {
    fprintf(stderr, "vktrain %s: error: %s\n", cmd, err);
    return rc;
}

int cli_int(const char *cmd, const char *opt, const char *v, long min, long max, int *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < min || x > max)
        return cli_usage(cmd, "%s %s: expected an integer from %ld to %ld", opt, v, min, max);
    *out = (int)x;
    return 0;
}

int cli_double(const char *cmd, const char *opt, const char *v, double min, double max,
               double *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (!*v || *end || errno || !(x >= min && x <= max))
        return cli_usage(cmd, "%s %s: expected a number from %g to %g", opt, v, min, max);
    *out = x;
    return 0;
}

int cli_u64(const char *cmd, const char *opt, const char *v, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *end || errno || v[0] == '-')
        return cli_usage(cmd, "%s %s: expected a non-negative integer", opt, v);
    *out = x;
    return 0;
}

void cli_escape(const char *s, char *buf, size_t len) {
    size_t o = 0;
    if (!len) return;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char piece[8];
        if (*p < 0x20 || *p >= 0x7f) snprintf(piece, sizeof piece, "\\x%02x", *p);
        else piece[0] = (char)*p, piece[1] = 0;
        size_t n = strlen(piece);
        if (o + n >= len) break;
        memcpy(buf + o, piece, n);
        o += n;
    }
    buf[o] = 0;
}


const char *cli_nearest(const char *word, const char *const *cands) {
    const char *best = NULL;
    size_t bd = 3; /* more than 2 edits away is another word, not a typo */
    for (; *cands; cands++) {
        size_t d = vkt_edit_distance(word, *cands);
        if (d < bd) bd = d, best = *cands;
    }
    return best;
}

int cli_one_of(const char *a, const char *const *opts) {
    for (; *opts; opts++)
        if (!strcmp(a, *opts)) return 1;
    return 0;
}

const char *cli_value(const char *cmd, int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        cli_usage(cmd, "%s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int cli_model_read(cli_model *cm, const char *weights, const char *device, int *dev, char *err,
                   size_t errlen) {
    memset(cm, 0, sizeof *cm);
    *dev = vkt_device_resolve(device, err, errlen); /* cheap checks first */
    if (*dev < 0) return 2;
    return vkt_weights_read(weights, &cm->ck, err, errlen);
}

int cli_model_build(cli_model *cm, int dev, int B, int T, char *err, size_t errlen) {
    cm->be = vkt_backend_create(dev, err, errlen);
    if (!cm->be) return 1;
    const vkt_gpt2_shape *s = &cm->ck.shape;
    if (T <= 0 || T > s->max_seq_len) T = s->max_seq_len;
    cm->m = vkt_model_create(cm->be, s, B, T, err, errlen);
    if (!cm->m) return 1;
    vkt_model_set_params(cm->m, cm->ck.params);
    free(cm->ck.params); /* on the device now; can be large */
    cm->ck.params = NULL;
    free(cm->ck.adam);
    cm->ck.adam = NULL;
    return 0;
}

int cli_model_open(cli_model *cm, const char *weights, const char *device, int B, int T,
                   char *err, size_t errlen) {
    int dev;
    int rc = cli_model_read(cm, weights, device, &dev, err, errlen);
    return rc ? rc : cli_model_build(cm, dev, B, T, err, errlen);
}

void cli_model_close(cli_model *cm) {
    vkt_model_destroy(cm->m);
    vkt_backend_destroy(cm->be);
    vkt_checkpoint_free(&cm->ck);
    memset(cm, 0, sizeof *cm);
}
