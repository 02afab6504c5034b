/* libFuzzer target: an llm.c model file (src/train/llmc_model.c, vkt_llmc_model_parse on the
 * bytes: the same code vkt_llmc_model_read runs on a file); a file that reads must hold as
 * many floats as its (re-padded) shape. */
#include "fuzz_util.h"
#include "vktrain/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[2048] = "";
    vkt_checkpoint ck;
    if (vkt_llmc_model_parse(data, size, "model.bin", &ck, err, sizeof err) != 0) {
        vkt_fuzz_check_msg(err);
        return 0;
    }
    vkt_param_tensor t[VKT_NUM_PARAM_TENSORS];
    vkt_fuzz_check(vkt_gpt2_param_layout(&ck.shape, t) == ck.num_params,
                   "num_params does not match the shape");
    uint64_t sum = 0;
    for (size_t i = 0; i < ck.num_params; i++) sum += ck.params[i] != 0;
    vkt_fuzz_sink = sum;
    vkt_checkpoint_free(&ck);
    return 0;
}
