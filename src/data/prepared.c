/* The prepared directory's manifest.ini: written last by prepare, read first by the data
 * set; it says which tokenizer made the shards and how many there are. */
#include <iniparser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/fs.h"
#include "vktrain/data.h"

int vkt_prepared_write(const char *dir, const vkt_prepared *m, const char *const *inputs,
                       int n_inputs, char *err, size_t errlen) {
    char text[8192];
    int n = snprintf(text, sizeof text,
                     "# written by vktrain prepare; the shards are llm.c token shards\n"
                     "[prepared]\nformat = %d\ntokenizer = %s\nvocab_size = %d\n"
                     "tokenizer_fingerprint = %016llx\ntrain_shards = %d\nval_shards = %d\n"
                     "train_tokens = %llu\nval_tokens = %llu\ninputs = \"",
                     VKT_PREPARED_FORMAT, m->tokenizer, m->vocab_size,
                     (unsigned long long)m->fingerprint, m->train_shards, m->val_shards,
                     (unsigned long long)m->train_tokens, (unsigned long long)m->val_tokens);
    /* the inputs are for people reading the file; a very long list is cut short */
    for (int i = 0; i < n_inputs && n < (int)sizeof text - 8; i++)
        n += snprintf(text + n, sizeof text - n, "%s%s", i ? " " : "", inputs[i]);
    if (n < (int)sizeof text - 2) n += snprintf(text + n, sizeof text - n, "\"\n");
    char path[VKT_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, VKT_PREPARED_MANIFEST);
    return vkt_write_file_atomic(path, text, strlen(text), err, errlen);
}

void vkt_prepared_shard_path(char *buf, size_t len, const char *dir, const char *split, int i) {
    snprintf(buf, len, "%s/%s_%06d.bin", dir, split, i);
}

int vkt_prepared_read(const char *dir, vkt_prepared *m, char *err, size_t errlen) {
    char path[VKT_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, VKT_PREPARED_MANIFEST);
    memset(m, 0, sizeof *m);
    struct stat st; /* a FIFO or device would block iniparser's fopen: refused unopened */
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return vkt_check_regular_file(path, err, errlen);
    if (!vkt_file_exists(path)) {
        snprintf(err, errlen,
                 "%s: is not a prepared data directory (no %s). HINT: write one with vktrain "
                 "prepare --out %s ...",
                 dir, VKT_PREPARED_MANIFEST, dir);
        return 2;
    }
    dictionary *d = iniparser_load(path);
    if (!d) {
        snprintf(err, errlen, "%s: cannot parse", path);
        return 2;
    }
    int format = iniparser_getint(d, "prepared:format", -1);
    const char *tk = iniparser_getstring(d, "prepared:tokenizer", "");
    const char *fp = iniparser_getstring(d, "prepared:tokenizer_fingerprint", "");
    const char *tt = iniparser_getstring(d, "prepared:train_tokens", "");
    const char *vt = iniparser_getstring(d, "prepared:val_tokens", "");
    snprintf(m->tokenizer, sizeof m->tokenizer, "%s", tk);
    m->vocab_size = iniparser_getint(d, "prepared:vocab_size", -1);
    m->train_shards = iniparser_getint(d, "prepared:train_shards", -1);
    m->val_shards = iniparser_getint(d, "prepared:val_shards", -1);
    char *e1, *e2, *e3;
    m->fingerprint = strtoull(fp, &e1, 16);
    m->train_tokens = strtoull(tt, &e2, 10);
    m->val_tokens = strtoull(vt, &e3, 10);
    int ok = format == VKT_PREPARED_FORMAT && m->vocab_size > 0 && m->train_shards >= 0 &&
             m->val_shards >= 0 && *fp && !*e1 && *tt && !*e2 && *vt && !*e3 &&
             (!strcmp(tk, "byte") || !strcmp(tk, "bpe"));
    iniparser_freedict(d);
    if (!ok) {
        snprintf(err, errlen,
                 "%s: not a valid manifest (format %d; this vktrain writes format %d). HINT: "
                 "prepare the directory again",
                 path, format, VKT_PREPARED_FORMAT);
        return 2;
    }
    return 0;
}
