/* Shared by the subcommands: strict option-value parsing with messages that name the option,
 * and opening a model from any weights file on a device. */
#ifndef VKTRAIN_CLI_H
#define VKTRAIN_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "vktrain/backend.h"
#include "vktrain/checkpoint.h"
#include "vktrain/model.h"

/* "vktrain CMD: <message>\nHINT: vktrain CMD --help" on stderr; returns 2. */
int cli_usage(const char *cmd, const char *fmt, ...);
/* Error of a run (message already names the file or device); returns rc. */
int cli_fail(const char *cmd, int rc, const char *err);

/* Strict parsers: the whole value must be a number within [min, max]; else a usage error
 * naming the option (return 2). */
int cli_int(const char *cmd, const char *opt, const char *v, long min, long max, int *out);
int cli_double(const char *cmd, const char *opt, const char *v, double min, double max,
               double *out);
int cli_u64(const char *cmd, const char *opt, const char *v, uint64_t *out);

/* s for a message: control and non-ASCII bytes as \xNN (an argument may hold anything). */
void cli_escape(const char *s, char *buf, size_t len);
/* The candidate (NULL-terminated list) within 2 edits of word, closest first; else NULL. */
const char *cli_nearest(const char *word, const char *const *cands);

/* 1 when a is one of the NULL-terminated opts (an option that takes a value). */
int cli_one_of(const char *a, const char *const *opts);
/* Option value at argv[*i + 1] (advancing *i), or NULL after a usage message. */
const char *cli_value(const char *cmd, int argc, char **argv, int *i);

typedef struct cli_model {
    vkt_checkpoint ck; /* shape, params (freed after upload), tokenizer, config text */
    vkt_backend *be;
    vkt_model *m;
} cli_model;

/* Reads weights (vkt_weights_read) and builds the model on device (a --device spec) for
 * batches up to B x T (T 0 = block_size). 0, or 2/1 with err. Or in two steps: read, then
 * build once the shape is known. */
int cli_model_open(cli_model *cm, const char *weights, const char *device, int B, int T,
                   char *err, size_t errlen);
int cli_model_read(cli_model *cm, const char *weights, const char *device, int *dev, char *err,
                   size_t errlen);
int cli_model_build(cli_model *cm, int dev, int B, int T, char *err, size_t errlen);
void cli_model_close(cli_model *cm);

int vkt_cmd_prepare(int argc, char **argv);
int vkt_cmd_sample(int argc, char **argv);
int vkt_cmd_eval(int argc, char **argv);
int vkt_cmd_export(int argc, char **argv);

#endif
