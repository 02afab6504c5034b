/* The run directory and the files written into it: the directory lock (refusal naming the
 * holder, none left stale by SIGKILL), a fresh run moving an earlier run aside, temp names
 * that are this process's own, no temp left by a failed metrics rewrite (a full disk through
 * RLIMIT_FSIZE), and prepare --force leaving a directory it did not write untouched. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "train/rundir.h"
#include "train_util.h"
#include "util/fs.h"
#include "vkt_test.h"
#include "vktrain/checkpoint.h"
#include "vktrain/data.h"
#include "vktrain/log.h"
#include "vktrain/model.h"
#include "vktrain/train.h"

static char dir[] = "/tmp/vkt_test_rundir_XXXXXX";

static const char *path_of(const char *name) {
    static char buf[8][600];
    static int k = 0;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void write_text(const char *name, const char *text) {
    FILE *f = fopen(path_of(name), "wb");
    if (!f) {
        fprintf(stderr, "cannot write %s\n", path_of(name));
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

/* 1 when the file name holds exactly text */
static int has_text(const char *name, const char *text) {
    unsigned char *data;
    size_t len;
    char err[256];
    if (vkt_read_file(path_of(name), &data, &len, err, sizeof err)) return 0;
    int same = len == strlen(text) && !memcmp(data, text, len);
    free(data);
    return same;
}

static int exists(const char *name) {
    struct stat st;
    return lstat(path_of(name), &st) == 0;
}

/* Entries of dir/sub whose names start with prefix. */
static int count_prefixed(const char *sub, const char *prefix) {
    DIR *d = opendir(path_of(sub));
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, prefix, strlen(prefix))) n++;
    if (d) closedir(d);
    return n;
}

static void test_temp_names(void) {
    char mine[256], theirs[256], want[64];
    vkt_temp_path(mine, sizeof mine, "x/checkpoint.bin");
    snprintf(want, sizeof want, "x/checkpoint.bin.tmp.%ld", (long)getpid());
    CHECK(!strcmp(mine, want), "temp name %s, want %s", mine, want);
    int fds[2];
    if (pipe(fds) != 0) return;
    pid_t pid = fork();
    if (pid == 0) {
        vkt_temp_path(theirs, sizeof theirs, "x/checkpoint.bin");
        ssize_t w = write(fds[1], theirs, strlen(theirs) + 1);
        _exit(w > 0 ? 0 : 1);
    }
    close(fds[1]);
    ssize_t n = read(fds[0], theirs, sizeof theirs - 1);
    close(fds[0]);
    waitpid(pid, NULL, 0);
    theirs[n > 0 ? n : 0] = 0;
    CHECK(n > 0 && strcmp(mine, theirs), "two processes share the temp name %s", mine);
}

/* Another writer's temp (an older vktrain's fixed name, another process's) is never written,
 * renamed or removed by a save. */
static void test_checkpoint_temp(void) {
    char err[1024];
    int dev = vkt_device_resolve("cpu:0", err, sizeof err);
    vkt_backend *be = dev >= 0 ? vkt_backend_create(dev, err, sizeof err) : NULL;
    vkt_gpt2_shape s = {.max_seq_len = 8, .vocab_size = 40, .padded_vocab_size = 64,
                        .num_layers = 1, .num_heads = 2, .channels = 16};
    vkt_model *m = be ? vkt_model_create(be, &s, 1, 8, err, sizeof err) : NULL;
    CHECK(m != NULL, "%s", err);
    if (!m) return;
    vkt_model_init_random(m, 3);
    vkt_config cfg;
    if (small_config(&cfg, dir, NULL, 0)) {
        CHECK(0, "the config");
        return;
    }
    mkdir(path_of("ck"), 0777);
    write_text("ck/checkpoint.bin.tmp", "another writer's");
    write_text("ck/checkpoint.bin.tmp.1", "process 1's");
    vkt_loader_state ls = {.seed = 1, .batches = 5}; /* a real run draws at least one per step */
    vkt_loss_scale sc = {.scale = 1.0f};
    int rc = vkt_checkpoint_save(path_of("ck/checkpoint.bin"), m, &cfg, 5, &ls, &sc, NULL, NULL,
                                 err, sizeof err);
    CHECK(rc == 0, "%s", err);
    CHECK(has_text("ck/checkpoint.bin.tmp", "another writer's") &&
              has_text("ck/checkpoint.bin.tmp.1", "process 1's"),
          "a checkpoint save wrote or moved another process's temp");
    CHECK(count_prefixed("ck", "checkpoint.bin.tmp") == 2, "the save left its temp behind");
    vkt_checkpoint ck;
    rc = vkt_checkpoint_read(path_of("ck/checkpoint.bin"), &ck, err, sizeof err);
    CHECK(rc == 0 && ck.step == 5, "rc %d: %s", rc, err);
    if (!rc) vkt_checkpoint_free(&ck);
    vkt_model_destroy(m);
    vkt_backend_destroy(be);
}

