/* Small "key = value" line files, the form of the backends' tuning caches (matmul-tiers.ini,
 * opencl-gemm.ini): one line per key, '#' lines are comments, rewritten atomically. */
#ifndef VKTRAIN_KVLINES_H
#define VKTRAIN_KVLINES_H

#include <stddef.h>

/* The value of key's last line in path (everything after "key = ") into buf. 0 when found;
 * -1 when the file or the key is missing. */
int vkt_kvlines_get(const char *path, const char *key, char *buf, size_t len);
/* Sets key's line to "key = value": the other keys' lines are kept, comments are replaced by
 * `header` (one comment line, may be NULL), and the file is written atomically. 0, or -1. */
int vkt_kvlines_put(const char *path, const char *header, const char *key, const char *value);

#endif
