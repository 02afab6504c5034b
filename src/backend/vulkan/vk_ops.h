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
/* The compute ops (backend/ops.def): vkt_vk_op_<name> */
#define VKT_OP(name, params, args) vkt_op_##name##_fn vkt_vk_op_##name;
#include "backend/ops.def"

#endif
