/* Internal to the opencl backend: the ops-table entries (cl_ops.c, cl_gemm.c). */
#ifndef VKT_CL_OPS_H
#define VKT_CL_OPS_H

#include "backend/opencl/cl_context.h"

int vkt_cl_op_init(vkt_backend *be, char *err, size_t errlen);
void vkt_cl_op_shutdown(vkt_backend *be);
void vkt_cl_op_synchronize(vkt_backend *be);
int vkt_cl_op_profile_enable(vkt_backend *be, int on);
int vkt_cl_op_profile_read(vkt_backend *be, vkt_profile_entry *out, int max);
int vkt_cl_set_option(vkt_backend *be, const char *key, const char *value, char *err,
                      size_t errlen);

vkt_buf *vkt_cl_op_alloc(vkt_backend *be, size_t bytes, char *err, size_t errlen);
void vkt_cl_op_free(vkt_backend *be, vkt_buf *b);
uint64_t vkt_cl_op_own_bytes(vkt_backend *be); /* op scratch */
void vkt_cl_op_upload(vkt_backend *be, vkt_ptr dst, const void *src, size_t bytes);
void vkt_cl_op_download(vkt_backend *be, void *dst, vkt_ptr src, size_t bytes);
void vkt_cl_op_fill(vkt_backend *be, vkt_ptr dst, float value, size_t n);
void vkt_cl_op_copy(vkt_backend *be, vkt_ptr dst, vkt_ptr src, size_t bytes);

void vkt_cl_op_encoder_forward(vkt_backend *, vkt_ptr, vkt_ptr, vkt_ptr, vkt_ptr, int, int, int);
void vkt_cl_op_encoder_backward(vkt_backend *, vkt_ptr, vkt_ptr, vkt_ptr, vkt_ptr, int, int,
                                int);
void vkt_cl_op_layernorm_forward(vkt_backend *, vkt_ptr, vkt_ptr, vkt_ptr, vkt_ptr, vkt_ptr,
                                 vkt_ptr, int, int);
void vkt_cl_op_layernorm_backward(vkt_backend *, vkt_ptr, vkt_ptr, vkt_ptr, vkt_ptr, vkt_ptr,
                                  vkt_ptr, vkt_ptr, vkt_ptr, int, int);
void vkt_cl_op_bias_backward(vkt_backend *, vkt_ptr, vkt_ptr, int, int);
void vkt_cl_op_attention_forward(vkt_backend *, vkt_ptr, vkt_ptr, vkt_ptr, int, int, int, int);
void vkt_cl_op_attention_backward(vkt_backend *, vkt_ptr, vkt_ptr, vkt_ptr, vkt_ptr, int, int,
                                  int, int);
void vkt_cl_op_gelu_forward(vkt_backend *, vkt_ptr, vkt_ptr, size_t);
void vkt_cl_op_gelu_backward(vkt_backend *, vkt_ptr, vkt_ptr, vkt_ptr, size_t);
void vkt_cl_op_residual_forward(vkt_backend *, vkt_ptr, vkt_ptr, vkt_ptr, size_t);
void vkt_cl_op_softmax_xent(vkt_backend *, vkt_ptr, vkt_ptr, vkt_ptr, int, int, int, float,
                            int);
void vkt_cl_op_adamw(vkt_backend *, vkt_ptr, vkt_ptr, vkt_ptr, vkt_ptr, size_t,
                     const vkt_adamw_args *);
void vkt_cl_op_sumsq(vkt_backend *, vkt_ptr, vkt_ptr, size_t);
void vkt_cl_op_sum_into(vkt_backend *, vkt_ptr, vkt_ptr, size_t, float);
void vkt_cl_op_scale(vkt_backend *, vkt_ptr, float, size_t);

#endif
