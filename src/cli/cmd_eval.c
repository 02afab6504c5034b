/* vktrain eval: validation loss and perplexity of a model on held-out data. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/fs.h"
#include "vktrain/data.h"

static const char USAGE[] =
    "usage: vktrain eval --checkpoint DIR|FILE [--data PATH] [--batches N] [--batch-size B]\n"
    "                    [--seq-len T] [--tokenizer FILE] [--device DEV]\n"
    "\n"
    "Prints the mean cross-entropy loss (nats per token) and perplexity of a model: a run's\n"
    "out_dir (or its checkpoint.bin), an llm.c model file, or a model written by vktrain export.\n"
    "  --data PATH        data to evaluate on: a text file (encoded with the model's tokenizer),\n"
    "                     a prepared directory (its validation shards), an llm.c token shard or\n"
    "                     a glob of shards. Default: the validation data of the run that wrote\n"
    "                     the checkpoint\n"
    "  --batches N        evaluate at most N batches (default 100); sequences are consecutive\n"
    "                     windows from the start of the data\n"
    "  --batch-size B     sequences per batch (default 8)\n"
    "  --seq-len T        tokens per sequence (default: the run's seq_len, else the model's\n"
    "                     block size up to 1024)\n"
    "  --tokenizer FILE   tokenizer for a text --data (default: the checkpoint's)\n"
    "  --device DEV       device to run on (default auto)\n";

typedef struct eval_args {
    const char *checkpoint, *data, *tokenizer, *device;
    int batches, B, T;
} eval_args;

/* the options that take a value */
static const char *const VALUE_OPTS[] = {
    "--checkpoint", "--data", "--batches", "--batch-size", "--seq-len", "--tokenizer",
    "--device", NULL};

static int parse(int argc, char **argv, eval_args *a) {
    const char *cmd = "eval";
    *a = (eval_args){.device = "auto", .batches = 100, .B = 8};
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i], *v;
        int rc = 0;
        if (!strcmp(k, "--help") || !strcmp(k, "-h")) {
            fputs(USAGE, stdout);
            return -1;
        }
        if (!cli_one_of(k, VALUE_OPTS)) return cli_usage(cmd, "unknown argument '%s'", k);
        if (!(v = cli_value(cmd, argc, argv, &i))) return 2;
        if (!strcmp(k, "--checkpoint")) a->checkpoint = v;
        else if (!strcmp(k, "--data")) a->data = v;
        else if (!strcmp(k, "--tokenizer")) a->tokenizer = v;
        else if (!strcmp(k, "--device")) a->device = v;
        else if (!strcmp(k, "--batches")) rc = cli_int(cmd, k, v, 1, 1 << 30, &a->batches);
        else if (!strcmp(k, "--batch-size")) rc = cli_int(cmd, k, v, 1, 1 << 16, &a->B);
        else rc = cli_int(cmd, k, v, 1, 1 << 20, &a->T);
        if (rc) return rc;
    }
    if (!a->checkpoint) return cli_usage(cmd, "--checkpoint DIR|FILE is required");
    return 0;
}

/* What to evaluate on: owns either a data set or an encoded text buffer. */
typedef struct eval_data {
    vkt_data data;
    vkt_token_view text_view;
    vkt_span text_span;
    uint16_t *text_ids;
    const vkt_token_view *view;
} eval_data;

static int encode_text(eval_data *e, const char *path, const vkt_tokenizer *tok, int V,
                       char *err, size_t errlen) {
    if (!tok || !vkt_tokenizer_can_encode(tok)) {
        snprintf(err, errlen,
                 "%s: text needs the model's tokenizer to encode it, and %s. HINT: give "
                 "--tokenizer with the tokenizer.bin of vktrain prepare, or token shards",
                 path, tok ? "llm.c's tokenizer file only decodes" : "this model has none");
        return 2;
    }
    unsigned char *text;
    size_t len;
    int rc = vkt_read_file(path, &text, &len, err, errlen);
    if (rc) return rc;
    e->text_ids = malloc((len + 1) * sizeof *e->text_ids);
    if (!e->text_ids) {
        free(text);
        snprintf(err, errlen, "%s: out of host memory", path);
        return 1;
    }
    size_t n = vkt_tokenizer_encode(tok, text, len, e->text_ids);
    free(text);
    if (vkt_tokenizer_vocab_size(tok) > V) {
        snprintf(err, errlen, "the tokenizer has %d tokens but the model only %d: it is not the "
                 "model's tokenizer", vkt_tokenizer_vocab_size(tok), V);
        return 2;
    }
    e->text_span = (vkt_span){e->text_ids, n};
    e->text_view = (vkt_token_view){.spans = &e->text_span, .n_spans = 1, .n_tokens = n};
    snprintf(e->text_view.name, sizeof e->text_view.name, "%s", path);
    e->view = &e->text_view;
    return 0;
}

/* --data as shards, a glob or a prepared directory: through the data set of a config. */
static int open_data(eval_data *e, const char *path, int V, int T, char *err, size_t errlen) {
    char d[VKT_PATH_MAX + 16], v[64], t[64], b[64];
    snprintf(d, sizeof d, "data.train=%s", path);
    snprintf(v, sizeof v, "model.vocab_size=%d", V);
    snprintf(t, sizeof t, "train.seq_len=%d", T);
    snprintf(b, sizeof b, "model.block_size=%d", T);
    const char *ov[] = {d, v, t, b, "data.val_fraction=0"};
    vkt_config cfg;
    int rc = vkt_config_load(&cfg, NULL, ov, 5, err, errlen);
    if (!rc) rc = vkt_data_open(&cfg, &e->data, err, errlen);
    if (!rc) e->view = e->data.val.n_tokens ? &e->data.val : &e->data.train;
    return rc;
}

