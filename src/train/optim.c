/* Optimizer steps over the model's parameter tensors, and the gradient norm for clipping. */
#include <math.h>

#include "vktrain/train.h"

void vkt_optim_adamw_step(vkt_model *m, const vkt_optim_args *a) {
    vkt_backend *be = vkt_model_backend(m);
    const vkt_param_tensor *t = vkt_model_tensors(m);
    vkt_ptr half = vkt_model_params_half(m); /* precision = fp16: refreshed with the update */
    /* one update per tensor: only matrices get weight decay */
    for (int i = 0; i < VKT_NUM_PARAM_TENSORS; i++) {
        size_t off = t[i].offset * sizeof(float);
        vkt_adamw_args args = {.lr = a->lr, .beta1 = a->beta1, .beta2 = a->beta2, .eps = a->eps,
                               .weight_decay = t[i].decay ? a->weight_decay : 0.0f,
                               .grad_scale = a->grad_scale, .t = a->t,
                               .norm_sq = a->norm_sq, .max_norm = a->max_norm,
                               .params_half = half.buf ? vkt_ptr_addf(half, t[i].offset)
                                                       : VKT_NULL_PTR};
        vkt_adamw(be, vkt_at(vkt_model_params(m), off), vkt_at(vkt_model_grads(m), off),
                  vkt_at(vkt_model_adam_m(m), off), vkt_at(vkt_model_adam_v(m), off), t[i].size,
                  &args);
    }
}

float vkt_clip_scale(float norm, float max_norm) { return vkt_clip_factor(norm, max_norm); }

void vkt_grad_norm_sq(vkt_model *m, vkt_ptr out) {
    vkt_sumsq(vkt_model_backend(m), out, vkt_at(vkt_model_grads(m), 0), vkt_model_num_params(m));
}
