/* Config loading: defaults, every class of bad input (each must give exit status 2 and one
 * message naming source, key and value), --set overrides, path resolution, print round trip. */
#define _XOPEN_SOURCE 700 /* mkdtemp, realpath, setenv, chdir */

#include "vktrain/config.h"
#include "vkt_test.h"

#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp[256];      /* temp root; holds data.txt */
static char tmp_real[PATH_MAX];
static char ini[300];      /* tmp/x.ini, rewritten by each case */
static char err[2048];

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

/* Writes body (after a [data] train line naming an existing file) to x.ini and loads it. */
static int load(vkt_config *cfg, const char *body, const char *const *ov, int n) {
    char text[4096];
    snprintf(text, sizeof text, "[data]\ntrain = data.txt\n%s", body);
    write_file(ini, text);
    err[0] = 0;
    return vkt_config_load(cfg, ini, ov, n, err, sizeof err);
}

/* rc must be 2 and err must contain every string given (NULL-terminated). */
static void expect_err(int line, int rc, ...) {
    if (rc != 2) {
        fprintf(stderr, "FAIL test_config.c:%d: rc = %d, want 2 (err: %s)\n", line, rc, err);
        vkt_test_failures++;
        return;
    }
    va_list ap;
    va_start(ap, rc);
    for (const char *s; (s = va_arg(ap, const char *));) {
        if (!strstr(err, s)) {
            fprintf(stderr, "FAIL test_config.c:%d: message lacks \"%s\": %s\n", line, s, err);
            vkt_test_failures++;
        }
    }
    va_end(ap);
    if (strchr(err, '\n')) {
        fprintf(stderr, "FAIL test_config.c:%d: message spans lines: %s\n", line, err);
        vkt_test_failures++;
    }
}
#define EXPECT_ERR(rc, ...) expect_err(__LINE__, rc, __VA_ARGS__, (const char *)NULL)

