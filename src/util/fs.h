/* Small filesystem helpers. */
#ifndef VKTRAIN_FS_H
#define VKTRAIN_FS_H

#include <stddef.h>

/* mkdir -p; 0, or -1 with err naming the directory. */
int vkt_mkdirs(const char *path, char *err, size_t errlen);
/* 1 when path exists as a regular file */
int vkt_file_exists(const char *path);

#endif
