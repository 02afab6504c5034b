/* prepare and the data cache: the shards decode back to the input bytes, the validation cut,
 * shard splitting, a refused or failed prepare leaving nothing behind, and the cache's hit,
 * miss and invalidation (changed contents, changed settings; a moved copy still hits). */
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fs.h"
#include "vkt_test.h"
#include "vktrain/data.h"

static char dir[] = "/tmp/vkt_test_prepare_XXXXXX";

static const char *path_of(const char *name) {
    static char buf[6][400];
    static int k = 0;
    k = (k + 1) % 6;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void write_file(const char *name, const void *data, size_t len) {
    FILE *f = fopen(path_of(name), "wb");
    fwrite(data, 1, len, f);
    fclose(f);
}

/* Entries of dir/sub whose names contain needle. */
static int count_entries(const char *sub, const char *needle) {
    DIR *d = opendir(path_of(sub));
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, needle)) n++;
    if (d) closedir(d);
    return n;
}

static time_t mtime(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? st.st_mtime : 0;
}

/* Concatenated tokens of a prepared split, as bytes (byte tokenizer). */
static size_t read_split(const char *out, const char *split, int shards, unsigned char *buf,
                         size_t cap) {
    size_t n = 0;
    char p[600], err[512];
    for (int i = 0; i < shards; i++) {
        vkt_prepared_shard_path(p, sizeof p, out, split, i);
        vkt_shard s;
        if (vkt_shard_open(p, &s, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            return 0;
        }
        for (size_t j = 0; j < s.n && n < cap; j++) buf[n++] = (unsigned char)s.ids[j];
        vkt_shard_close(&s);
    }
    return n;
}

static int run_prepare(const char *input, const char *out, double frac, size_t shard_tokens,
                       int force, char *err, size_t errlen) {
    const char *in[1] = {input};
    vkt_prepare_opts o = {.inputs = in, .n_inputs = 1, .tokenizer = "byte",
                          .val_fraction = frac, .shard_tokens = shard_tokens, .out_dir = out,
                          .force = force};
    return vkt_prepare(&o, err, errlen);
}

static void test_prepare(void) {
    unsigned char bytes[10000], back[10000];
    for (int i = 0; i < 10000; i++) bytes[i] = (unsigned char)(i * 131 + i / 7); /* binary */
    write_file("in.bin", bytes, sizeof bytes);
    char err[1024] = "";
    /* 10% val, shards of at most 3000 tokens: train 9000 = 3 shards, val 1000 = 1 */
    int rc = run_prepare(path_of("in.bin"), path_of("out"), 0.1, 3000, 0, err, sizeof err);
    CHECK(rc == 0, "%s", err);
    vkt_prepared m;
    CHECK(vkt_prepared_read(path_of("out"), &m, err, sizeof err) == 0, "%s", err);
    CHECK(m.train_shards == 3 && m.val_shards == 1 && m.train_tokens == 9000 &&
              m.val_tokens == 1000 && m.vocab_size == 256 && !strcmp(m.tokenizer, "byte"),
          "manifest: %d %d %llu %llu", m.train_shards, m.val_shards,
          (unsigned long long)m.train_tokens, (unsigned long long)m.val_tokens);
    size_t nt = read_split(path_of("out"), "train", m.train_shards, back, sizeof back);
    size_t nv = read_split(path_of("out"), "val", m.val_shards, back + nt, sizeof back - nt);
    CHECK(nt == 9000 && nv == 1000 && !memcmp(back, bytes, sizeof bytes),
          "train + val shards do not decode to the input (%zu + %zu)", nt, nv);
    CHECK(count_entries("", ".tmp") == 0, "a temporary directory was left behind");

    /* out exists: refused without --force (nothing changes); replaced with it */
    time_t before = mtime(path_of("out/manifest.ini"));
    rc = run_prepare(path_of("in.bin"), path_of("out"), 0.1, 0, 0, err, sizeof err);
    CHECK(rc == 2 && strstr(err, path_of("out")) && strstr(err, "exists") && strstr(err, "--force"),
          "rc %d: %s", rc, err);
    CHECK(mtime(path_of("out/manifest.ini")) == before, "a refused prepare touched out");
    rc = run_prepare(path_of("in.bin"), path_of("out"), 0.0, 0, 1, err, sizeof err);
    CHECK(rc == 0, "%s", err);
    CHECK(vkt_prepared_read(path_of("out"), &m, err, sizeof err) == 0 && m.train_shards == 1 &&
              m.val_shards == 0 && m.train_tokens == 10000,
          "--force did not replace out");
    CHECK(!vkt_file_exists(path_of("out/train_000001.bin")), "old shards survived --force");
    CHECK(count_entries("", ".old.") == 0 && count_entries("", ".tmp.") == 0,
          "--force left the replaced directory or a temporary one behind");
    /* --force never replaces a directory prepare did not write */
    mkdir(path_of("mine"), 0777);
    write_file("mine/notes.txt", "keep", 4);
    rc = run_prepare(path_of("in.bin"), path_of("mine"), 0.1, 0, 1, err, sizeof err);
    CHECK(rc == 2 && strstr(err, "not a prepared data directory"), "rc %d: %s", rc, err);
    CHECK(vkt_file_exists(path_of("mine/notes.txt")), "user file removed");

    /* bad inputs: named, status 2, nothing left behind */
    write_file("empty.txt", "", 0);
    rc = run_prepare(path_of("empty.txt"), path_of("o2"), 0.1, 0, 0, err, sizeof err);
    CHECK(rc == 2 && strstr(err, path_of("empty.txt")) && strstr(err, "empty"), "rc %d: %s", rc,
          err);
    rc = run_prepare(path_of("nope.txt"), path_of("o2"), 0.1, 0, 0, err, sizeof err);
    CHECK(rc == 2 && strstr(err, path_of("nope.txt")) && strstr(err, "cannot open"), "rc %d: %s",
          rc, err);
    rc = run_prepare(path_of("mine"), path_of("o2"), 0.1, 0, 0, err, sizeof err);
    CHECK(rc == 2 && strstr(err, "not a regular file"), "rc %d: %s", rc, err);
    CHECK(count_entries("", "o2") == 0, "a failed prepare left %s behind", path_of("o2*"));
    /* an unwritable output place fails with status 1 and leaves nothing */
    rc = run_prepare(path_of("in.bin"), "/proc/vkt_no_such/out", 0.1, 0, 0, err, sizeof err);
    CHECK(rc == 1 && strstr(err, "/proc/vkt_no_such"), "rc %d: %s", rc, err);

    /* a damaged prepared directory is refused by name */
    write_file("out/manifest.ini", "[prepared]\nformat = 9\n", 22);
    CHECK(vkt_prepared_read(path_of("out"), &m, err, sizeof err) == 2 &&
              strstr(err, "manifest.ini") && strstr(err, "format 9"),
          "damaged manifest: %s", err);
}

static void test_cache(void) {
    char cache[400], err[1024], e1[600], e2[600], e3[600], e4[600], e5[600];
    snprintf(cache, sizeof cache, "%s/cache", dir);
    unsigned char text[5000];
    for (int i = 0; i < 5000; i++) text[i] = (unsigned char)("to be or not "[i % 13]);
    write_file("corpus.txt", text, sizeof text);
    int hit = -1;
    int rc = vkt_data_cache_entry(cache, path_of("corpus.txt"), NULL, "byte", 256, 0.1, e1,
                                  sizeof e1, &hit, err, sizeof err);
    CHECK(rc == 0 && hit == 0, "first use: rc %d hit %d: %s", rc, hit, err);
    char shard[700];
    snprintf(shard, sizeof shard, "%s/train_000000.bin", e1);
    struct stat st0, st1;
    CHECK(stat(shard, &st0) == 0, "no shard in the cache entry %s", e1);
    /* hit: same entry, not re-tokenized (the shard file is the same inode) */
    rc = vkt_data_cache_entry(cache, path_of("corpus.txt"), NULL, "byte", 256, 0.1, e2,
                              sizeof e2, &hit, err, sizeof err);
    CHECK(rc == 0 && hit == 1 && !strcmp(e1, e2), "second use: rc %d hit %d", rc, hit);
    CHECK(stat(shard, &st1) == 0 && st1.st_ino == st0.st_ino && st1.st_mtime == st0.st_mtime,
          "the cache entry was rewritten on a hit");
    /* a copy elsewhere (same contents) hits too: the key is the contents, not the path */
    write_file("copy.txt", text, sizeof text);
    rc = vkt_data_cache_entry(cache, path_of("copy.txt"), NULL, "byte", 256, 0.1, e3, sizeof e3,
                              &hit, err, sizeof err);
    CHECK(rc == 0 && hit == 1 && !strcmp(e1, e3), "a copy missed the cache");
    /* changed contents or settings: a new entry */
    text[100] ^= 1;
    write_file("corpus.txt", text, sizeof text);
    rc = vkt_data_cache_entry(cache, path_of("corpus.txt"), NULL, "byte", 256, 0.1, e4,
                              sizeof e4, &hit, err, sizeof err);
    CHECK(rc == 0 && hit == 0 && strcmp(e1, e4), "changed contents hit the old entry");
    rc = vkt_data_cache_entry(cache, path_of("corpus.txt"), NULL, "byte", 256, 0.2, e5,
                              sizeof e5, &hit, err, sizeof err);
    CHECK(rc == 0 && hit == 0 && strcmp(e4, e5), "a changed val_fraction hit the old entry");
    /* the vocab size matters for BPE only */
    rc = vkt_data_cache_entry(cache, path_of("corpus.txt"), NULL, "byte", 512, 0.2, e2,
                              sizeof e2, &hit, err, sizeof err);
    CHECK(rc == 0 && hit == 1 && !strcmp(e2, e5), "byte tokens keyed by vocab_size");
    /* a damaged entry (as if edited by hand) is reported, not trusted */
    snprintf(shard, sizeof shard, "%s/manifest.ini", e5);
    remove(shard);
    rc = vkt_data_cache_entry(cache, path_of("corpus.txt"), NULL, "byte", 256, 0.2, e2,
                              sizeof e2, &hit, err, sizeof err);
    CHECK(rc == 2 && strstr(err, e5) && strstr(err, "damaged"), "rc %d: %s", rc, err);
    /* an interrupted prepare leaves only a .tmp directory, which is never taken as an entry */
    CHECK(count_entries("cache/data", ".tmp") == 0, "temporary entries left in the cache");
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    test_prepare();
    test_cache();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "cleanup failed\n");
    return vkt_test_failures ? 1 : 0;
}
