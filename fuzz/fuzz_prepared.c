/* libFuzzer target: a prepared directory's manifest.ini (src/data/prepared.c,
 * vkt_prepared_read); a manifest that reads must write back (vkt_prepared_write) to one that
 * reads the same. */
#include "fuzz_util.h"
#include "vktrain/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[600], dir[600], dir2[600], err[2048] = "";
    vkt_fuzz_mkdir("prep");
    vkt_fuzz_mkdir("prep2");
    vkt_fuzz_write(path, sizeof path, "prep/" VKT_PREPARED_MANIFEST, data, size);
    vkt_fuzz_path(dir, sizeof dir, "prep");
    vkt_fuzz_path(dir2, sizeof dir2, "prep2");
    vkt_prepared m, m2;
    if (vkt_prepared_read(dir, &m, err, sizeof err) != 0) {
        vkt_fuzz_check_msg(err);
        return 0;
    }
    const char *inputs[] = {"fuzz.txt"};
    vkt_fuzz_check(vkt_prepared_write(dir2, &m, inputs, 1, err, sizeof err) == 0,
                   "cannot write the manifest back: %s", err);
    vkt_fuzz_check(vkt_prepared_read(dir2, &m2, err, sizeof err) == 0,
                   "the manifest written back does not read: %s", err);
    vkt_fuzz_check(!memcmp(&m, &m2, sizeof m), "the manifest written back reads differently");
    return 0;
}
