/* vktrain sample: generate text from a trained model, streamed as it is produced. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "vktrain/tokenizer.h"

static const char USAGE[] =
    "usage: vktrain sample --checkpoint DIR|FILE [--prompt TEXT] [--tokens N]\n"
    "                      [--temperature T] [--top-k K] [--seed S] [--tokenizer FILE]\n"
    "                      [--device DEV]\n"
    "\n"
    "Generates text from a model: a run's out_dir (or its checkpoint.bin) or an llm.c model\n"
    "file. Text is printed as it is produced.\n"
    "  --prompt TEXT      text to continue (default: a newline). An empty prompt starts a\n"
    "                     fresh document from GPT-2's <|endoftext|> token (vocab 50257);\n"
    "                     a vocabulary without one (byte, bpe) refuses it\n"
    "  --tokens N         tokens to generate (default 256)\n"
    "  --temperature T    sampling temperature; 0 = always the likeliest token (default 0.8)\n"
    "  --top-k K          sample among the K likeliest tokens; 0 = all (default 200)\n"
    "  --seed S           random seed (default 1337): the same seed gives the same text\n"
    "  --tokenizer FILE   tokenizer to decode with: a vktrain tokenizer.bin or llm.c's\n"
    "                     gpt2_tokenizer.bin (default: the one saved in the checkpoint; without\n"
    "                     any, token ids are printed)\n"
    "  --device DEV       device to run on (default auto; see vktrain --list-devices)\n";

/* Streams each token, as text or as its id; nothing once the device has failed (the logits
 * it was drawn from are not the model's). */
typedef struct emitter {
    const vkt_tokenizer *tok; /* NULL: ids */
    vkt_backend *be;
} emitter;

static void emit(int token, void *user) {
    const emitter *e = user;
    if (vkt_backend_error(e->be, NULL, 0)) return;
    if (e->tok) {
        size_t len;
        const unsigned char *b = vkt_tokenizer_token_bytes(e->tok, token, &len);
        if (b) fwrite(b, 1, len, stdout);
    } else {
        printf("%d ", token);
    }
    fflush(stdout);
}

/* the options that take a value */
static const char *const VALUE_OPTS[] = {
    "--checkpoint", "--prompt", "--tokens", "--temperature", "--top-k", "--seed", "--tokenizer",
    "--device", NULL};

typedef struct sample_args {
    const char *checkpoint, *prompt, *tokenizer, *device;
    int tokens;
    vkt_sample_opts o;
} sample_args;

static int parse(int argc, char **argv, sample_args *a) {
    const char *cmd = "sample";
    *a = (sample_args){.device = "auto", .tokens = 256, .o = {0.8f, 200, 1337}};
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i], *v = NULL;
        int rc = 0;
        double t;
        if (!strcmp(k, "--help") || !strcmp(k, "-h")) {
            fputs(USAGE, stdout);
            return -1;
        }
        if (!cli_one_of(k, VALUE_OPTS)) return cli_usage(cmd, "unknown argument '%s'", k);
        if (!(v = cli_value(cmd, argc, argv, &i))) return 2;
        if (!strcmp(k, "--checkpoint")) a->checkpoint = v;
        else if (!strcmp(k, "--prompt")) a->prompt = v;
        else if (!strcmp(k, "--tokenizer")) a->tokenizer = v;
        else if (!strcmp(k, "--device")) a->device = v;
        else if (!strcmp(k, "--tokens")) rc = cli_int(cmd, k, v, 1, 1000000, &a->tokens);
        else if (!strcmp(k, "--top-k")) rc = cli_int(cmd, k, v, 0, 65536, &a->o.top_k);
        else if (!strcmp(k, "--seed")) rc = cli_u64(cmd, k, v, &a->o.seed);
        else if (!(rc = cli_double(cmd, k, v, 0, 100, &t))) a->o.temperature = (float)t;
        if (rc) return rc;
    }
    if (!a->checkpoint) return cli_usage(cmd, "--checkpoint DIR|FILE is required");
    return 0;
}

#define GPT2_VOCAB 50257
#define GPT2_EOT 50256 /* GPT-2's <|endoftext|> */

