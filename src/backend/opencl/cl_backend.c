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
/* every compute op of backend/ops.def: .<name> = vkt_cl_op_<name> */
#define VKT_OP(name, params, args) .name = vkt_cl_op_##name,
#include "backend/ops.def"
};
