/* Small filesystem helpers. */
#ifndef VKTRAIN_FS_H
#define VKTRAIN_FS_H

#include <stddef.h>

/* mkdir -p; 0, or -1 with err naming the directory. */
int vkt_mkdirs(const char *path, char *err, size_t errlen);
/* 1 when path exists as a regular file */
int vkt_file_exists(const char *path);

/* 0 when path is a regular file; else 2 with err "<path>: not a regular file (a FIFO)" (or
 * "cannot open: <errno>" when it is missing). Lets a reader refuse a FIFO or a device before
 * opening it: open() on a FIFO blocks until a writer comes. */
int vkt_check_regular_file(const char *path, char *err, size_t errlen);
/* open(O_RDONLY) that never blocks and never opens a device: checked as above, opened with
 * O_NONBLOCK (cleared once fstat says regular). A file descriptor (and its size in *size, when
 * size is not NULL), or -1 with err. */
int vkt_open_regular(const char *path, size_t *size, char *err, size_t errlen);

/* Reads a whole regular file into a malloc'd buffer (one spare byte at the end). 0; or 2 with
 * err naming the file (missing, not a regular file, read error); 1 when out of memory. */
int vkt_read_file(const char *path, unsigned char **data, size_t *len, char *err,
                  size_t errlen);

/* Maps a whole regular file read-only (advice: a POSIX_MADV_* hint). An empty file gives
 * *data NULL and *len 0. 0; 2 with err naming the file when it is missing or not a regular
 * file; 1 when it cannot be mapped. */
int vkt_map_file(const char *path, int advice, const void **data, size_t *len, char *err,
                 size_t errlen);
void vkt_unmap_file(const void *data, size_t len);

/* Writes len bytes to path atomically: path.tmp.<pid>, fsync, rename. A crash leaves either the
 * old file or the new one, never half of it. 0, or 1 with err naming the file. */
int vkt_write_file_atomic(const char *path, const void *data, size_t len, char *err,
                          size_t errlen);
/* The same for n pieces written one after the other (no copy into one buffer). */
int vkt_write_pieces_atomic(const char *path, const void *const *pieces, const size_t *lens,
                            int n, char *err, size_t errlen);

/* The temporary name beside path that this process writes before renaming: path.tmp.<pid>.
 * Unique per process, so two writers of one file never write or rename each other's temp. */
void vkt_temp_path(char *buf, size_t len, const char *path);

/* An exclusive lock on a directory: flock(LOCK_EX | LOCK_NB) on dir/VKT_DIR_LOCK_FILE (created
 * when missing; it then holds the holder's pid, for the message of the one refused). The
 * kernel drops the lock when the process ends however it ends, so none is ever stale; the file
 * itself stays. 0 with *fd the lock to pass to vkt_dir_unlock; 2 when another process holds
 * it, err naming dir and that process's pid (*holder, 0 when unknown), for the caller to
 * complete with its hint; 1 when the lock file cannot be created or locked, err saying why. */
#define VKT_DIR_LOCK_FILE ".vktrain.lock"
int vkt_dir_lock(const char *dir, int *fd, long *holder, char *err, size_t errlen);
/* Releases a lock of vkt_dir_lock (fd < 0: none). */
void vkt_dir_unlock(int fd);

#endif
