/* The vulkan backend's ops table. This version enumerates and describes devices only: init
 * and the ops stay NULL, and the registry refuses to train on it with a message. */
#include <stdio.h>
#include <string.h>

#include "backend/vulkan/vk_device.h"

static int vk_device_count(void) { return vkt_vk_devices_count(); }

static int vk_device_info(int index, vkt_device_info *out) {
    const vkt_vk_physdev *d = vkt_vk_devices_get(index);
    if (!d) return -1;
    *out = d->info;
    return 0;
}

static void vk_note(char *buf, size_t len) { snprintf(buf, len, "%s", vkt_vk_devices_note()); }

const vkt_backend_ops vkt_vulkan_backend_ops = {
    .name = "vulkan",
    .device_count = vk_device_count,
    .device_info = vk_device_info,
    .note = vk_note,
    /* .init and every op: NULL until the compute ops land (vkt_backend_create says so) */
};
