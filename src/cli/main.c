/* vktrain's command line: parses arguments and wires the modules together. Exit status:
 * 0 success, 1 runtime or device failure, 2 usage, config or data error, 130 interrupted
 * (after saving a checkpoint). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "vktrain/backend.h"
#include "vktrain/config.h"
#include "vktrain/dist.h"
#include "vktrain/model.h"
#include "vktrain/train.h"

#define MAX_OVERRIDES 256

static const char USAGE[] =
    "usage: vktrain [--device DEV] [--set section.key=value]... [--resume] [--profile] "
    "CONFIG.ini\n"
    "       vktrain --dry-run [--device DEV] [--set section.key=value]... CONFIG.ini\n"
    "       vktrain --list-devices\n"
    "       vktrain --print-config [--device DEV] [--set section.key=value]... CONFIG.ini\n"
    "       vktrain prepare|sample|eval|export ...   (vktrain COMMAND --help for each)\n"
    "       vktrain --help | --version\n"
    "\n"
    "Trains a GPT-2 style model as CONFIG.ini says (see configs/README.md for every key).\n"
    "  --device DEV        device to train on: an index from --list-devices, backend:N\n"
    "                      (cpu:0, vulkan:1, opencl:0) or auto; same as --set backend.device=DEV\n"
    "  --set S.K=V         override key K of section [S]; repeatable; validated like the file\n"
    "  --resume            continue from out_dir/checkpoint.bin (same as --set train.resume=true)\n"
    "  --profile           time every op (on the device: Vulkan timestamps; cpu: host time per\n"
    "                      call) and print a table to stderr at the end: op, calls, total ms,\n"
    "                      ms per step, share of the total\n"
    "  --list-devices      list every device of every compiled backend\n"
    "  --print-config      print the effective config, parameter count and memory estimate\n"
    "  --dry-run           allocate everything the run needs on the device, print the memory\n"
    "                      per buffer class and whether it fits (exit 0 yes, 1 no); no training\n"
    "  --config-reference  print every config key with its default (Markdown table)\n"
    "Options may come before or after CONFIG.ini.\n";

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "vktrain: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nHINT: vktrain --help\n");
    return 2;
}

static void fmt_bytes(char *buf, size_t len, double b) {
    if (b >= 1073741824.0) snprintf(buf, len, "%.1f GiB", b / 1073741824.0);
    else snprintf(buf, len, "%.1f MiB", b / 1048576.0);
}

static int list_devices(void) {
    int n = vkt_device_count();
    printf("%-3s %-10s %-14s %-44s %10s %-5s %-8s %s\n", "#", "device", "vendor", "name",
           "memory", "fp16", "coopmat", "peak fp32");
    for (int i = 0; i < n; i++) {
        vkt_device_info d;
        if (vkt_device_info_get(i, &d)) continue;
        char dev[32], mem[32];
        snprintf(dev, sizeof dev, "%s:%d", d.backend, d.backend_index);
        fmt_bytes(mem, sizeof mem, (double)d.memory_bytes);
        char peak[32] = "unknown"; /* 0: the backend cannot tell (OpenCL hides SIMD width) */
        if (d.peak_flops > 0) snprintf(peak, sizeof peak, "%.0f GFLOP/s", d.peak_flops / 1e9);
        printf("%-3d %-10s %-14.14s %-44.44s %10s %-5s %-8s %s\n", i, dev, d.vendor, d.name, mem,
               d.fp16 ? "yes" : "no", d.coopmat ? "yes" : "no", peak);
        if (d.coopmat_shapes[0]) printf("    cooperative matrix: %s\n", d.coopmat_shapes);
        if (!d.can_train) printf("    cannot train yet: the %s backend's ops are in progress\n", d.backend);
        /* the backend's extra lines (type, driver, heaps, subgroup, ...), indented */
        for (const char *l = d.details; *l;) {
            size_t len = strcspn(l, "\n");
            printf("    %.*s\n", (int)len, l);
            l += len + (l[len] == '\n');
        }
    }
    const char *notes = vkt_device_notes();
    if (notes[0]) printf("%s", notes);
    if (n == 0) {
        printf("no devices found\n");
        return 1;
    }
    return 0;
}

static int print_config(const vkt_config *cfg) {
    vkt_config_print(cfg, stdout);
    vkt_gpt2_shape s = {.max_seq_len = cfg->model.block_size, .vocab_size = cfg->model.vocab_size,
                        .padded_vocab_size = vkt_padded_vocab(cfg->model.vocab_size),
                        .num_layers = cfg->model.n_layer, .num_heads = cfg->model.n_head,
                        .channels = cfg->model.n_embd};
    vkt_param_tensor t[VKT_NUM_PARAM_TENSORS];
    size_t np = vkt_gpt2_param_layout(&s, t);
    char mem[32];
    fmt_bytes(mem, sizeof mem,
              vkt_gpt2_memory_bytes(&s, cfg->train.batch_size, cfg->train.seq_len,
                                    !strcmp(cfg->train.precision, "fp16")));
    printf("\n# parameters: %zu (%.2fM), padded vocab %d\n", np, np / 1e6, s.padded_vocab_size);
    printf("# device memory estimate: %s (params, grads, AdamW moments, activations for "
           "batch %d x %d)\n",
           mem, cfg->train.batch_size, cfg->train.seq_len);
    return 0;
}

/* The first Ctrl-C (or SIGTERM) during training lets it finish its step and checkpoint; a
 * second one kills at once (a checkpoint being written then stays a .tmp file nobody reads).
 * Before the training loop there is nothing to save: the first one ends the process. */
