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

/* The compute ops (backend/ops.def): vkt_cl_op_<name> (matmul and to_half in cl_gemm.c) */
#define VKT_OP(name, params, args) vkt_op_##name##_fn vkt_cl_op_##name;
#include "backend/ops.def"

#endif
