/* vktrain export: write a model in llm.c's format (for llm.c, or to share weights). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char USAGE[] =
    "usage: vktrain export --format llmc --checkpoint DIR|FILE --out FILE.bin\n"
    "\n"
    "Writes the model of a run's out_dir (or checkpoint file) as an llm.c model file\n"
    "(version 3, fp32), which llm.c loads and vktrain takes as [model] init_from or in eval.\n";

int vkt_cmd_export(int argc, char **argv) {
    const char *cmd = "export", *format = NULL, *ckpt = NULL, *out = NULL;
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i], *v;
        if (!strcmp(k, "--help") || !strcmp(k, "-h")) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (strcmp(k, "--format") && strcmp(k, "--checkpoint") && strcmp(k, "--out"))
            return cli_usage(cmd, "unknown argument '%s'", k);
        if (!(v = cli_value(cmd, argc, argv, &i))) return 2;
        if (!strcmp(k, "--format")) format = v;
        else if (!strcmp(k, "--checkpoint")) ckpt = v;
        else out = v;
    }
    if (!format || strcmp(format, "llmc"))
        return cli_usage(cmd, "--format %s: accepted: llmc", format ? format : "(missing)");
    if (!ckpt || !out) return cli_usage(cmd, "--checkpoint and --out are required");
    vkt_checkpoint ck;
    char err[2048];
    int rc = vkt_weights_read(ckpt, &ck, err, sizeof err);
    if (!rc) rc = vkt_llmc_model_write(out, &ck.shape, ck.params, err, sizeof err);
    if (!rc)
        fprintf(stderr, "vktrain export: wrote %s (llm.c model, fp32, %zu parameters)\n", out,
                ck.num_params);
    vkt_checkpoint_free(&ck);
    return rc ? cli_fail(cmd, rc, err) : 0;
}