static const char METRICS[] = "{\"step\":1,\"loss\":5.000000}\n{\"step\":2,\"loss\":4.000000}\n"
                              "{\"step\":3,\"loss\":3.000000}\n";

static void test_metrics_rewrite(void) {
    char err[1024];
    mkdir(path_of("m"), 0777);
    write_text("m/" VKT_METRICS_FILE, METRICS);
    write_text("m/" VKT_METRICS_FILE ".tmp", "another writer's");
    vkt_metrics m;
    int rc = vkt_metrics_open(&m, path_of("m"), 2, err, sizeof err);
    CHECK(rc == 0, "%s", err);
    if (!rc) vkt_metrics_close(&m);
    CHECK(has_text("m/" VKT_METRICS_FILE,
                   "{\"step\":1,\"loss\":5.000000}\n{\"step\":2,\"loss\":4.000000}\n"),
          "resumed at step 2: the lines after it are not cut");
    CHECK(has_text("m/" VKT_METRICS_FILE ".tmp", "another writer's") &&
              count_prefixed("m", VKT_METRICS_FILE ".tmp") == 1,
          "the rewrite used another process's temp, or left its own");

    /* a full disk: RLIMIT_FSIZE in a child makes every write past 16 bytes fail (EFBIG) */
    write_text("m/" VKT_METRICS_FILE, METRICS);
    remove(path_of("m/" VKT_METRICS_FILE ".tmp"));
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN); /* the write fails instead of killing the process */
        struct rlimit rl = {16, 16};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(77);
        FILE *probe = fopen(path_of("m/probe"), "w");
        int limited = probe && fputs(METRICS, probe) >= 0 && fflush(probe) != 0;
        if (probe) fclose(probe);
        remove(path_of("m/probe"));
        if (!limited) _exit(77);
        vkt_metrics mm;
        int r = vkt_metrics_open(&mm, path_of("m"), 1, err, sizeof err);
        if (!r) vkt_metrics_close(&mm);
        if (r != 1 || !strstr(err, VKT_METRICS_FILE)) {
            fprintf(stderr, "full disk: rc %d: %s\n", r, err);
            _exit(3);
        }
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
        printf("test_rundir: full-disk case skipped: RLIMIT_FSIZE does not limit writes here\n");
        return;
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "full disk: the rewrite did not fail cleanly");
    CHECK(count_prefixed("m", VKT_METRICS_FILE ".tmp") == 0,
          "a failed rewrite left a temp behind");
    CHECK(has_text("m/" VKT_METRICS_FILE, METRICS), "a failed rewrite changed metrics.jsonl");
}

/* A child that takes the lock on path_of(sub) and waits; its pid once it holds it. */
static pid_t child_holding(const char *sub) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        char err[512];
        int fd;
        char ok = vkt_dir_lock(path_of(sub), &fd, NULL, err, sizeof err) == 0 ? 'y' : 'n';
        if (write(fds[1], &ok, 1) != 1) _exit(1);
        for (;;) pause();
    }
    close(fds[1]);
    char ok = 0;
    if (read(fds[0], &ok, 1) != 1 || ok != 'y') {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        pid = -1;
    }
    close(fds[0]);
    return pid;
}

