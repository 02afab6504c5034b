// LayerNorm of include/vktrain/backend.h (eps 1e-5).

// one work-item per row
__kernel void layernorm_forward(__global float *out, uint o_out, __global float *mean,
                                uint o_mean, __global float *rstd, uint o_rstd,
                                __global const float *inp, uint o_inp,
                                __global const float *w, uint o_w, __global const float *b,
                                uint o_b, uint N, uint C) {
    uint i = get_global_id(0);
    if (i >= N) return;
    uint x0 = o_inp + i * C;
    float s = 0.0f;
    for (uint c = 0; c < C; c++) s += inp[x0 + c];
    float m = s / (float)C;
    float ss = 0.0f;
    for (uint c = 0; c < C; c++) {
        float d = inp[x0 + c] - m;
        ss += d * d;
    }
    float r = 1.0f / sqrt(ss / (float)C + 1e-5f);
    for (uint c = 0; c < C; c++)
        out[o_out + i * C + c] = (inp[x0 + c] - m) * r * w[o_w + c] + b[o_b + c];
    mean[o_mean + i] = m;
    rstd[o_rstd + i] = r;
}

// dinp += ...: one work-item per row
__kernel void layernorm_backward_rows(__global float *dinp, uint o_dinp,
                                      __global const float *dout, uint o_dout,
                                      __global const float *inp, uint o_inp,
                                      __global const float *w, uint o_w,
                                      __global const float *mean, uint o_mean,
                                      __global const float *rstd, uint o_rstd, uint N, uint C) {
    uint i = get_global_id(0);
    if (i >= N) return;
    float m = mean[o_mean + i], r = rstd[o_rstd + i];
    float dm = 0.0f, dnm = 0.0f, cm = 0.0f, cnm = 0.0f; // compensated sums
    for (uint c = 0; c < C; c++) {
        float norm = (inp[o_inp + i * C + c] - m) * r;
        float dnorm = w[o_w + c] * dout[o_dout + i * C + c];
        kahan_add(&dm, &cm, dnorm);
        kahan_add(&dnm, &cnm, dnorm * norm);
    }
    dm /= (float)C;
    dnm /= (float)C;
    for (uint c = 0; c < C; c++) {
        float norm = (inp[o_inp + i * C + c] - m) * r;
        float dnorm = w[o_w + c] * dout[o_dout + i * C + c];
        dinp[o_dinp + i * C + c] += (dnorm - dm - norm * dnm) * r;
    }
}

// dweight += ..., dbias += ...: one work-item per channel, rows in order
__kernel void layernorm_backward_params(__global float *dw, uint o_dw, __global float *db,
                                        uint o_db, __global const float *dout, uint o_dout,
                                        __global const float *inp, uint o_inp,
                                        __global const float *mean, uint o_mean,
                                        __global const float *rstd, uint o_rstd, uint N,
                                        uint C) {
    uint c = get_global_id(0);
    if (c >= C) return;
    float sw = 0.0f, sb = 0.0f, cw = 0.0f, cb = 0.0f; // compensated sums over the rows
    for (uint n = 0; n < N; n++) {
        float d = dout[o_dout + n * C + c];
        float norm = (inp[o_inp + n * C + c] - mean[o_mean + n]) * rstd[o_rstd + n];
        kahan_add(&sw, &cw, d * norm);
        kahan_add(&sb, &cb, d);
    }
    dw[o_dw + c] += sw;
    db[o_db + c] += sb;
}
