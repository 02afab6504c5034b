// Fused softmax + cross-entropy of include/vktrain/backend.h: one work-group of 64 items per
// row; local-memory max and sum, then the gradient in place of the logits (want_grad).

#define SX 64

__kernel void softmax_xent(__global float *losses, uint o_losses, __global float *logits,
                           uint o_logits, __global const int *targets, uint o_targets, uint N,
                           uint V, uint Vp, uint want_grad, float grad_scale) {
    __local float red[SX];
    uint n = get_group_id(0), t = get_local_id(0);
    if (n >= N) return; // uniform over the work-group
    uint row = o_logits + n * Vp;
    int tgt = targets[o_targets + n];
    if (tgt < 0) {
        if (t == 0) losses[o_losses + n] = 0.0f;
        if (want_grad)
            for (uint v = t; v < Vp; v += SX) logits[row + v] = 0.0f;
        return;
    }
    float mx = -FLT_MAX;
    for (uint v = t; v < V; v += SX) mx = fmax(mx, logits[row + v]);
    red[t] = mx;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint w = SX / 2; w > 0; w >>= 1) {
        if (t < w) red[t] = fmax(red[t], red[t + w]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    mx = red[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    float s = 0.0f;
    for (uint v = t; v < V; v += SX) s += exp(logits[row + v] - mx);
    red[t] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint w = SX / 2; w > 0; w >>= 1) {
        if (t < w) red[t] += red[t + w];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    s = red[0];
    float xt = logits[row + (uint)tgt];
    barrier(CLK_GLOBAL_MEM_FENCE); // everyone has read logits[tgt] before it is overwritten
    if (t == 0) losses[o_losses + n] = log(s) - (xt - mx);
    if (want_grad) {
        float inv = 1.0f / s;
        for (uint v = t; v < V; v += SX) {
            float p = exp(logits[row + v] - mx) * inv;
            logits[row + v] = (p - (v == (uint)tgt ? 1.0f : 0.0f)) * grad_scale;
        }
        for (uint v = V + t; v < Vp; v += SX) logits[row + v] = 0.0f;
    }
}