static void test_dir_lock(void) {
    char err[512], want[64];
    int fd = -1;
    long holder = -1;
    mkdir(path_of("lk"), 0777);
    pid_t pid = child_holding("lk");
    CHECK(pid > 0, "a child could not take the lock");
    if (pid <= 0) return;
    int rc = vkt_dir_lock(path_of("lk"), &fd, &holder, err, sizeof err);
    snprintf(want, sizeof want, "(pid %ld)", (long)pid);
    CHECK(rc == 2 && holder == pid && strstr(err, path_of("lk")) && strstr(err, want),
          "rc %d holder %ld: %s", rc, holder, err);
    /* SIGKILL: the kernel releases the lock; no stale lock is left */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    rc = vkt_dir_lock(path_of("lk"), &fd, &holder, err, sizeof err);
    CHECK(rc == 0 && fd >= 0, "after the holder was killed: rc %d: %s", rc, err);
    /* held here: a child is refused; released: it gets it */
    pid = fork();
    if (pid == 0) {
        int f;
        long h;
        _exit(vkt_dir_lock(path_of("lk"), &f, &h, err, sizeof err) == 2 && h == getppid() ? 0 : 1);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a second process got a held lock");
    vkt_dir_unlock(fd);
    pid = child_holding("lk");
    CHECK(pid > 0, "the lock was not released by vkt_dir_unlock");
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    rc = vkt_dir_lock(path_of("no/such"), &fd, &holder, err, sizeof err);
    CHECK(rc == 1 && strstr(err, "no/such"), "rc %d: %s", rc, err);
}

static void test_move_aside(void) {
    char err[1024];
    mkdir(path_of("run"), 0777);
    mkdir(path_of("run/cache"), 0777);
    write_text("run/" VKT_CHECKPOINT_FILE, "first checkpoint");
    write_text("run/" VKT_METRICS_FILE, "first metrics");
    write_text("run/notes.txt", "mine");
    write_text("run/" VKT_CHECKPOINT_FILE ".tmp.123", "killed run's temp");
    write_text("run/" VKT_METRICS_FILE ".tmp", "older vktrain's temp");
    write_text("run/notes.txt.tmp.5", "not a run's temp");
    int rc = vkt_rundir_start(path_of("run"), 0, err, sizeof err);
    CHECK(rc == 0, "%s", err);
    CHECK(has_text("run/previous/run-1/" VKT_CHECKPOINT_FILE, "first checkpoint") &&
              has_text("run/previous/run-1/" VKT_METRICS_FILE, "first metrics"),
          "the earlier run was not moved to previous/run-1 intact");
    CHECK(!exists("run/" VKT_CHECKPOINT_FILE) && !exists("run/" VKT_METRICS_FILE),
          "the earlier run's files are still in place");
    CHECK(has_text("run/notes.txt", "mine") && exists("run/cache") &&
              has_text("run/notes.txt.tmp.5", "not a run's temp"),
          "a file the trainer does not write was moved or removed");
    CHECK(!exists("run/" VKT_CHECKPOINT_FILE ".tmp.123") && !exists("run/" VKT_METRICS_FILE ".tmp"),
          "killed runs' temps were not removed");
    /* a second rerun: a new aside, never over an earlier one (nor a gap's number) */
    mkdir(path_of("run/previous/run-7"), 0777);
    write_text("run/" VKT_METRICS_FILE, "second metrics");
    rc = vkt_rundir_start(path_of("run"), 0, err, sizeof err);
    CHECK(rc == 0 && has_text("run/previous/run-8/" VKT_METRICS_FILE, "second metrics") &&
              has_text("run/previous/run-1/" VKT_METRICS_FILE, "first metrics"),
          "second rerun: rc %d: %s", rc, err);
    /* nothing of a run there: nothing moved; --resume: the files stay */
    rc = vkt_rundir_start(path_of("run"), 0, err, sizeof err);
    CHECK(rc == 0 && count_prefixed("run/previous", "run-") == 3, "an empty aside was made");
    write_text("run/" VKT_CHECKPOINT_FILE, "third");
    rc = vkt_rundir_start(path_of("run"), 1, err, sizeof err);
    CHECK(rc == 0 && has_text("run/" VKT_CHECKPOINT_FILE, "third"), "--resume moved its files");
    /* previous is a file: refused by name, nothing moved */
    mkdir(path_of("run2"), 0777);
    write_text("run2/previous", "x");
    write_text("run2/" VKT_METRICS_FILE, "kept");
    rc = vkt_rundir_start(path_of("run2"), 0, err, sizeof err);
    CHECK(rc == 1 && strstr(err, "previous") && has_text("run2/" VKT_METRICS_FILE, "kept"),
          "rc %d: %s", rc, err);
}

/* The trainer: a run on a directory another process holds is refused before it changes
 * anything, naming the holder; a fresh run over an earlier one keeps it. */
static void test_train_lock(void) {
    char err[2048], want[64];
    vkt_config cfg;
    const char *extra[] = {"train.max_steps=1", "optim.warmup_steps=0", "train.eval_batches=1"};
    char out[600];
    snprintf(out, sizeof out, "%s/tr", dir);
    int crc = small_config(&cfg, out, extra, 3);
    CHECK(crc == 0, "the training config");
    if (crc) return;
    mkdir(out, 0777);
    write_text("tr/" VKT_METRICS_FILE, "earlier");
    int fd;
    CHECK(vkt_dir_lock(out, &fd, NULL, err, sizeof err) == 0, "%s", err);
    pid_t pid = fork(); /* the lock is this process's: a child's run is refused */
    if (pid == 0) {
        int rc = vkt_train_run(&cfg, NULL, NULL, err, sizeof err);
        snprintf(want, sizeof want, "(pid %ld)", (long)getppid());
        int ok = rc == 2 && strstr(err, out) && strstr(err, want) && strstr(err, "HINT") &&
                 strstr(err, "[train] out_dir");
        if (!ok) fprintf(stderr, "refused run: rc %d: %s\n", rc, err);
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a run on a locked out_dir was not refused");
    CHECK(has_text("tr/" VKT_METRICS_FILE, "earlier") && !exists("tr/previous"),
          "a refused run changed its out_dir");
    vkt_dir_unlock(fd);
    int rc = vkt_train_run(&cfg, NULL, NULL, err, sizeof err);
    CHECK(rc == 0, "%s", err);
    CHECK(has_text("tr/previous/run-1/" VKT_METRICS_FILE, "earlier") &&
              exists("tr/" VKT_CHECKPOINT_FILE),
          "the rerun did not keep the earlier run's metrics");
}

/* prepare --force over a directory it did not write: refused, every file kept. */
static void test_prepare_force(void) {
    char err[2048];
    write_text("in.txt", "to be or not to be, that is the question. ");
    char input[600], proj[600], own[600]; /* path_of's buffers are reused */
    snprintf(input, sizeof input, "%s", path_of("in.txt"));
    snprintf(proj, sizeof proj, "%s", path_of("proj"));
    snprintf(own, sizeof own, "%s", path_of("own"));
    const char *in[1] = {input};
    vkt_prepare_opts o = {.inputs = in, .n_inputs = 1, .tokenizer = "byte", .val_fraction = 0,
                          .out_dir = proj, .force = 1};
    mkdir(path_of("proj"), 0777);
    mkdir(path_of("proj/src"), 0777);
    write_text("proj/manifest.ini", "[package]\nname = mine\n");
    write_text("proj/README", "mine");
    write_text("proj/src/main.c", "int main(void) { return 0; }\n");
    int rc = vkt_prepare(&o, err, sizeof err);
    CHECK(rc == 2 && strstr(err, proj) && strstr(err, "not a prepared data directory"),
          "rc %d: %s", rc, err);
    CHECK(has_text("proj/manifest.ini", "[package]\nname = mine\n") &&
              has_text("proj/README", "mine") &&
              has_text("proj/src/main.c", "int main(void) { return 0; }\n"),
          "prepare --force removed a file of a directory it did not write");
    CHECK(count_prefixed("", "proj.") == 0, "prepare left a proj.* directory");
    /* prepare's own output plus one foreign file: that file is named, nothing removed */
    o.out_dir = own;
    o.force = 0;
    CHECK(vkt_prepare(&o, err, sizeof err) == 0, "%s", err);
    write_text("own/notes.txt", "mine");
    o.force = 1;
    rc = vkt_prepare(&o, err, sizeof err);
    CHECK(rc == 2 && strstr(err, "notes.txt"), "rc %d: %s", rc, err);
    CHECK(has_text("own/notes.txt", "mine") && exists("own/train_000000.bin") &&
              exists("own/manifest.ini"),
          "a refused --force changed the directory");
    remove(path_of("own/notes.txt"));
    rc = vkt_prepare(&o, err, sizeof err);
    CHECK(rc == 0 && count_prefixed("", "own.") == 0, "own output not replaced: rc %d: %s", rc,
          err);
}

int main(void) {
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_temp_names();
    test_checkpoint_temp();
    test_metrics_rewrite();
    test_dir_lock();
    test_move_aside();
    test_train_lock();
    test_prepare_force();
    if (!vkt_test_failures) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    }
    return vkt_test_finish("test_rundir");
}
