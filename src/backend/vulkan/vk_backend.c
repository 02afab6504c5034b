/* The vulkan backend's ops table: device enumeration (vk_device.c) and the compute ops
 * (vk_ops.c over vk_context.c, vk_memory.c, vk_pipeline.c). */
#include <stdio.h>
#include <string.h>

#include "backend/vulkan/vk_device.h"
#include "backend/vulkan/vk_ops.h"

static int vk_device_count(void) { return vkt_vk_devices_count(); }

static int vk_device_info(int index, vkt_device_info *out) {
    const vkt_vk_physdev *d = vkt_vk_devices_get(index);
    if (!d) return -1;
    *out = d->info;
    return 0;
}

static void vk_note(char *buf, size_t len) { snprintf(buf, len, "%s", vkt_vk_devices_note()); }

/* fill and copy are timed here rather than in vk_ops.c: each is one transfer command (or,
 * for an overlapping copy, two through a temporary), bracketed as a whole */
static void vk_fill(vkt_backend *be, vkt_ptr dst, float value, size_t n) {
    vkt_vk_prof_begin(vkt_vk(be), "fill");
    vkt_vk_op_fill(be, dst, value, n);
    vkt_vk_prof_end(vkt_vk(be));
}
static void vk_copy(vkt_backend *be, vkt_ptr dst, vkt_ptr src, size_t bytes) {
    vkt_vk_prof_begin(vkt_vk(be), "copy");
    vkt_vk_op_copy(be, dst, src, bytes);
    vkt_vk_prof_end(vkt_vk(be));
}

const vkt_backend_ops vkt_vulkan_backend_ops = {
    .name = "vulkan",
    .device_count = vk_device_count,
    .device_info = vk_device_info,
    .note = vk_note,
    .init = vkt_vk_op_init,
    .shutdown = vkt_vk_op_shutdown,
    .set_option = vkt_vk_set_option,
    .synchronize = vkt_vk_op_synchronize,
    .profile_enable = vkt_vk_op_profile_enable,
    .profile_read = vkt_vk_op_profile_read,
    .alloc = vkt_vk_op_alloc,
    .free = vkt_vk_op_free,
    .own_bytes = vkt_vk_op_own_bytes,
    .upload = vkt_vk_op_upload,
    .download = vkt_vk_op_download,
    .fill = vk_fill,
    .copy = vk_copy,
/* every compute op of backend/ops.def: .<name> = vkt_vk_op_<name> */
#define VKT_OP(name, params, args) .name = vkt_vk_op_##name,
#include "backend/ops.def"
};
