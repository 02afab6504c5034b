/* libFuzzer target: an INI config with its validation (src/config/config.c, vkt_config_load).
 * Input: the file's text, then optionally a NUL and --set overrides, one per line. The file is
 * written as configs/fuzz.ini in a scratch tree that also holds data/tinyshakespeare.txt, so
 * the project's own configs validate as they do in the repository. A config that loads must
 * print (vkt_config_print, as a checkpoint saves it) to text that loads again and prints the
 * same: what --resume relies on. */
#include "fuzz_util.h"
#include "vktrain/config.h"

enum { MAX_OVERRIDES = 16 };

static void setup(void) {
    static int done;
    if (done) return;
    done = 1;
    char p[600];
    vkt_fuzz_mkdir("configs");
    vkt_fuzz_mkdir("data");
    vkt_fuzz_mkdir("cache");
    static const char text[] = "First Citizen:\nBefore we proceed any further, hear me speak.\n";
    vkt_fuzz_write(p, sizeof p, "data/tinyshakespeare.txt", text, sizeof text - 1);
    /* the cache default and vkt_config_load_text's temporary file stay in the scratch tree */
    setenv("XDG_CACHE_HOME", vkt_fuzz_path(p, sizeof p, "cache"), 1);
    setenv("TMPDIR", vkt_fuzz_dir(), 1);
}

static char *print_config(const vkt_config *cfg) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return NULL;
    vkt_config_print(cfg, f);
    fclose(f);
    return text;
}

static void check_round_trip(const vkt_config *cfg) {
    char err[4096] = "";
    char *text = print_config(cfg);
    if (!text) return;
    vkt_config *again = malloc(sizeof *again);
    if (again) {
        int rc = vkt_config_load_text(again, text, "printed config", NULL, 0, err, sizeof err);
        vkt_fuzz_check(rc == 0, "the printed config does not load again: %s\n%s", err, text);
        char *text2 = rc == 0 ? print_config(again) : NULL;
        if (text2)
            vkt_fuzz_check(!strcmp(text, text2), "the printed config reads back differently:\n"
                           "%s\n----\n%s", text, text2);
        free(text2);
        free(again);
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setup();
    const uint8_t *nul = memchr(data, 0, size);
    size_t file_len = nul ? (size_t)(nul - data) : size;
    char path[600], err[4096] = "";
    vkt_fuzz_write(path, sizeof path, "configs/fuzz.ini", data, file_len);

    /* after the NUL: override lines (NUL-terminated copies) */
    char *rest = NULL, *overrides[MAX_OVERRIDES];
    int n = 0;
    if (nul) {
        size_t rlen = size - file_len - 1;
        rest = malloc(rlen + 1);
        if (!rest) return 0;
        memcpy(rest, nul + 1, rlen);
        rest[rlen] = 0;
        for (char *p = rest; *p && n < MAX_OVERRIDES;) {
            overrides[n++] = p;
            char *nl = strchr(p, '\n');
            if (!nl) break;
            *nl = 0;
            p = nl + 1;
        }
    }
    vkt_config *cfg = malloc(sizeof *cfg);
    if (cfg) {
        int rc = vkt_config_load(cfg, path, (const char *const *)overrides, n, err, sizeof err);
        if (rc) vkt_fuzz_check_msg(err);
        else check_round_trip(cfg);
        free(cfg);
    }
    free(rest);
    return 0;
}
