/* libFuzzer target: an llm.c model file (src/train/llmc_model.c, vkt_llmc_model_parse on the
 * bytes: the same code vkt_llmc_model_read runs on a file); a file that reads must hold as
 * many floats as its (re-padded) shape. */
#include "fuzz_weights.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[2048] = "";
    vkt_checkpoint ck;
    if (vkt_llmc_model_parse(data, size, "model.bin", &ck, err, sizeof err) != 0) {
        vkt_fuzz_check_msg(err);
        return 0;
    }
    vkt_fuzz_use_weights(&ck);
    return 0;
}
