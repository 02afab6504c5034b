/* Small filesystem helpers. */
#define _DEFAULT_SOURCE /* flock (BSD, in every libc) on top of the POSIX level set for all */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fs.h"

int vkt_mkdirs(const char *path, char *err, size_t errlen) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
                snprintf(err, errlen, "%s: cannot create directory: %s", buf, strerror(errno));
                return -1;
            }
            *p = c;
            if (!c) break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: exists and is not a directory", path);
        return -1;
    }
    return 0;
}

int vkt_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* What a non-regular file is, for the message. */
static const char *file_kind(mode_t m) {
    if (S_ISDIR(m)) return "a directory";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a plain file";
}

static int not_regular(const char *path, mode_t m, char *err, size_t errlen) {
    snprintf(err, errlen, "%s: not a regular file (%s)", path, file_kind(m));
    return 2;
}

int vkt_check_regular_file(const char *path, char *err, size_t errlen) {
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return 2;
    }
    return S_ISREG(st.st_mode) ? 0 : not_regular(path, st.st_mode, err, errlen);
}

int vkt_open_regular(const char *path, size_t *size, char *err, size_t errlen) {
    /* stat first so that a device is never opened at all; O_NONBLOCK so that a FIFO swapped in
     * after the stat cannot block open() either (fstat then refuses it) */
    if (vkt_check_regular_file(path, err, errlen)) return -1;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) { /* swapped for a FIFO or device after the stat */
        not_regular(path, st.st_mode, err, errlen);
        close(fd);
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    if (size) *size = (size_t)st.st_size;
    return fd;
}

int vkt_read_file(const char *path, unsigned char **data, size_t *len, char *err,
                     size_t errlen) {
    *data = NULL;
    *len = 0;
    size_t size;
    int fd = vkt_open_regular(path, &size, err, errlen);
    if (fd < 0) return 2;
    size_t got = 0;
    *data = malloc(size + 1);
    if (!*data) {
        snprintf(err, errlen, "%s: out of memory reading %zu bytes", path, size);
        close(fd);
        return 1;
    }
    while (got < size) {
        ssize_t r = read(fd, *data + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != size) {
        snprintf(err, errlen, "%s: read error (%zu of %zu bytes)", path, got, size);
        free(*data);
        *data = NULL;
        return 2;
    }
    (*data)[size] = 0;
    *len = size;
    return 0;
}

int vkt_write_pieces_atomic(const char *path, const void *const *pieces, const size_t *lens,
                            int n, char *err, size_t errlen) {
    char tmp[4200];
    vkt_temp_path(tmp, sizeof tmp, path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        return 1;
    }
    int ok = 1;
    for (int i = 0; i < n && ok; i++) ok = fwrite(pieces[i], 1, lens[i], f) == lens[i];
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int saved = errno;
    ok = fclose(f) == 0 && ok;
    if (ok && rename(tmp, path) == 0) return 0;
    if (ok) saved = errno;
    remove(tmp);
    snprintf(err, errlen, "%s: cannot write: %s", path, strerror(saved));
    return 1;
}

int vkt_write_file_atomic(const char *path, const void *data, size_t len, char *err,
                          size_t errlen) {
    return vkt_write_pieces_atomic(path, &data, &len, 1, err, errlen);
}

int vkt_map_file(const char *path, int advice, const void **data, size_t *len, char *err,
                 size_t errlen) {
    *data = NULL;
    *len = 0;
    size_t size;
    int fd = vkt_open_regular(path, &size, err, errlen);
    if (fd < 0) return 2;
    if (size == 0) {
        close(fd);
        return 0;
    }
    void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int saved = errno;
    close(fd); /* the mapping keeps the file */
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "%s: cannot map: %s", path, strerror(saved));
        return 1;
    }
    posix_madvise(p, size, advice);
    *data = p;
    *len = size;
    return 0;
}

void vkt_unmap_file(const void *data, size_t len) {
    if (data) munmap((void *)data, len);
}

void vkt_temp_path(char *buf, size_t len, const char *path) {
    snprintf(buf, len, "%s.tmp.%ld", path, (long)getpid());
}

/* The pid a lock holder wrote into its lock file; 0 when unknown (not written yet, or no
 * longer a live process: a leftover of an earlier holder that the new one has not replaced). */
static long lock_holder(int fd) {
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *end;
    long pid = strtol(buf, &end, 10);
    if (end == buf || pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno == ESRCH)) return 0;
    return pid;
}

int vkt_dir_lock(const char *dir, int *fd, long *holder, char *err, size_t errlen) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, VKT_DIR_LOCK_FILE);
    *fd = -1;
    if (holder) *holder = 0;
    /* O_NOFOLLOW and O_NONBLOCK: a symlink, FIFO or device put there is refused, not used */
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
    if (f < 0) {
        snprintf(err, errlen, "%s: cannot create the lock file: %s", path, strerror(errno));
        return 1;
    }
    struct stat st;
    if (fstat(f, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: cannot lock: not a regular file", path);
        close(f);
        return 1;
    }
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EWOULDBLOCK) {
            long pid = lock_holder(f);
            close(f);
            if (holder) *holder = pid;
            if (pid) snprintf(err, errlen, "%s: in use by another vktrain process (pid %ld)",
                              dir, pid);
            else snprintf(err, errlen, "%s: in use by another vktrain process (pid unknown)",
                          dir);
            return 2;
        }
        close(f);
        snprintf(err, errlen, "%s: cannot lock: %s", path, strerror(e));
        return 1;
    }
    /* the pid is for the messages of processes refused: a failure to write it is no error */
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    int wrote = ftruncate(f, 0) == 0 && pwrite(f, buf, (size_t)n, 0) == n;
    (void)wrote; /* unwritten, the refused see "pid unknown" */
    *fd = f;
    return 0;
}

void vkt_dir_unlock(int fd) {
    if (fd >= 0) close(fd); /* closing the only descriptor releases the flock */
}
