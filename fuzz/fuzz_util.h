/* Shared by the fuzz targets: a private scratch directory for readers that take a path (in
 * /dev/shm when there is one, so the per-input files never reach a disk), and invariant checks.
 * Header-only: each target is one .c file, built either with libFuzzer or with replay_main.c. */
#ifndef VKT_FUZZ_UTIL_H
#define VKT_FUZZ_UTIL_H

#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* nftw, setenv */
#endif
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char vkt_fuzz_root[512];

static inline int vkt_fuzz_rm(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    remove(p);
    return 0;
}

static inline void vkt_fuzz_cleanup(void) {
    if (vkt_fuzz_root[0]) nftw(vkt_fuzz_root, vkt_fuzz_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* The scratch directory, made on first use under $VKT_FUZZ_TMP, /dev/shm, $TMPDIR or /tmp (the
 * first that is a writable directory) and removed at exit. */
static inline const char *vkt_fuzz_dir(void) {
    if (vkt_fuzz_root[0]) return vkt_fuzz_root;
    const char *cands[] = {getenv("VKT_FUZZ_TMP"), "/dev/shm", getenv("TMPDIR"), "/tmp"};
    const char *base = "/tmp";
    for (int i = 0; i < 4; i++) {
        struct stat st;
        if (cands[i] && *cands[i] && stat(cands[i], &st) == 0 && S_ISDIR(st.st_mode) &&
            access(cands[i], W_OK) == 0) {
            base = cands[i];
            break;
        }
    }
    snprintf(vkt_fuzz_root, sizeof vkt_fuzz_root, "%s/vkt-fuzz-XXXXXX", base);
    if (!mkdtemp(vkt_fuzz_root)) {
        perror(vkt_fuzz_root);
        abort(); /* the harness, not the code under test: nothing can run without it */
    }
    atexit(vkt_fuzz_cleanup);
    return vkt_fuzz_root;
}

/* dir/rel, into buf. */
static inline const char *vkt_fuzz_path(char *buf, size_t len, const char *rel) {
    snprintf(buf, len, "%s/%s", vkt_fuzz_dir(), rel);
    return buf;
}

static inline void vkt_fuzz_mkdir(const char *rel) {
    char p[600];
    vkt_fuzz_path(p, sizeof p, rel);
    if (mkdir(p, 0777) != 0 && access(p, W_OK) != 0) {
        perror(p);
        abort();
    }
}

/* Writes size bytes to dir/rel (replacing it); returns the path, in buf. */
static inline const char *vkt_fuzz_write(char *buf, size_t len, const char *rel, const void *data,
                                  size_t size) {
    vkt_fuzz_path(buf, len, rel);
    FILE *f = fopen(buf, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(buf);
        abort();
    }
    return buf;
}

/* A property every input must keep (not a memory error, so libFuzzer would not see it):
 * aborts, so the input is reported as a crash. To keep fuzzing past a known finding,
 * VKT_FUZZ_LENIENT=msg only prints violations of the message checks (vkt_fuzz_check_msg),
 * VKT_FUZZ_LENIENT=1 those of every check. */
static inline void vkt_fuzz_vfail(const char *kind, const char *fmt, va_list ap) {
    fprintf(stderr, "fuzz invariant violated: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    const char *lenient = getenv("VKT_FUZZ_LENIENT");
    if (lenient && (!strcmp(lenient, "1") || !strcmp(lenient, kind))) return;
    abort();
}

static inline void vkt_fuzz_check(int ok, const char *fmt, ...) {
    if (ok) return;
    va_list ap;
    va_start(ap, fmt);
    vkt_fuzz_vfail("check", fmt, ap);
    va_end(ap);
}

static inline void vkt_fuzz_msg_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vkt_fuzz_vfail("msg", fmt, ap);
    va_end(ap);
}

/* A reader's error message (printed when VKT_FUZZ_VERBOSE is set): says something, and holds
 * no raw control bytes from the file (they would reach the user's terminal). */
static inline void vkt_fuzz_check_msg(const char *err) {
    static int verbose = -1;
    if (verbose < 0) verbose = getenv("VKT_FUZZ_VERBOSE") != NULL;
    if (verbose) fprintf(stderr, "message: %s\n", err);
    if (!err[0]) vkt_fuzz_msg_fail("a reader failed with an empty message");
    for (const unsigned char *p = (const unsigned char *)err; *p; p++)
        if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f) {
            vkt_fuzz_msg_fail("control byte 0x%02x in the message: %s", *p, err);
            return;
        }
}

/* Keeps a computed value alive, so reads of every element are not optimised away. */
static volatile uint64_t vkt_fuzz_sink;

#endif
