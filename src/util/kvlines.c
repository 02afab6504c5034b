/* "key = value" line files: see kvlines.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fs.h"
#include "util/kvlines.h"

/* The whole file, NUL-terminated, or NULL. */
static char *slurp(const char *path, size_t *n) {
    unsigned char *data = NULL;
    char err[256];
    *n = 0;
    if (!vkt_file_exists(path) || vkt_read_file(path, &data, n, err, sizeof err)) return NULL;
    data[*n] = 0; /* vkt_read_file leaves one spare byte */
    return (char *)data;
}

/* Whether line is key's: "key = ..." */
static int is_key_line(const char *line, const char *key) {
    size_t k = strlen(key);
    return !strncmp(line, key, k) && !strncmp(line + k, " = ", 3);
}

int vkt_kvlines_get(const char *path, const char *key, char *buf, size_t len) {
    size_t n;
    char *data = slurp(path, &n);
    if (!data) return -1;
    int found = -1;
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n"))
        if (line[0] != '#' && is_key_line(line, key)) {
            snprintf(buf, len, "%s", line + strlen(key) + 3);
            found = 0;
        }
    free(data);
    return found;
}

int vkt_kvlines_put(const char *path, const char *header, const char *key, const char *value) {
    size_t n;
    char *old = slurp(path, &n);
    size_t cap = n + strlen(key) + strlen(value) + (header ? strlen(header) : 0) + 16, used = 0;
    char *out = malloc(cap);
    if (!out) {
        free(old);
        return -1;
    }
    if (header) used += (size_t)snprintf(out, cap, "# %s\n", header);
    for (char *line = old ? strtok(old, "\n") : NULL; line; line = strtok(NULL, "\n"))
        if (line[0] != '#' && !is_key_line(line, key))
            used += (size_t)snprintf(out + used, cap - used, "%s\n", line);
    used += (size_t)snprintf(out + used, cap - used, "%s = %s\n", key, value);
    char err[256];
    int rc = vkt_write_file_atomic(path, out, used, err, sizeof err) ? -1 : 0;
    free(out);
    free(old);
    return rc;
}
