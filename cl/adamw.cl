// AdamW of include/vktrain/backend.h (llm.c's form), one work-item per element. The clip
// factor is computed here from norm_sq (one float; NULL when there is none), so no host round
// trip decides it; a non-finite norm_sq leaves params, m and v untouched.

__kernel void adamw(__global float *p, uint o_p, __global const float *g, uint o_g,
                    __global float *m, uint o_m, __global float *v, uint o_v,
                    __global const float *norm_sq, uint o_ns, uint has_norm, uint n, float lr,
                    float beta1, float beta2, float eps, float weight_decay, float grad_scale,
                    float bc1, float bc2, float max_norm) {
    uint i = get_global_id(0);
    if (i >= n) return;
    float gs = grad_scale;
    if (has_norm) {
        float ns = norm_sq[o_ns];
        if (not_finite(ns)) return;
        float norm = sqrt(ns) * grad_scale;
        if (max_norm > 0.0f && norm > max_norm) gs *= max_norm / norm;
    }
    float grad = g[o_g + i] * gs;
    float mi = beta1 * m[o_m + i] + (1.0f - beta1) * grad;
    float vi = beta2 * v[o_v + i] + (1.0f - beta2) * grad * grad;
    m[o_m + i] = mi;
    v[o_v + i] = vi;
    float mhat = mi / bc1, vhat = vi / bc2;
    float pi = p[o_p + i];
    p[o_p + i] = pi - lr * (mhat / (sqrt(vhat) + eps) + weight_decay * pi);
}
