/* The opencl backend's ops table: device enumeration (cl_device.c) and the ops (cl_ops.c,
 * cl_gemm.c over cl_context.c). */
#include <stdio.h>

#include "backend/opencl/cl_ops.h"

static int cl_dev_count(void) { return vkt_cl_devices_count(); }

static int cl_dev_info(int index, vkt_device_info *out) {
    const vkt_cl_device *d = vkt_cl_devices_get(index);
    if (!d) return -1;
    *out = d->info;
    return 0;
}

static void cl_note(char *buf, size_t len) { snprintf(buf, len, "%s", vkt_cl_devices_note()); }

const vkt_backend_ops vkt_opencl_backend_ops = {
    .name = "opencl",
    .device_count = cl_dev_count,
    .device_info = cl_dev_info,
    .note = cl_note,
    .init = vkt_cl_op_init,
    .shutdown = vkt_cl_op_shutdown,
    .set_option = vkt_cl_set_option,
    .synchronize = vkt_cl_op_synchronize,
    .profile_enable = vkt_cl_op_profile_enable,
    .profile_read = vkt_cl_op_profile_read,
    .alloc = vkt_cl_op_alloc,
    .free = vkt_cl_op_free,
    .own_bytes = vkt_cl_op_own_bytes,
    .upload = vkt_cl_op_upload,
    .download = vkt_cl_op_download,
    .fill = vkt_cl_op_fill,
    .copy = vkt_cl_op_copy,
    .encoder_forward = vkt_cl_op_encoder_forward,
    .encoder_backward = vkt_cl_op_encoder_backward,
    .layernorm_forward = vkt_cl_op_layernorm_forward,
    .layernorm_backward = vkt_cl_op_layernorm_backward,
    .matmul = vkt_cl_op_matmul,
    .to_half = vkt_cl_op_to_half,
    .bias_backward = vkt_cl_op_bias_backward,
    .attention_forward = vkt_cl_op_attention_forward,
    .attention_backward = vkt_cl_op_attention_backward,
    .gelu_forward = vkt_cl_op_gelu_forward,
    .gelu_backward = vkt_cl_op_gelu_backward,
    .residual_forward = vkt_cl_op_residual_forward,
    .softmax_xent = vkt_cl_op_softmax_xent,
    .adamw = vkt_cl_op_adamw,
    .sumsq = vkt_cl_op_sumsq,
    .sum_into = vkt_cl_op_sum_into,
    .scale = vkt_cl_op_scale,
};
