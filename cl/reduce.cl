// Reductions of include/vktrain/backend.h.

#define RED 256 // work-group size of sumsq and sum_into (cl_ops.c launches one group)

// out = sum x^2 (accumulate != 0: out +=); out += s * sum x. One work-group of RED items,
// strided partial sums, then a local-memory tree.
__kernel void sumsq(__global float *out, uint o_out, __global const float *x, uint o_x, uint n,
                    uint accumulate) {
    __local float part[RED];
    uint t = get_local_id(0);
    float acc = 0.0f;
    for (uint i = t; i < n; i += RED) {
        float v = x[o_x + i];
        acc += v * v;
    }
    part[t] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint w = RED / 2; w > 0; w >>= 1) {
        if (t < w) part[t] += part[t + w];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (t == 0) out[o_out] = accumulate ? out[o_out] + part[0] : part[0];
}

__kernel void sum_into(__global float *out, uint o_out, __global const float *x, uint o_x,
                       uint n, float s) {
    __local float part[RED];
    uint t = get_local_id(0);
    float acc = 0.0f;
    for (uint i = t; i < n; i += RED) acc += x[o_x + i];
    part[t] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint w = RED / 2; w > 0; w >>= 1) {
        if (t < w) part[t] += part[t + w];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (t == 0) out[o_out] += s * part[0];
}

// dbias(N) += column sums of dout(M,N): one work-item per column, rows in order
__kernel void bias_backward(__global float *dbias, uint o_dbias, __global const float *dout,
                            uint o_dout, uint M, uint N) {
    uint j = get_global_id(0);
    if (j >= N) return;
    float acc = 0.0f, carry = 0.0f; // compensated: the column may cancel
    for (uint i = 0; i < M; i++) kahan_add(&acc, &carry, dout[o_dout + i * N + j]);
    dbias[o_dbias + j] += acc;
}