static void on_signal(int sig) {
    if (vkt_train_stop_honoured()) {
        vkt_train_request_stop();
        return;
    }
    static const char msg[] = "\nvktrain: interrupted before training began\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1); /* async-signal-safe, unlike stdio */
    (void)w;
    signal(sig, SIG_DFL); /* SA_RESETHAND did so already; said for clarity */
    raise(sig);
}

static void catch_stop_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART | SA_RESETHAND; /* no EINTR mid-write; the second signal kills */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* The words vktrain takes in place of a config file (train is the default one). */
static const char *const commands[] = {"train", "prepare", "sample", "eval", "export", "bench",
                                       NULL};

/* A positional argument that is meant as a config file: one that exists, or a name that says
 * so (ending in .ini, or a path with a '/'); anything else is a mistyped command. */
static int looks_like_config(const char *a) {
    size_t n = strlen(a);
    struct stat st;
    return stat(a, &st) == 0 || strchr(a, '/') ||
           (n >= 4 && !strcasecmp(a + n - 4, ".ini"));
}

/* "unknown command 'trian' (did you mean 'train'? ...)"; a command given after options is
 * named too, since only the first argument selects one. */
static int unknown_command(const char *a) {
    char esc[256];
    cli_escape(a, esc, sizeof esc);
    if (cli_one_of(a, commands)) {
        fprintf(stderr, "vktrain: '%s' is a command: it must come first (vktrain %s ...)\n"
                "HINT: vktrain %s --help\n", esc, esc, esc);
        return 2;
    }
    const char *guess = cli_nearest(a, commands);
    fprintf(stderr, "vktrain: unknown command '%s' (", esc);
    if (guess) fprintf(stderr, "did you mean '%s'? ", guess);
    fprintf(stderr, "commands: train, prepare, sample, eval, export; or give a CONFIG.ini to "
            "train with)\nHINT: vktrain --help\n");
    return 2;
}

/* Everything after MPI's start: main's return statuses, and the dist handle for training. */
static int run_main(vkt_dist *dist, int argc, char **argv) {
    const char *overrides[MAX_OVERRIDES];
    char owned[MAX_OVERRIDES][320];
    int n_over = 0, want_print = 0, want_profile = 0, want_dry = 0;
    const char *config_path = NULL;

    if (argc >= 2) {
        if (!strcmp(argv[1], "prepare")) return vkt_cmd_prepare(argc, argv);
        if (!strcmp(argv[1], "sample")) return vkt_cmd_sample(argc, argv);
        if (!strcmp(argv[1], "eval")) return vkt_cmd_eval(argc, argv);
        if (!strcmp(argv[1], "export")) return vkt_cmd_export(argc, argv);
        if (!strcmp(argv[1], "bench"))
            return usage_error("'%s' is not available in this version of vktrain yet", argv[1]);
    }
    int first = argc >= 2 && !strcmp(argv[1], "train") ? 2 : 1;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(USAGE, stdout);
            return 0;
        } else if (!strcmp(a, "--version")) {
            printf("vktrain %s\n", VKT_VERSION);
            return 0;
        } else if (!strcmp(a, "--config-reference")) {
            printf("| section | key | default | meaning |\n|---|---|---|---|\n");
            vkt_config_print_reference(stdout);
            return 0;
        } else if (!strcmp(a, "--list-devices")) {
            return list_devices();
        } else if (!strcmp(a, "--print-config")) {
            want_print = 1;
        } else if (!strcmp(a, "--dry-run")) {
            want_dry = 1;
        } else if (!strcmp(a, "--profile")) {
            want_profile = 1;
        } else if (!strcmp(a, "--resume")) {
            if (n_over == MAX_OVERRIDES) return usage_error("too many overrides%s", "");
            overrides[n_over++] = "train.resume=true";
        } else if (!strcmp(a, "--set") || !strcmp(a, "--device")) {
            if (i + 1 >= argc) return usage_error("%s needs a value", a);
            if (n_over == MAX_OVERRIDES) return usage_error("too many overrides%s", "");
            const char *v = argv[++i];
            if (!strcmp(a, "--device")) {
                snprintf(owned[n_over], sizeof owned[n_over], "backend.device=%s", v);
                v = owned[n_over];
            }
            overrides[n_over++] = v;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("unknown option '%s'", a);
        } else if (config_path) {
            return usage_error("more than one config file given ('%s')", a);
        } else if (first == 1 && !looks_like_config(a)) {
            return unknown_command(a);
        } else {
            config_path = a;
        }
    }
    if (!config_path) return usage_error("no config file given%s", "");

    vkt_config cfg;
    char err[2048];
    int rc = vkt_config_load(&cfg, config_path, overrides, n_over, err, sizeof err);
    if (rc) { /* every rank of an MPI run reads the same config: one of them says so */
        if (vkt_dist_rank(dist) == 0) fprintf(stderr, "vktrain: config error: %s\n", err);
        vkt_dist_barrier(dist); /* said before any rank's exit ends the job */
        return rc;
    }
    if (want_print) return print_config(&cfg);

    catch_stop_signals();
    vkt_train_result res;
    vkt_train_opts opts = {.profile = want_profile, .dry_run = want_dry, .dist = dist};
    rc = vkt_train_run_opts(&cfg, &opts, &res, NULL, err, sizeof err);
    if (rc && err[0]) fprintf(stderr, "vktrain: error: %s\n", err); /* else another rank's */
    if (rc) vkt_dist_barrier(dist); /* said before any rank's exit ends the job */
    return rc;
}

/* MPI starts before anything else (under mpirun; otherwise this is one rank without MPI) and
 * is finalized on every return. */
int main(int argc, char **argv) {
    vkt_dist *dist = vkt_dist_init(&argc, &argv);
    int rc = run_main(dist, argc, argv);
    vkt_dist_finalize(dist);
    return rc;
}