int main(void) {
    snprintf(tmp, sizeof tmp, "/tmp/vkt_test_config_XXXXXX");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    if (!realpath(tmp, tmp_real)) return 1;
    snprintf(ini, sizeof ini, "%s/x.ini", tmp);
    char data[300], sub[300], sub_ini[320], sub_data[320], cwd_dir[300], cwd_data[320];
    snprintf(data, sizeof data, "%s/data.txt", tmp);
    write_file(data, "hello world\n");
    snprintf(sub, sizeof sub, "%s/sub", tmp);
    snprintf(cwd_dir, sizeof cwd_dir, "%s/cwd", tmp);
    mkdir(sub, 0700);
    mkdir(cwd_dir, 0700);
    snprintf(sub_ini, sizeof sub_ini, "%s/sub.ini", sub);
    snprintf(sub_data, sizeof sub_data, "%s/sub.txt", sub);
    snprintf(cwd_data, sizeof cwd_data, "%s/local.txt", cwd_dir);
    write_file(sub_data, "sub\n");
    write_file(cwd_data, "local\n");
    /* Work from elsewhere, so that resolving against the config's dir is really tested. */
    if (chdir(cwd_dir)) return 1;
    setenv("XDG_CACHE_HOME", "/xdg/cache", 1);

    vkt_config cfg, cfg2;
    char want[PATH_MAX + 32];
    int rc;

    /* Defaults. */
    vkt_config_defaults(&cfg);
    CHECK(cfg.model.n_layer == 4 && cfg.model.n_head == 4 && cfg.model.n_embd == 128 &&
              cfg.model.vocab_size == 256 && cfg.model.block_size == 128,
          "model defaults");
    CHECK(cfg.train.batch_size == 8 && cfg.train.seq_len == 128 && cfg.train.max_steps == 1000 &&
              cfg.train.seed == 1337 && cfg.train.resume == 0 && cfg.train.log_interval == 1 &&
              !strcmp(cfg.train.out_dir, "out") && !strcmp(cfg.train.precision, "fp32"),
          "train defaults");
    CHECK(cfg.optim.lr == 1e-3 && cfg.optim.min_lr == 1e-4 && cfg.optim.eps == 1e-8 &&
              cfg.optim.beta2 == 0.95 && cfg.optim.schedule == VKT_SCHED_COSINE &&
              !strcmp(cfg.optim.name, "adamw") && !strcmp(cfg.backend.device, "auto") &&
              !strcmp(cfg.data.tokenizer, "byte") && cfg.data.val_fraction == 0.1,
          "optim/backend/data defaults");

    /* A minimal file loads; train resolves against the config dir; cache_dir from XDG. */
    rc = load(&cfg, "", NULL, 0);
    snprintf(want, sizeof want, "%s/data.txt", tmp_real);
    CHECK(rc == 0, "minimal config: %s", err);
    CHECK(!strcmp(cfg.data.train, want), "train resolved to %s, want %s", cfg.data.train, want);
    CHECK(!strcmp(cfg.path, ini), "cfg.path = %s", cfg.path);
    CHECK(!strcmp(cfg.backend.cache_dir, "/xdg/cache/vktrain"), "cache_dir = %s",
          cfg.backend.cache_dir);
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", "/home/someone", 1);
    rc = load(&cfg, "", NULL, 0);
    CHECK(rc == 0 && !strcmp(cfg.backend.cache_dir, "/home/someone/.cache/vktrain"),
          "HOME cache_dir = %s (%s)", cfg.backend.cache_dir, err);

    /* File problems. */
    char missing[320];
    snprintf(missing, sizeof missing, "%s/nope.ini", tmp);
    rc = vkt_config_load(&cfg, missing, NULL, 0, err, sizeof err);
    EXPECT_ERR(rc, missing, "cannot read the file", "No such file");
    rc = vkt_config_load(&cfg, tmp, NULL, 0, err, sizeof err);
    EXPECT_ERR(rc, tmp, "cannot read the file");
    rc = load(&cfg, "[train]\nbatch_size\n", NULL, 0);
    EXPECT_ERR(rc, ini, "line 4", "syntax error", "batch_size");
    rc = load(&cfg, "[train\n", NULL, 0);
    EXPECT_ERR(rc, ini, "syntax error");

    /* Unknown names. */
    rc = load(&cfg, "[trian]\nbatch_size = 4\n", NULL, 0);
    EXPECT_ERR(rc, ini, "unknown section [trian]",
               "known sections: model, data, train, optim, backend");
    rc = load(&cfg, "[train]\nbatchsize = 4\n", NULL, 0);
    EXPECT_ERR(rc, ini, "unknown key [train] batchsize", "known keys in [train]: batch_size, ");
    snprintf(want, sizeof want, "top = 1\n[data]\ntrain = data.txt\n");
    write_file(ini, want);
    rc = vkt_config_load(&cfg, ini, NULL, 0, err, sizeof err);
    EXPECT_ERR(rc, ini, "top", "outside any section");

    /* Malformed and out-of-range values. */
    rc = load(&cfg, "[train]\nbatch_size = 0\n", NULL, 0);
    snprintf(want, sizeof want, "%s: [train] batch_size = 0: must be an integer >= 1", ini);
    CHECK(rc == 2 && !strcmp(err, want), "got \"%s\"\nwant \"%s\"", err, want);
    rc = load(&cfg, "[train]\nbatch_size = 12abc\n", NULL, 0);
    EXPECT_ERR(rc, ini, "batch_size = 12abc", "integer");
    rc = load(&cfg, "[train]\nbatch_size =\n", NULL, 0);
    EXPECT_ERR(rc, ini, "batch_size = \"\"", "integer");
    rc = load(&cfg, "[model]\nn_layer = 3.5\n", NULL, 0);
    EXPECT_ERR(rc, ini, "n_layer = 3.5", "integer");
    rc = load(&cfg, "[model]\nn_layer = 99999999999\n", NULL, 0);
    EXPECT_ERR(rc, ini, "n_layer = 99999999999", "2147483647");
    rc = load(&cfg, "[optim]\nlr = 1e400\n", NULL, 0);
    EXPECT_ERR(rc, ini, "[optim] lr = 1e400", "number >= 0");
    rc = load(&cfg, "[optim]\nlr = nan\n", NULL, 0);
    EXPECT_ERR(rc, ini, "lr = nan");
    rc = load(&cfg, "[model]\nvocab_size = 70000\n", NULL, 0);
    EXPECT_ERR(rc, ini, "vocab_size = 70000", "from 1 to 65536");
    rc = load(&cfg, "[optim]\nbeta1 = 1\n", NULL, 0);
    EXPECT_ERR(rc, ini, "beta1 = 1", ">= 0 and < 1");
    rc = load(&cfg, "[optim]\neps = 0\n", NULL, 0);
    EXPECT_ERR(rc, ini, "eps = 0", "> 0");
    rc = load(&cfg, "[train]\nseed = -1\n", NULL, 0);
    EXPECT_ERR(rc, ini, "seed = -1");
    rc = load(&cfg, "[data]\nval_fraction = 0.6\n", NULL, 0);
    EXPECT_ERR(rc, ini, "val_fraction = 0.6", "from 0 to 0.5");

    /* Enums and bools. */
    rc = load(&cfg, "[optim]\nschedule = cos\n", NULL, 0);
    EXPECT_ERR(rc, ini, "schedule = cos", "cosine, linear, wsd, constant");
    rc = load(&cfg, "[train]\nprecision = FP16\n", NULL, 0);
    CHECK(rc == 0 && !strcmp(cfg.train.precision, "fp16") && cfg.train.loss_scale_init == 65536 &&
          cfg.train.loss_scale_window == 1000, "precision fp16 and loss-scale defaults (%s)", err);
    rc = load(&cfg, "[train]\nprecision = fp64\n", NULL, 0);
    EXPECT_ERR(rc, ini, "precision = fp64", "fp32, fp16");
    rc = load(&cfg, "[train]\nloss_scale_init = 0.5\n", NULL, 0);
    EXPECT_ERR(rc, ini, "loss_scale_init = 0.5", "from 1 to");
    rc = load(&cfg, "[train]\nloss_scale_window = 0\n", NULL, 0);
    EXPECT_ERR(rc, ini, "loss_scale_window = 0", ">= 1");
    rc = load(&cfg, "[data]\ntokenizer = gpt2\n", NULL, 0);
    EXPECT_ERR(rc, ini, "tokenizer = gpt2", "byte");
    rc = load(&cfg, "[train]\nresume = maybe\n", NULL, 0);
    EXPECT_ERR(rc, ini, "resume = maybe", "true or false");
    rc = load(&cfg, "[backend]\ndevice = gpu\n", NULL, 0);
    EXPECT_ERR(rc, ini, "device = gpu", "cpu:0");
    rc = load(&cfg, "[backend]\ndevice = vulkan:\n", NULL, 0);
    EXPECT_ERR(rc, ini, "device = vulkan:");
    rc = load(&cfg, "[backend]\ndevice = Vulkan:1\n[train]\nresume = YES\n", NULL, 0);
    CHECK(rc == 0 && !strcmp(cfg.backend.device, "vulkan:1") && cfg.train.resume == 1,
          "device/bool normalised: %s (%s)", cfg.backend.device, err);

    /* [backend] matmul */
    rc = load(&cfg, "", NULL, 0);
    CHECK(rc == 0 && !strcmp(cfg.backend.matmul, "auto"), "matmul default: %s", cfg.backend.matmul);
    rc = load(&cfg, "[backend]\nmatmul = CoopMat\n[train]\nprecision = fp16\n", NULL, 0);
    CHECK(rc == 0 && !strcmp(cfg.backend.matmul, "coopmat"), "matmul coopmat: %s (%s)",
          cfg.backend.matmul, err);
    rc = load(&cfg, "[backend]\nmatmul = fp16\n[train]\nprecision = fp16\n", NULL, 0);
    CHECK(rc == 0 && !strcmp(cfg.backend.matmul, "fp16"), "matmul fp16: %s (%s)",
          cfg.backend.matmul, err);
    rc = load(&cfg, "[backend]\nmatmul = coopmat\n", NULL, 0);
    EXPECT_ERR(rc, ini, "matmul = coopmat", "precision = fp16");
    rc = load(&cfg, "[backend]\nmatmul = fp8\n", NULL, 0);
    EXPECT_ERR(rc, ini, "matmul = fp8", "auto, fp32, fp32_direct, fp16, fp16_direct, coopmat");

    /* Cross-field checks. */
    rc = load(&cfg, "[model]\nn_embd = 100\nn_head = 3\n", NULL, 0);
    snprintf(want, sizeof want, "%s: [model] n_embd = 100: must be divisible by n_head (3)", ini);
    CHECK(rc == 2 && !strcmp(err, want), "got \"%s\"\nwant \"%s\"", err, want);
    rc = load(&cfg, "[train]\nseq_len = 256\n", NULL, 0);
    EXPECT_ERR(rc, ini, "seq_len = 256", "block_size (128)");
    rc = load(&cfg, "[optim]\nmin_lr = 0.01\n", NULL, 0);
    EXPECT_ERR(rc, ini, "min_lr = 0.01", "lr (0.001)");
    rc = load(&cfg, "[optim]\nwarmup_steps = 2000\n", NULL, 0);
    EXPECT_ERR(rc, ini, "warmup_steps = 2000", "max_steps (1000)");
    rc = load(&cfg, "[train]\nstop_step = 1001\n", NULL, 0);
    EXPECT_ERR(rc, ini, "stop_step = 1001", "max_steps (1000)");
    rc = load(&cfg, "[train]\nstop_step = 500\nmax_steps = 500\n", NULL, 0);
    CHECK(rc == 0 && cfg.train.stop_step == 500, "stop_step == max_steps is fine: %s", err);

    /* Input files. */
    write_file(ini, "[train]\nbatch_size = 2\n");
    rc = vkt_config_load(&cfg, ini, NULL, 0, err, sizeof err);
    EXPECT_ERR(rc, ini, "[data] train", "required");
    rc = load(&cfg, "[data]\ntrain = foo.txt\n", NULL, 0);
    snprintf(want, sizeof want, "resolved to %s/foo.txt", tmp_real);
    EXPECT_ERR(rc, ini, "[data] train = foo.txt", "file not found", want);
    rc = load(&cfg, "[data]\nval = v.txt\n", NULL, 0);
    EXPECT_ERR(rc, ini, "[data] val = v.txt", "file not found");
    rc = load(&cfg, "[model]\ninit_from = ck.bin\n", NULL, 0);
    EXPECT_ERR(rc, ini, "[model] init_from = ck.bin", "file not found");
    rc = load(&cfg, "[model]\ninit_from = sub\n", NULL, 0);
    EXPECT_ERR(rc, ini, "[model] init_from = sub", "directory");
    /* data keys take a directory (prepared data) or a glob of shards that matches something */
    rc = load(&cfg, "[data]\nval = sub\n", NULL, 0);
    CHECK(rc == 0, "a directory as [data] val: %s", err);
    rc = load(&cfg, "[data]\ntrain = nothing_*.bin\n", NULL, 0);
    EXPECT_ERR(rc, ini, "[data] train = nothing_*.bin", "no file matches");
    rc = load(&cfg, "[data]\ntrain = d*.txt\n", NULL, 0);
    snprintf(want, sizeof want, "%s/d*.txt", tmp_real);
    CHECK(rc == 0 && !strcmp(cfg.data.train, want), "glob kept as %s (want %s): %s",
          cfg.data.train, want, err);
    /* A config in a subdirectory finds its data beside it, wherever we run from. */
    write_file(sub_ini, "[data]\ntrain = ./sub.txt\nval = ../data.txt\n");
    rc = vkt_config_load(&cfg, sub_ini, NULL, 0, err, sizeof err);
    snprintf(want, sizeof want, "%s/sub/sub.txt", tmp_real);
    CHECK(rc == 0 && !strcmp(cfg.data.train, want), "sub train = %s (%s)", cfg.data.train, err);
    snprintf(want, sizeof want, "%s/data.txt", tmp_real);
    CHECK(rc == 0 && !strcmp(cfg.data.val, want), "sub val = %s", cfg.data.val);

    /* Overrides: win over the file, are validated, name themselves. */
    {
        const char *ov[] = {"train.batch_size=32", "optim.schedule = wsd", "model.n_layer=2",
                            "train.batch_size=16"};
        rc = load(&cfg, "[train]\nbatch_size = 4\n[model]\nn_layer = 6\n", ov, 4);
        CHECK(rc == 0 && cfg.train.batch_size == 16 && cfg.optim.schedule == VKT_SCHED_WSD &&
                  cfg.model.n_layer == 2,
              "overrides win: batch %d sched %d layers %d (%s)", cfg.train.batch_size,
              (int)cfg.optim.schedule, cfg.model.n_layer, err);
    }
    {
        const char *ov[] = {"optim.lr=-1"};
        rc = load(&cfg, "", ov, 1);
        CHECK(rc == 2 && !strcmp(err, "--set optim.lr=-1: [optim] lr = -1: must be a number >= 0"),
              "got \"%s\"", err);
    }
    {
        const char *ov[] = {"foo"};
        rc = load(&cfg, "", ov, 1);
        EXPECT_ERR(rc, "--set foo", "malformed override");
        const char *ov2[] = {"train.batch_size"};
        rc = load(&cfg, "", ov2, 1);
        EXPECT_ERR(rc, "--set train.batch_size", "malformed override");
        const char *ov3[] = {"train.batchsize=3"};
        rc = load(&cfg, "", ov3, 1);
        EXPECT_ERR(rc, "--set train.batchsize=3", "unknown key [train] batchsize");
        const char *ov4[] = {"trian.batch_size=3"};
        rc = load(&cfg, "", ov4, 1);
        EXPECT_ERR(rc, "--set trian.batch_size=3", "unknown section [trian]");
        /* The file sets n_embd, --set breaks it through n_head: the message names both. */
        const char *ov5[] = {"model.n_head=3"};
        rc = load(&cfg, "[model]\nn_embd = 64\n", ov5, 1);
        EXPECT_ERR(rc, ini, "n_embd = 64", "n_head (3)", "--set model.n_head=3");
    }
    {
        /* --set paths resolve against the current directory; no file at all is fine. */
        const char *ov[] = {"data.train=local.txt", "train.max_steps=10"};
        rc = vkt_config_load(&cfg, NULL, ov, 2, err, sizeof err);
        char cwd_real[PATH_MAX];
        if (!realpath(cwd_data, cwd_real)) cwd_real[0] = 0;
        CHECK(rc == 0 && !strcmp(cfg.data.train, cwd_real) && cfg.train.max_steps == 10 &&
                  cfg.path[0] == 0,
              "NULL path + --set: train = %s (%s)", cfg.data.train, err);
        rc = vkt_config_load(&cfg, NULL, NULL, 0, err, sizeof err);
        EXPECT_ERR(rc, "[data] train", "required");
    }

    /* Print -> load gives the same struct (path fields aside, which name the file). */
    {
        const char *ov[] = {"optim.lr=3e-4", "optim.min_lr=0.00003", "optim.schedule=linear",
                            "train.seed=18446744073709551615", "train.resume=yes",
                            "train.out_dir=runs/a b;c#d", "backend.device=cpu:0",
                            "data.val_fraction=0.05", "optim.beta2=0.999"};
        rc = load(&cfg, "[model]\nn_embd = 96\nn_head = 6\n", ov, 9);
        CHECK(rc == 0, "round-trip source loads: %s", err);
        char printed[320];
        snprintf(printed, sizeof printed, "%s/printed.ini", tmp);
        FILE *f = fopen(printed, "w");
        vkt_config_print(&cfg, f);
        fclose(f);
        rc = vkt_config_load(&cfg2, printed, NULL, 0, err, sizeof err);
        CHECK(rc == 0, "printed config loads: %s", err);
        memcpy(cfg2.path, cfg.path, sizeof cfg.path);
        CHECK(memcmp(&cfg, &cfg2, sizeof cfg) == 0, "print/load round trip differs");
        CHECK(!strcmp(cfg2.train.out_dir, "runs/a b;c#d") && cfg2.optim.lr == 3e-4 &&
                  cfg2.train.seed == 18446744073709551615ULL,
              "round trip values: out_dir %s", cfg2.train.out_dir);
        unlink(printed);
    }

    /* Reference: one row per key. */
    {
        char ref[320], line[1024];
        snprintf(ref, sizeof ref, "%s/ref.md", tmp);
        FILE *f = fopen(ref, "w+");
        vkt_config_print_reference(f);
        rewind(f);
        int rows = 0, has_batch = 0, has_path_rule = 0;
        while (fgets(line, sizeof line, f)) {
            rows += line[0] == '|';
            has_batch |= strstr(line, "| train | batch_size | `8` |") != NULL;
            has_path_rule |= strstr(line, "config file's directory") != NULL;
        }
        fclose(f);
        unlink(ref);
        CHECK(rows == 41 && has_batch && has_path_rule, "reference: %d rows", rows);
    }

    unlink(ini);
    unlink(data);
    unlink(sub_ini);
    unlink(sub_data);
    unlink(cwd_data);
    rmdir(sub);
    rmdir(cwd_dir);
    rmdir(tmp);
    return vkt_test_finish("test_config");
}
