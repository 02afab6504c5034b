/* Internal to the vulkan backend: the ops table entries (vk_ops.c). */
#ifndef VKT_VK_OPS_H
#define VKT_VK_OPS_H

#include "backend/vulkan/vk_context.h"

int vkt_vk_op_init(vkt_backend *be, char *err, size_t errlen);
void vkt_vk_op_shutdown(vkt_backend *be);
void vkt_vk_op_synchronize(vkt_backend *be);
vkt_buf *vkt_vk_op_alloc(vkt_backend *be, size_t bytes, char *err, size_t errlen);
void vkt_vk_op_free(vkt_backend *be, vkt_buf *buf);
uint64_t vkt_vk_op_own_bytes(vkt_backend *be); /* staging ring + op scratch */
void vkt_vk_op_upload(vkt_backend *be, vkt_ptr dst, const void *src, size_t bytes);
void vkt_vk_op_download(vkt_backend *be, void *dst, vkt_ptr src, size_t bytes);
void vkt_vk_op_fill(vkt_backend *be, vkt_ptr dst, float value, size_t n);
void vkt_vk_op_copy(vkt_backend *be, vkt_ptr dst, vkt_ptr src, size_t bytes);
void vkt_vk_op_encoder_forward(vkt_backend *, vkt_ptr, vkt_ptr, vkt_ptr, vkt_ptr, int, int, int);
void vkt_vk_op_encoder_backward(vkt_backend *, vkt_ptr, vkt_ptr, vkt_ptr, vkt_ptr, int, int,
                                int);
void vkt_vk_op_layernorm_forward(vkt_backend *, vkt_ptr, vkt_ptr, vkt_ptr, vkt_ptr, vkt_ptr,
                                 vkt_ptr, int, int);
void vkt_vk_op_layernorm_backward(vkt_backend *, vkt_ptr, vkt_ptr, vkt_ptr, vkt_ptr, vkt_ptr,
                                  vkt_ptr, vkt_ptr, vkt_ptr, int, int);
void vkt_vk_op_matmul(vkt_backend *, vkt_ptr, vkt_ptr, vkt_ptr, vkt_ptr, int, int, int, int, int,
                      float, float);
void vkt_vk_op_bias_backward(vkt_backend *, vkt_ptr, vkt_ptr, int, int);
void vkt_vk_op_attention_forward(vkt_backend *, vkt_ptr, vkt_ptr, vkt_ptr, int, int, int, int);
void vkt_vk_op_attention_backward(vkt_backend *, vkt_ptr, vkt_ptr, vkt_ptr, vkt_ptr, int, int,
                                  int, int);
void vkt_vk_op_gelu_forward(vkt_backend *, vkt_ptr, vkt_ptr, size_t);
void vkt_vk_op_gelu_backward(vkt_backend *, vkt_ptr, vkt_ptr, vkt_ptr, size_t);
void vkt_vk_op_residual_forward(vkt_backend *, vkt_ptr, vkt_ptr, vkt_ptr, size_t);
void vkt_vk_op_softmax_xent(vkt_backend *, vkt_ptr, vkt_ptr, vkt_ptr, int, int, int, float, int);
void vkt_vk_op_adamw(vkt_backend *, vkt_ptr, vkt_ptr, vkt_ptr, vkt_ptr, size_t,
                     const vkt_adamw_args *);
void vkt_vk_op_sumsq(vkt_backend *, vkt_ptr, vkt_ptr, size_t);
void vkt_vk_op_sum_into(vkt_backend *, vkt_ptr, vkt_ptr, size_t, float);
void vkt_vk_op_scale(vkt_backend *, vkt_ptr, float, size_t);
void vkt_vk_op_to_half(vkt_backend *, vkt_ptr, vkt_ptr, size_t);

#endif
