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
                               .grad_scale = a->grad_scale, .t = a->t};
        vkt_adamw(be, vkt_at(vkt_model_params(m), off), vkt_at(vkt_model_grads(m), off),
                  vkt_at(vkt_model_adam_m(m), off), vkt_at(vkt_model_adam_v(m), off), t[i].size,
                  &args);
    }
}

float vkt_clip_scale(float norm, float max_norm) {
    return max_norm > 0 && norm > max_norm ? max_norm / norm : 1.0f;
}

float vkt_grad_norm(vkt_model *m, vkt_buf *scalar) {
    vkt_backend *be = vkt_model_backend(m);
    float ss;
    vkt_sumsq(be, vkt_at(scalar, 0), vkt_at(vkt_model_grads(m), 0), vkt_model_num_params(m));
    vkt_download(be, &ss, vkt_at(scalar, 0), sizeof ss);
    return sqrtf(ss);
}
