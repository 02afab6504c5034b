/* The prepared-data cache: a text file named in a config is tokenized once into
 * cache_dir/data/<key>, where key hashes the input contents and every setting that changes
 * the tokens. A later run with the same inputs and settings reuses the entry; anything
 * changed makes a new one. Entries appear complete or not at all (vkt_prepare renames a
 * finished temporary directory into place). */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "util/fs.h"
#include "util/hash.h"
#include "vktrain/data.h"

/* Bump when prepare's output for the same input changes (tokenizer or shard layout). */
#define CACHE_VERSION "vktrain-data-cache-1"

static int hash_file(const char *path, uint64_t *h, char *err, size_t errlen) {
    const void *p;
    size_t len;
    int rc = vkt_map_file(path, POSIX_MADV_SEQUENTIAL, &p, &len, err, errlen);
    if (rc) return rc;
    *h = vkt_hash64(p ? p : "", len); /* an empty file: prepare reports it */
    vkt_unmap_file(p, len);
    return 0;
}

static uint64_t mix_str(uint64_t h, const char *s) { return vkt_hash64_update(h, s, strlen(s) + 1); }

int vkt_data_cache_entry(const char *cache_dir, const char *train_text, const char *val_text,
                         const char *tokenizer, int vocab_size, double val_fraction, char *dir,
                         size_t dirlen, int *hit, char *err, size_t errlen) {
    uint64_t ht, hv = 0;
    int rc = hash_file(train_text, &ht, err, errlen);
    if (!rc && val_text) rc = hash_file(val_text, &hv, err, errlen);
    if (rc) return rc;
    /* everything that changes the tokens, and nothing else (not the paths: a moved or
     * copied corpus still hits) */
    char settings[256];
    snprintf(settings, sizeof settings, "%s|%s|vocab %d|val %s|fraction %.17g", CACHE_VERSION,
             tokenizer, strcmp(tokenizer, "bpe") ? 256 : vocab_size,
             val_text ? "file" : "split", val_text ? 0.0 : val_fraction);
    uint64_t key = mix_str(VKT_HASH64_SEED, settings);
    key = vkt_hash64_update(key, &ht, sizeof ht);
    key = vkt_hash64_update(key, &hv, sizeof hv);
    snprintf(dir, dirlen, "%s/data/%016llx", cache_dir, (unsigned long long)key);

    vkt_prepared m;
    char quiet[8];
    *hit = vkt_prepared_read(dir, &m, quiet, sizeof quiet) == 0;
    if (*hit) {
        fprintf(stderr, "vktrain: data: reusing the tokens of %s from the cache %s\n",
                train_text, dir);
        return 0;
    }
    struct stat st;
    if (stat(dir, &st) == 0) {
        snprintf(err, errlen,
                 "%s: cache entry for %s is incomplete or damaged. HINT: delete that directory",
                 dir, train_text);
        return 2;
    }
    fprintf(stderr, "vktrain: data: tokenizing %s%s%s (%s) into the cache %s\n", train_text,
            val_text ? " and " : "", val_text ? val_text : "", tokenizer, dir);
    const char *inputs[1] = {train_text}, *vals[1] = {val_text};
    vkt_prepare_opts o = {.inputs = inputs, .n_inputs = 1, .val_inputs = vals,
                          .n_val_inputs = val_text ? 1 : 0, .tokenizer = tokenizer,
                          .vocab_size = vocab_size, .val_fraction = val_fraction,
                          .out_dir = dir, .progress = 1};
    rc = vkt_prepare(&o, err, errlen);
    /* another process (an MPI rank, a second run) may have finished the same entry first */
    if (rc && vkt_prepared_read(dir, &m, quiet, sizeof quiet) == 0) return 0;
    return rc;
}
