// Token + position embedding of include/vktrain/backend.h.

// one work-item per output element
__kernel void encoder_forward(__global float *out, uint o_out, __global const int *tok,
                              uint o_tok, __global const float *wte, uint o_wte,
                              __global const float *wpe, uint o_wpe, uint B, uint T, uint C) {
    uint i = get_global_id(0);
    if (i >= B * T * C) return;
    uint bt = i / C, c = i % C, t = bt % T;
    uint tk = (uint)tok[o_tok + bt];
    out[o_out + i] = wte[o_wte + tk * C + c] + wpe[o_wpe + t * C + c];
}

// one work-item per channel, positions in order (several positions may share a token row):
// the sums are the cpu reference's, in its order
__kernel void encoder_backward(__global float *dwte, uint o_dwte, __global float *dwpe,
                               uint o_dwpe, __global const float *dout, uint o_dout,
                               __global const int *tok, uint o_tok, uint B, uint T, uint C) {
    uint c = get_global_id(0);
    if (c >= C) return;
    for (uint bt = 0; bt < B * T; bt++) {
        float d = dout[o_dout + bt * C + c];
        uint tk = (uint)tok[o_tok + bt];
        dwte[o_dwte + tk * C + c] += d;
        dwpe[o_dwpe + (bt % T) * C + c] += d;
    }
}
