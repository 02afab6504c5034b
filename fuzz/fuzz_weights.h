/* What the checkpoint and llm.c targets check of weights that read: as many floats as the shape
 * implies, each of them (parameters, moments, config text) readable. */
#ifndef VKT_FUZZ_WEIGHTS_H
#define VKT_FUZZ_WEIGHTS_H

#include "fuzz_util.h"
#include "vktrain/checkpoint.h"

/* Touches every byte the reader handed back (ASan catches a short buffer) and frees ck. */
static inline void vkt_fuzz_use_weights(vkt_checkpoint *ck) {
    vkt_param_tensor t[VKT_NUM_PARAM_TENSORS];
    vkt_fuzz_check(vkt_gpt2_param_layout(&ck->shape, t) == ck->num_params,
                   "num_params does not match the shape");
    uint64_t sum = 0;
    for (size_t i = 0; i < ck->num_params; i++) sum += ck->params[i] != 0;
    if (ck->adam)
        for (size_t i = 0; i < 2 * ck->num_params; i++) sum += ck->adam[i] != 0;
    if (ck->config_text) sum += strlen(ck->config_text);
    vkt_fuzz_sink = sum;
    vkt_checkpoint_free(ck);
}

#endif
