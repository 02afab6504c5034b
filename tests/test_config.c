/* Config loading: defaults, every class of bad input (each must give exit status 2 and one
 * message naming source, key and value), --set overrides, path resolution, print round trip. */
#define _XOPEN_SOURCE 700 /* mkdtemp, realpath, setenv, chdir */

#include "vktrain/config.h"
#include "vkt_test.h"

#include <limits.h>
#include <stdint.h>
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

/* Every byte of the message is printable ASCII: nothing raw from a file or an argument. */
static void expect_printable(int line) {
    for (const unsigned char *p = (const unsigned char *)err; *p; p++) {
        if (*p >= 0x20 && *p < 0x7f) continue;
        fprintf(stderr, "FAIL test_config.c:%d: raw byte 0x%02x at %d of the message\n", line,
                *p, (int)(p - (const unsigned char *)err));
        vkt_test_failures++;
        return;
    }
}
#define EXPECT_PRINTABLE() expect_printable(__LINE__)

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

/* Loads a file of raw bytes as the config. */
static int load_bytes(vkt_config *cfg, const void *data, size_t n) {
    write_bytes(ini, data, n);
    err[0] = 0;
    return vkt_config_load(cfg, ini, NULL, 0, err, sizeof err);
}

/* cfg printed, then loaded again: the same struct (path aside) or a failure counted. */
static void expect_round_trip(int line, const vkt_config *cfg, const char *dir) {
    char printed[600];
    snprintf(printed, sizeof printed, "%s/printed.ini", dir);
    FILE *f = fopen(printed, "w");
    if (!f) {
        perror(printed);
        exit(1);
    }
    vkt_config_print(cfg, f);
    fclose(f);
    vkt_config back;
    char e2[2048];
    int rc = vkt_config_load(&back, printed, NULL, 0, e2, sizeof e2);
    if (rc) {
        fprintf(stderr, "FAIL test_config.c:%d: printed config does not load: %s\n", line, e2);
        vkt_test_failures++;
    } else {
        memcpy(back.path, cfg->path, sizeof back.path);
        if (memcmp(&back, cfg, sizeof back)) {
            fprintf(stderr, "FAIL test_config.c:%d: round trip differs: out_dir [%s] -> [%s], "
                    "train [%s] -> [%s]\n", line, cfg->train.out_dir, back.train.out_dir,
                    cfg->data.train, back.data.train);
            vkt_test_failures++;
        }
    }
    unlink(printed);
}
#define EXPECT_ROUND_TRIP(cfg) expect_round_trip(__LINE__, cfg, tmp)

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
    rc = load(&cfg, "[optim]\nwarmup_steps = 2000\n", NULL, 0); /* a warmup never finished */
    CHECK(rc == 0 && cfg.optim.warmup_steps == 2000, "warmup_steps > max_steps: rc %d, %s", rc,
          err);
    rc = load(&cfg, "[train]\nstop_step = 1001\n", NULL, 0);
    EXPECT_ERR(rc, ini, "stop_step = 1001", "max_steps (1000)");
    rc = load(&cfg, "[train]\nstop_step = 500\nmax_steps = 500\n", NULL, 0);
    CHECK(rc == 0 && cfg.train.stop_step == 500, "stop_step == max_steps is fine: %s", err);

    /* Input files. */
    write_file(ini, "[train]\nbatch_size = 2\n");
    rc = vkt_config_load(&cfg, ini, NULL, 0, err, sizeof err);
    EXPECT_ERR(rc, ini, "[data] train", "required");
    rc = load_bytes(&cfg, "[data]\ntrain = foo.txt\n", strlen("[data]\ntrain = foo.txt\n"));
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
    rc = load_bytes(&cfg, "[data]\ntrain = nothing_*.bin\n", strlen("[data]\ntrain = nothing_*.bin\n"));
    EXPECT_ERR(rc, ini, "[data] train = nothing_*.bin", "no file matches");
    rc = load_bytes(&cfg, "[data]\ntrain = d*.txt\n", strlen("[data]\ntrain = d*.txt\n"));
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

    /* --set values: no control characters (a tab aside), valid UTF-8; the message names the
     * key and quotes nothing raw. Before, a newline went into the checkpoint's saved config,
     * which then no longer parsed. */
    {
        const char *bad[] = {"train.out_dir=a\nb", "train.out_dir=run\x1b[31mred",
                             "train.out_dir=x\x7fy", "train.out_dir=c1\xc2\x9b" "2J",
                             "train.out_dir=latin\xe9", "train.out_dir=cr\rhere",
                             "train.batch_size=1\n2", "model.init_from=a\x01"};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            rc = load(&cfg, "", &bad[i], 1);
            EXPECT_ERR(rc, "--set ", "values are printable text");
            EXPECT_PRINTABLE();
        }
        rc = load(&cfg, "", &bad[0], 1);
        EXPECT_ERR(rc, "[train] out_dir", "a control character (\\n)", "--set train.out_dir=a\\nb");
        rc = load(&cfg, "", &bad[4], 1);
        EXPECT_ERR(rc, "[train] out_dir", "not UTF-8 (\\xe9)");
        const char *tab[] = {"train.out_dir=tab\tinside", "train.out_dir=\"  spaced out \""};
        rc = load(&cfg, "", tab, 1);
        CHECK(rc == 0 && !strcmp(cfg.train.out_dir, "tab\tinside"), "a tab is fine: %s", err);
        EXPECT_ROUND_TRIP(&cfg);
        rc = load(&cfg, "", tab + 1, 1);
        CHECK(rc == 0 && !strcmp(cfg.train.out_dir, "  spaced out "), "quoted spaces: [%s] %s",
              cfg.train.out_dir, err);
        EXPECT_ROUND_TRIP(&cfg);
    }

    /* Print -> parse keeps every string a config can hold, and refuses up front what no INI
     * quoting holds (iniparser 4.1 and 4.2 read quotes and backslashes differently). */
    {
        const char *outs[] = {"a;b#c", "it's", "say \"hi\"", "it's \"bare\"", "back\\slash",
                              "\"leading quote", "'single", "semi;\"q\"", "x = y", "données/日本",
                              "[not a section]", "#not a comment", "trailing =", "ends\\in"};
        for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
            char ov[256];
            snprintf(ov, sizeof ov, "train.out_dir=%s", outs[i]);
            const char *o = ov;
            rc = load(&cfg, "", &o, 1);
            CHECK(rc == 0 && !strcmp(cfg.train.out_dir, outs[i]), "out_dir [%s]: got [%s]: %s",
                  outs[i], cfg.train.out_dir, err);
            if (rc == 0) EXPECT_ROUND_TRIP(&cfg);
        }
        const char *never[] = {"train.out_dir=it's \"q\";x", "train.out_dir=back\\slash;x",
                               "train.out_dir=ends in\\", "train.out_dir=' it\'s \"q\"'"};
        for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) {
            rc = load(&cfg, "", &never[i], 1);
            EXPECT_ERR(rc, "[train] out_dir", "no INI value can hold");
        }
        /* a data file whose name needs quoting, resolved and printed */
        char odd[400];
        snprintf(odd, sizeof odd, "%s/we;ird #name's.txt", tmp);
        write_file(odd, "odd\n");
        rc = load(&cfg, "[data]\nval = \"we;ird #name's.txt\"\n", NULL, 0);
        CHECK(rc == 0 && strstr(cfg.data.val, "we;ird #name's.txt"), "odd val [%s]: %s",
              cfg.data.val, err);
        if (rc == 0) EXPECT_ROUND_TRIP(&cfg);
        unlink(odd);
    }

    /* Long lines: iniparser reads at most 1022 characters a line; we say so, naming the line
     * and the key (before: "input line too long" without the key). */
    {
        static char body[4096];
        char pad[1100];
        memset(pad, 'x', sizeof pad);
        /* a comment of exactly 1022 characters still loads; 1023 do not */
        snprintf(body, sizeof body, "#%.*s\n", 1021, pad);
        rc = load(&cfg, body, NULL, 0);
        CHECK(rc == 0, "a 1022-character line: %s", err);
        snprintf(body, sizeof body, "#%.*s\n", 1022, pad);
        rc = load(&cfg, body, NULL, 0);
        EXPECT_ERR(rc, ini, "line 3", "a comment", "1023 characters", "at most 1022");
        /* the last line without a newline: the same limit */
        snprintf(body, sizeof body, "[data]\ntrain = data.txt\n#%.*s", 1021, pad);
        rc = load_bytes(&cfg, body, strlen(body));
        CHECK(rc == 0, "a 1022-character last line: %s", err);
        snprintf(body, sizeof body, "[data]\ntrain = data.txt\n[model]\ninit_from = /%.*s\n",
                 1100, pad);
        rc = load_bytes(&cfg, body, strlen(body));
        EXPECT_ERR(rc, ini, "line 4", "[model] init_from", "1113 characters", "at most 1022",
                   "HINT");
        /* continued lines share the one buffer */
        snprintf(body, sizeof body, "[data]\ntrain = data.txt\nval = %.*s\\\n%.*s\n", 600, pad,
                 600, pad);
        rc = load_bytes(&cfg, body, strlen(body));
        EXPECT_ERR(rc, ini, "line 4", "[data] val", "continued from line 3");
    }

    /* A path that resolves beyond one INI line would save a checkpoint config that no longer
     * parses: refused at load, naming the key. */
    {
        char deep[1400];
        snprintf(deep, sizeof deep, "%s", tmp);
        char seg[101];
        memset(seg, 'd', 100);
        seg[100] = 0;
        /* 1005 + "/data.txt": fits VKT_PATH_MAX, not a line of "train = \"...\"" */
        while (strlen(deep) < 1005) {
            size_t room = 1005 - strlen(deep) - 1;
            size_t at = strlen(deep), take = room < 100 ? room : 100;
            deep[at] = '/';
            memcpy(deep + at + 1, seg, take);
            deep[at + 1 + take] = 0;
            mkdir(deep, 0700);
        }
        char deep_ini[1500], deep_data[1500];
        snprintf(deep_ini, sizeof deep_ini, "%s/c.ini", deep);
        snprintf(deep_data, sizeof deep_data, "%s/data.txt", deep);
        write_file(deep_data, "deep\n");
        write_file(deep_ini, "[data]\ntrain = data.txt\n");
        /* from inside it: the config's own name stays short */
        if (chdir(deep)) return 1;
        rc = vkt_config_load(&cfg, "c.ini", NULL, 0, err, sizeof err);
        if (chdir(cwd_dir)) return 1;
        EXPECT_ERR(rc, "[data] train = data.txt", "resolves to a path", "at most 1022", "HINT");
        unlink(deep_ini);
        unlink(deep_data);
        while (strlen(deep) > strlen(tmp)) {
            rmdir(deep);
            *strrchr(deep, '/') = 0;
        }
    }

    /* A key set twice: refused naming both lines, also across two [same] headers and in
     * another case (iniparser kept the last value silently). */
    rc = load(&cfg, "[train]\nbatch_size = 2\nbatch_size = 3\n", NULL, 0);
    EXPECT_ERR(rc, ini, "[train] batch_size is set twice", "line 4", "line 5");
    rc = load(&cfg, "[train]\nbatch_size = 2\n[optim]\nlr = 1\n[Train]\n  Batch_Size=3\n",
              NULL, 0);
    EXPECT_ERR(rc, ini, "[train] batch_size is set twice", "line 4", "line 8");
    rc = load(&cfg, "[data]\ntrain = data.txt\n", NULL, 0);
    EXPECT_ERR(rc, ini, "[data] train is set twice", "line 2", "line 4");
    rc = load(&cfg, "[train]\nbatch_size = 2\n[optim]\nbatch_size = 3\n", NULL, 0);
    EXPECT_ERR(rc, ini, "unknown key [optim] batch_size"); /* another section: not a duplicate */

    /* Binary garbage: "not a text INI file", no raw byte echoed. */
    {
        unsigned char junk[4096];
        uint32_t x = 12345;
        for (size_t i = 0; i < sizeof junk; i++) {
            x = x * 1103515245u + 12345u;
            junk[i] = (unsigned char)(x >> 16);
        }
        rc = load_bytes(&cfg, junk, sizeof junk);
        EXPECT_ERR(rc, ini, "not a text INI file");
        EXPECT_PRINTABLE();
        /* random bytes without NUL (only invalid UTF-8 says it is binary) */
        for (size_t i = 0; i < sizeof junk; i++) junk[i] |= 0x80;
        rc = load_bytes(&cfg, junk, sizeof junk);
        EXPECT_ERR(rc, ini, "not a text INI file", "not UTF-8");
        EXPECT_PRINTABLE();
        static const unsigned char elf[] = {0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0,
                                            0, 3, 0, '>', 0, 1, 0, 0, 0, '\n', 0x1b, '[', '2',
                                            'J'};
        rc = load_bytes(&cfg, elf, sizeof elf);
        EXPECT_ERR(rc, ini, "not a text INI file", "NUL byte", "line 1, byte 8");
        EXPECT_PRINTABLE();
        static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0,
                                            13,   'I', 'H', 'D', 'R', 0, 0, 1, 0};
        rc = load_bytes(&cfg, png, sizeof png);
        EXPECT_ERR(rc, ini, "not a text INI file");
        EXPECT_PRINTABLE();
        /* text with an escape sequence: named, escaped */
        static const char esc[] = "[data]\ntrain = da\x1b]0;pwned\x07ta.txt\n";
        rc = load_bytes(&cfg, esc, strlen(esc));
        EXPECT_ERR(rc, ini, "line 2", "a control character (\\x1b)", "printable text only");
        EXPECT_PRINTABLE();
        static const char bom[] = "\xef\xbb\xbf[data]\ntrain = data.txt\n";
        rc = load_bytes(&cfg, bom, strlen(bom));
        EXPECT_ERR(rc, ini, "byte-order mark");
        /* CRLF line ends are text */
        static const char crlf[] = "[data]\r\ntrain = data.txt\r\n[train]\r\nbatch_size = 3\r\n";
        rc = load_bytes(&cfg, crlf, strlen(crlf));
        CHECK(rc == 0 && cfg.train.batch_size == 3, "CRLF file: %s", err);
        /* a syntax error quoting UTF-8 text keeps it; an unknown key with an accent too */
        rc = load(&cfg, "[train]\nbätch_size = 3\n", NULL, 0);
        EXPECT_ERR(rc, ini, "unknown key [train] bätch_size");
        /* a data file given as the config: too large, said so */
        static char big[(1 << 20) + 16];
        memset(big, 'a', sizeof big);
        for (size_t i = 80; i < sizeof big; i += 81) big[i] = '\n';
        rc = load_bytes(&cfg, big, sizeof big);
        EXPECT_ERR(rc, ini, "too large for a config file");
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
        CHECK(rows == 46 && has_batch && has_path_rule, "reference: %d rows", rows);
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
