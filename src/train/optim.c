/* Optimizer steps over the model's parameter tensors, and the gradient norm for clipping. */
#include <math.h>

#include "vktrain/train.h"

void vkt_optim_adamw_step(vkt_model *m, const vkt_optim_args *a) {
    vkt_backend *be = vkt_model_backend(m);
    const vkt_param_tensor *t = vkt_model_tensors(m);
    /* one update per tensor: only matrices get weight decay */
    for (int i = 0; i < VKT_NUM_PARAM_TENSORS; i++) {
        size_t off = t[i].offset * sizeof(float);
        vkt_adamw_args args = {.lr = a->lr, .beta1 = a->beta1, .beta2 = a->beta2, .eps = a->eps,
                               .weight_decay = t[i].decay ? a->weight_decay : 0.0f,
                               .grad_scale = a->grad_scale, .t = a->t,
                               .norm_sq = a->norm_sq, .max_norm = a->max_norm};
        vkt_adamw(be, vkt_at(vkt_model_params(m), off), vkt_at(vkt_model_grads(m), off),
                  vkt_at(vkt_model_adam_m(m), off), vkt_at(vkt_model_adam_v(m), off), t[i].size,
                  &args);
    }
    vkt_model_params_changed(m); /* precision = fp16: the weights' fp16 copy */
}

float vkt_clip_scale(float norm, float max_norm) { return vkt_clip_factor(norm, max_norm); }

void vkt_grad_norm_sq(vkt_model *m, vkt_ptr out) {
    vkt_sumsq(vkt_model_backend(m), out, vkt_at(vkt_model_grads(m), 0), vkt_model_num_params(m));
}
