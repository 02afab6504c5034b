// Shared by every kernel: the files of cl/ are concatenated, this one first, into one program
// (cmake/EmbedText.cmake), built once per device at run time and cached (cl_context.c).
//
// Conventions the host code (src/backend/opencl/cl_ops.c) relies on:
//  - buffers come as (__global pointer, uint element offset) pairs, in the order of the op's
//    arguments in include/vktrain/backend.h: outputs first, then inputs, then weights; an
//    absent optional buffer is NULL and flagged off;
//  - sizes and flags are uint, scalars float; one work-item per element, row or channel, the
//    grid rounded up to the work-group size (kernels test their bounds).
//
// No contraction into fused multiply-adds: results should round like the cpu reference's C,
// which the tests compare against at 1e-4 relative.
#pragma OPENCL FP_CONTRACT OFF

#ifdef VKT_TEST_BUILD_FAILURE // set through VKT_OPENCL_BUILD_OPTIONS by test_opencl_devices
#error "build failure requested by VKT_TEST_BUILD_FAILURE"
#endif

#define GELU_SCALE 0.7978845608028654f

// True when x is inf or NaN, by its exponent bits (immune to fast-math folding).
inline bool not_finite(float x) { return ((as_uint(x) >> 23) & 0xffu) == 0xffu; }

// A compensated (Kahan) running sum: s += x with the lost low part carried in *c, so a long
// float sum of terms that cancel stays near the reference's double sum.
inline void kahan_add(float *s, float *c, float x) {
    float y = x - *c, t = *s + y;
    *c = (t - *s) - y;
    *s = t;
}