/* No --data: the validation set of the run that wrote the checkpoint. */
static int open_run_data(eval_data *e, const cli_model *cm, const char *ckpt, char *err,
                         size_t errlen) {
    if (!cm->ck.config_text) {
        snprintf(err, errlen, "%s: an llm.c model file names no data. HINT: give --data", ckpt);
        return 2;
    }
    vkt_config cfg;
    char name[VKT_PATH_MAX + 32];
    snprintf(name, sizeof name, "the config saved in %s", ckpt);
    int rc = vkt_config_load_text(&cfg, cm->ck.config_text, name, NULL, 0, err, errlen);
    if (!rc) rc = vkt_data_open(&cfg, &e->data, err, errlen);
    if (!rc && e->data.val.n_tokens == 0) {
        snprintf(err, errlen, "%s: the run had no validation set. HINT: give --data", ckpt);
        rc = 2;
    }
    if (!rc) e->view = &e->data.val;
    return rc;
}

/* The run's [train] seq_len, read from the saved config text directly: loading that config
 * would also require its data files to still exist, which --data makes unnecessary. */
static int default_seq_len(const cli_model *cm) {
    const char *p = cm->ck.config_text ? strstr(cm->ck.config_text, "\nseq_len = ") : NULL;
    long T = p ? strtol(p + 11, NULL, 10) : 0;
    int maxT = cm->ck.shape.max_seq_len;
    if (T <= 0 || T > maxT) T = maxT < 1024 ? maxT : 1024; /* the saved text is not trusted */
    return (int)T;
}

int vkt_cmd_eval(int argc, char **argv) {
    eval_args a;
    int rc = parse(argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    char err[2048] = "";
    cli_model cm;
    eval_data e;
    memset(&e, 0, sizeof e);
    vkt_tokenizer *tok = NULL;
    int dev;
    rc = cli_model_read(&cm, a.checkpoint, a.device, &dev, err, sizeof err);
    int V = cm.ck.shape.vocab_size, T = rc ? 0 : a.T ? a.T : default_seq_len(&cm);
    if (!rc && T > cm.ck.shape.max_seq_len) { /* a message in err: cli_fail prints it */
        snprintf(err, sizeof err, "--seq-len %d: the model %s has %d positions. HINT: give "
                 "--seq-len %d or less", T, a.checkpoint, cm.ck.shape.max_seq_len,
                 cm.ck.shape.max_seq_len);
        rc = 2;
    }
    if (!rc && a.tokenizer && !(tok = vkt_tokenizer_load(a.tokenizer, err, sizeof err))) rc = 2;
    if (!rc && a.data && vkt_data_is_text(a.data))
        rc = encode_text(&e, a.data, tok ? tok : cm.ck.tokenizer, V, err, sizeof err);
    else if (!rc && a.data)
        rc = open_data(&e, a.data, V, T, err, sizeof err);
    else if (!rc)
        rc = open_run_data(&e, &cm, a.checkpoint, err, sizeof err);
    size_t windows = rc ? 0 : vkt_view_windows(e.view, T);
    if (!rc && windows == 0) {
        snprintf(err, sizeof err, "%s: %zu tokens hold no sequence of %d + 1 tokens",
                 e.view->name, e.view->n_tokens, T);
        rc = 2;
    }
    int B = 1;
    size_t nb = 0;
    if (!rc) { /* whole batches only, so every sequence weighs the same */
        B = windows < (size_t)a.B ? (int)windows : a.B;
        nb = windows / (size_t)B < (size_t)a.batches ? windows / (size_t)B : (size_t)a.batches;
    }
    if (!rc) rc = cli_model_build(&cm, dev, B, T, err, sizeof err);
    if (!rc) {
        int32_t *in = malloc((size_t)B * T * sizeof *in), *tg = malloc((size_t)B * T * sizeof *tg);
        double sum = 0;
        for (size_t i = 0; in && tg && i < nb; i++) {
            vkt_eval_batch(e.view, (int)i, B, T, in, tg);
            sum += vkt_model_forward(cm.m, in, tg, B, T, 0.0f, 0);
        }
        if (!in || !tg) {
            snprintf(err, sizeof err, "out of host memory");
            rc = 1;
        } else if (vkt_backend_error(cm.be, err, sizeof err)) {
            rc = 1; /* a device error: the losses are not the model's */
        }
        free(in);
        free(tg);
        double loss = sum / (double)nb;
        if (!rc)
            printf("eval: %s: loss %.4f | perplexity %.3f | %zu tokens (%zu sequences of %d, of "
                   "%zu in %s)\n",
                   a.checkpoint, loss, exp(loss), nb * (size_t)B * T, nb * (size_t)B, T,
                   windows, e.view->name);
    }
    vkt_data_close(&e.data);
    free(e.text_ids);
    vkt_tokenizer_free(tok);
    cli_model_close(&cm);
    if (rc && !err[0]) /* every path above says what failed; this is the net under them */
        snprintf(err, sizeof err, "%s: evaluation failed (no detail; please report this)",
                 a.checkpoint);
    return rc ? cli_fail("eval", rc, err) : 0;
}
