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
 * O_NONBLOCK (cleared once fstat says regular). A file descriptor, or -1 with err. */
int vkt_open_regular(const char *path, char *err, size_t errlen);

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

#endif
