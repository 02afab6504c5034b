/* Internal to the opencl backend: every device of every OpenCL platform, enumerated once, with
 * what --list-devices and device selection need. */
#ifndef VKT_CL_DEVICE_H
#define VKT_CL_DEVICE_H

#include "backend/backend_impl.h"
#include "backend/opencl/cl_loader.h"

typedef struct vkt_cl_device {
    cl_platform_id platform;
    cl_device_id id;
    char platform_name[128], platform_version[128], driver_version[128];
    cl_ulong max_alloc, local_mem;
    size_t max_wg;
    int fp16, fp64; /* cl_khr_fp16, cl_khr_fp64 */
    vkt_device_info info;
} vkt_cl_device;

/* Enumerates on first use; later calls return the cache. 0 devices when there is no loader,
 * no platform or no device (vkt_cl_devices_note says which). */
int vkt_cl_devices_count(void);
const vkt_cl_device *vkt_cl_devices_get(int index); /* NULL when out of range */
const char *vkt_cl_devices_note(void);              /* "" when devices were found */

#endif