/* The prompt as token ids (*n of them) into a buffer with room for extra more. */
static int32_t *prompt_ids(const sample_args *a, const vkt_tokenizer *tok, int V, int extra,
                           int *n, char *err, size_t errlen) {
    const char *text = a->prompt ? a->prompt : "\n";
    size_t len = strlen(text);
    int32_t *ids = malloc((len + 1 + (size_t)extra) * sizeof *ids);
    if (!ids) {
        snprintf(err, errlen, "out of host memory for %d tokens", extra);
        return NULL;
    }
    if (a->prompt && !a->prompt[0]) {
        /* generation needs at least one token of context: an empty prompt is the start of a
         * document, which only GPT-2's tokens (no tokenizer of ours: llm.c's, or none) say
         * with a token; vktrain's byte and bpe tokenizers have no end-of-text token */
        if (V != GPT2_VOCAB || (tok && vkt_tokenizer_can_encode(tok))) {
            snprintf(err, errlen,
                     "--prompt '' is empty and %s%s has no end-of-text token to start from. "
                     "HINT: give a non-empty --prompt, or leave --prompt out to start from a "
                     "newline",
                     tok ? "the tokenizer " : "this model's vocabulary",
                     tok ? vkt_tokenizer_kind_name(tok) : "");
            free(ids);
            return NULL;
        }
        ids[0] = GPT2_EOT;
        *n = 1;
        return ids;
    }
    if (tok && vkt_tokenizer_can_encode(tok)) {
        uint16_t *u = malloc((len + 1) * sizeof *u);
        if (!u) {
            snprintf(err, errlen, "out of host memory encoding the prompt");
            free(ids);
            return NULL;
        }
        size_t k = vkt_tokenizer_encode(tok, (const unsigned char *)text, len, u);
        for (size_t i = 0; i < k; i++) ids[i] = u[i];
        free(u);
        *n = (int)k; /* >= 1: every byte of a non-empty text becomes part of a token */
    } else if (a->prompt) {
        snprintf(err, errlen,
                 "--prompt needs a tokenizer that can encode text; %s. HINT: give --tokenizer "
                 "with a vktrain tokenizer.bin, or sample without --prompt",
                 tok ? "llm.c's tokenizer file only decodes" : "the model has none");
        free(ids);
        return NULL;
    } else {
        ids[0] = V == GPT2_VOCAB ? GPT2_EOT : 0; /* <|endoftext|> starts a fresh document */
        *n = 1;
    }
    for (int i = 0; i < *n; i++)
        if (ids[i] >= V) {
            snprintf(err, errlen, "the prompt encodes to token %d, beyond the model's vocab %d",
                     ids[i], V);
            free(ids);
            return NULL;
        }
    return ids;
}

int vkt_cmd_sample(int argc, char **argv) {
    sample_args a;
    int rc = parse(argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    char err[2048] = "";
    cli_model cm;
    rc = cli_model_open(&cm, a.checkpoint, a.device, 1, 0, err, sizeof err);
    vkt_tokenizer *tok = NULL;
    if (!rc && a.tokenizer && !(tok = vkt_tokenizer_load(a.tokenizer, err, sizeof err))) rc = 2;
    if (!rc && tok && cm.ck.tokenizer &&
        vkt_tokenizer_fingerprint(tok) != vkt_tokenizer_fingerprint(cm.ck.tokenizer))
        fprintf(stderr, "vktrain sample: warning: %s differs from the tokenizer saved in %s\n",
                a.tokenizer, a.checkpoint);
    if (!rc && !tok) tok = cm.ck.tokenizer;
    int V = cm.ck.shape.vocab_size;
    if (!rc && tok && vkt_tokenizer_vocab_size(tok) > V) {
        snprintf(err, sizeof err,
                 "%s has %d tokens but the model only %d: it is not the model's tokenizer",
                 a.tokenizer ? a.tokenizer : "the checkpoint's tokenizer",
                 vkt_tokenizer_vocab_size(tok), V);
        rc = 2;
    }
    int n = 0;
    int32_t *ids = rc ? NULL : prompt_ids(&a, tok, V, a.tokens, &n, err, sizeof err);
    if (!rc && !ids) rc = strstr(err, "out of host memory") ? 1 : 2;
    if (!rc) {
        if (a.prompt && tok) fputs(a.prompt, stdout);
        emitter em = {tok, cm.be};
        vkt_generate(cm.m, ids, n, a.tokens, &a.o, emit, &em);
        printf("\n");
        if (vkt_backend_error(cm.be, err, sizeof err)) rc = 1;
    }
    free(ids);
    if (a.tokenizer) vkt_tokenizer_free(tok);
    cli_model_close(&cm);
    return rc ? cli_fail("sample", rc, err) : 0;
}
