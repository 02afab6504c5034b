/* vktrain prepare: tokenize text once into a directory of llm.c token shards. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "vktrain/data.h"

static const char USAGE[] =
    "usage: vktrain prepare [--tokenizer byte|bpe] [--vocab-size N] [--val-fraction F]\n"
    "                       [--val FILE]... [--shard-tokens N] [--force] [--quiet]\n"
    "                       --out DIR INPUT...\n"
    "\n"
    "Tokenizes the INPUT text files (concatenated in order) and writes DIR: tokenizer.bin,\n"
    "train_000000.bin ... and val_000000.bin ... (llm.c token shards) and manifest.ini.\n"
    "Set [data] train = DIR in a config to train on it.\n"
    "  --tokenizer T      byte (one token per byte, vocab 256; default) or bpe (byte-level BPE\n"
    "                     trained on the training part of the inputs)\n"
    "  --vocab-size N     BPE vocabulary, 257 to 65536 (default 4096); set the same\n"
    "                     [model] vocab_size\n"
    "  --val-fraction F   the last share F of the input bytes becomes validation data\n"
    "                     (default 0.1; 0 = none)\n"
    "  --val FILE         validation text instead (repeatable); then all INPUTs are training data\n"
    "  --shard-tokens N   tokens per shard at most (default 100000000, like llm.c)\n"
    "  --force            replace DIR if it is an earlier prepare's output and nothing else\n"
    "                     (a DIR holding anything prepare does not write is left as it is)\n"
    "  --quiet            no progress output\n";

/* the options that take a value */
static const char *const VALUE_OPTS[] = {
    "--tokenizer", "--vocab-size", "--val-fraction", "--val", "--shard-tokens", "--out", NULL};

int vkt_cmd_prepare(int argc, char **argv) {
    const char *cmd = "prepare";
    const char **inputs = calloc((size_t)argc, sizeof *inputs);
    const char **vals = calloc((size_t)argc, sizeof *vals);
    vkt_prepare_opts o = {.tokenizer = "byte", .vocab_size = 4096, .val_fraction = 0.1,
                          .progress = 1};
    int rc = 0, vocab_given = 0;
    if (!inputs || !vals) return 1;
    for (int i = 2; i < argc && !rc; i++) {
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(USAGE, stdout);
            free(inputs), free(vals);
            return 0;
        } else if (!strcmp(a, "--force")) {
            o.force = 1;
        } else if (!strcmp(a, "--quiet")) {
            o.progress = 0;
        } else if (cli_one_of(a, VALUE_OPTS) && !(v = cli_value(cmd, argc, argv, &i))) {
            rc = 2;
        } else if (!strcmp(a, "--tokenizer")) {
            o.tokenizer = v;
        } else if (!strcmp(a, "--vocab-size")) {
            rc = cli_int(cmd, a, v, VKT_BPE_MIN_VOCAB, VKT_BPE_MAX_VOCAB, &o.vocab_size);
            vocab_given = 1;
        } else if (!strcmp(a, "--val-fraction")) {
            rc = cli_double(cmd, a, v, 0, 0.9, &o.val_fraction);
        } else if (!strcmp(a, "--val")) {
            vals[o.n_val_inputs++] = v;
        } else if (!strcmp(a, "--shard-tokens")) {
            uint64_t n;
            rc = cli_u64(cmd, a, v, &n);
            if (!rc && (n < 1 || n > VKT_SHARD_MAX_TOKENS))
                rc = cli_usage(cmd, "--shard-tokens %s: expected 1 to %u", v, VKT_SHARD_MAX_TOKENS);
            o.shard_tokens = (size_t)n;
        } else if (!strcmp(a, "--out")) {
            o.out_dir = v;
        } else if (a[0] == '-' && a[1]) {
            rc = cli_usage(cmd, "unknown option '%s'", a);
        } else {
            inputs[o.n_inputs++] = a;
        }
    }
    if (!rc && strcmp(o.tokenizer, "byte") && strcmp(o.tokenizer, "bpe"))
        rc = cli_usage(cmd, "--tokenizer %s: accepted: byte, bpe", o.tokenizer);
    if (!rc && vocab_given && strcmp(o.tokenizer, "bpe"))
        rc = cli_usage(cmd, "--vocab-size applies to --tokenizer bpe only (byte has 256)");
    if (!rc && !o.out_dir) rc = cli_usage(cmd, "--out DIR is required");
    if (!rc && o.n_inputs == 0) rc = cli_usage(cmd, "no input files given");
    if (!rc) {
        o.inputs = inputs;
        o.val_inputs = vals;
        char err[2048];
        rc = vkt_prepare(&o, err, sizeof err);
        if (rc) cli_fail(cmd, rc, err);
        else fprintf(stderr, "vktrain prepare: wrote %s; train with [data] train = %s\n",
                     o.out_dir, o.out_dir);
    }
    free(inputs);
    free(vals);
    return rc;
}
