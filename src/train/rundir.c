/* The run directory: its lock, stale temporary files, and moving an earlier run aside (the
 * contract is in rundir.h). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "train/rundir.h"
#include "util/fs.h"
#include "vktrain/checkpoint.h"
#include "vktrain/config.h"
#include "vktrain/log.h"

/* What a training run writes into out_dir: what a fresh run moves aside. */
static const char *const RUN_FILES[] = {VKT_CHECKPOINT_FILE, VKT_METRICS_FILE, NULL};

/* out_dir is at most VKT_PATH_MAX: room for out_dir/previous, then /run-N, then /file */
#define PREV_LEN (VKT_PATH_MAX + 16)
#define ASIDE_LEN (PREV_LEN + 32)
#define PATH_LEN (ASIDE_LEN + 300)

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int vkt_rundir_lock(const char *out_dir, int create, int *fd, char *err, size_t errlen) {
    *fd = -1;
    if (!create && !is_dir(out_dir)) return 0;
    if (create && vkt_mkdirs(out_dir, err, errlen)) return 1;
    long pid;
    int rc = vkt_dir_lock(out_dir, fd, &pid, err, errlen);
    if (rc == 2) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n,
                 ". HINT: wait for that run to finish (or stop it), or choose another [train] "
                 "out_dir (--set train.out_dir=DIR)");
    }
    return rc;
}

/* name is "<run file>.tmp" (an older vktrain's temp) or "<run file>.tmp.<digits>" */
static int is_run_temp(const char *name) {
    for (int i = 0; RUN_FILES[i]; i++) {
        size_t n = strlen(RUN_FILES[i]);
        if (strncmp(name, RUN_FILES[i], n) || strncmp(name + n, ".tmp", 4)) continue;
        const char *p = name + n + 4;
        if (!*p) return 1;
        if (*p++ != '.' || !*p) continue;
        while (*p >= '0' && *p <= '9') p++;
        if (!*p) return 1;
    }
    return 0;
}

/* Under the lock no other run writes here: every run temp is a killed run's. */
static void remove_stale_temps(const char *out_dir) {
    DIR *d = opendir(out_dir);
    if (!d) return;
    struct dirent *e;
    char path[PATH_LEN];
    while ((e = readdir(d))) {
        if (!is_run_temp(e->d_name)) continue;
        snprintf(path, sizeof path, "%s/%s", out_dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode)) unlink(path);
    }
    closedir(d);
}

/* The highest N of the run-N in dir (0: none). */
static long last_aside(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    long max = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "run-", 4)) continue;
        char *end;
        long n = strtol(e->d_name + 4, &end, 10);
        if (!*end && n > max) max = n;
    }
    closedir(d);
    return max;
}

/* Makes a new, empty out_dir/previous/run-N into aside. */
static int make_aside(const char *out_dir, char *aside, size_t len, char *err, size_t errlen) {
    char prev[PREV_LEN];
    snprintf(prev, sizeof prev, "%s/%s", out_dir, VKT_RUNDIR_PREVIOUS);
    if (mkdir(prev, 0777) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: cannot create directory: %s", prev, strerror(errno));
        return 1;
    }
    if (!is_dir(prev)) {
        snprintf(err, errlen,
                 "%s: is not a directory, so the earlier run in %s cannot be moved aside. HINT: "
                 "move it away, start with --resume, or choose another [train] out_dir",
                 prev, out_dir);
        return 1;
    }
    for (long n = last_aside(prev) + 1;; n++) { /* mkdir fails on an existing one: never reused */
        snprintf(aside, len, "%s/run-%ld", prev, n);
        if (mkdir(aside, 0777) == 0) return 0;
        if (errno != EEXIST) {
            snprintf(err, errlen, "%s: cannot create directory: %s", aside, strerror(errno));
            return 1;
        }
    }
}

int vkt_rundir_start(const char *out_dir, int resume, char *err, size_t errlen) {
    remove_stale_temps(out_dir);
    if (resume) return 0; /* the run goes on with its files (metrics cut after its step) */
    char path[PATH_LEN], to[PATH_LEN], aside[ASIDE_LEN], moved[512] = "";
    struct stat st;
    int found = 0;
    for (int i = 0; RUN_FILES[i]; i++) {
        snprintf(path, sizeof path, "%s/%s", out_dir, RUN_FILES[i]);
        found += lstat(path, &st) == 0;
    }
    if (!found) return 0;
    if (make_aside(out_dir, aside, sizeof aside, err, errlen)) return 1;
    for (int i = 0; RUN_FILES[i]; i++) {
        snprintf(path, sizeof path, "%s/%s", out_dir, RUN_FILES[i]);
        if (lstat(path, &st) != 0) continue;
        snprintf(to, sizeof to, "%s/%s", aside, RUN_FILES[i]);
        if (rename(path, to) != 0) {
            int e = errno;
            if (!moved[0]) rmdir(aside);
            snprintf(err, errlen,
                     "%s: cannot move the earlier run's file to %s: %s%s%s. HINT: start with "
                     "--resume to continue that run, or choose another [train] out_dir",
                     path, aside, strerror(e), moved[0] ? "; already moved there: " : "", moved);
            return 1;
        }
        size_t n = strlen(moved);
        snprintf(moved + n, sizeof moved - n, "%s%s", n ? ", " : "", RUN_FILES[i]);
    }
    fprintf(stderr,
            "vktrain: kept the earlier run in %s: moved %s to %s (--resume continues a run "
            "instead)\n",
            out_dir, moved, aside);
    return 0;
}
