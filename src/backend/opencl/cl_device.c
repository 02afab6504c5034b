/* OpenCL device enumeration: every device of every platform, described for --list-devices
 * (platform, vendor, name, OpenCL version, driver, memory, compute units, fp16). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/opencl/cl_device.h"

#define MAX_DEVICES 32

static vkt_cl_device devices[MAX_DEVICES];
static int ndevices = -1; /* -1: not enumerated yet */
static char note[384];

static void str_info(const vkt_cl_fns *cl, cl_device_id d, cl_device_info what, char *buf,
                     size_t len) {
    buf[0] = 0;
    if (cl->clGetDeviceInfo(d, what, len, buf, NULL) != CL_SUCCESS) snprintf(buf, len, "?");
    buf[len - 1] = 0;
}

static void append(char *buf, size_t len, const char *fmt, ...) {
    size_t used = strlen(buf);
    if (used + 2 >= len) return;
    if (used) buf[used++] = '\n', buf[used] = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
}

static void fmt_bytes(char *buf, size_t len, double b) {
    if (b >= 1073741824.0) snprintf(buf, len, "%.1f GiB", b / 1073741824.0);
    else if (b >= 1048576.0) snprintf(buf, len, "%.0f MiB", b / 1048576.0);
    else snprintf(buf, len, "%.0f KiB", b / 1024.0);
}

static const char *type_name(cl_device_type t) {
    if (t & CL_DEVICE_TYPE_GPU) return "GPU";
    if (t & CL_DEVICE_TYPE_CPU) return "CPU";
    if (t & CL_DEVICE_TYPE_ACCELERATOR) return "accelerator";
    return "other";
}

static void describe(const vkt_cl_fns *cl, vkt_cl_device *d) {
    vkt_device_info *info = &d->info;
    char version[128], c_version[128], ext[8192];
    cl_uint units = 0, clock = 0;
    cl_ulong mem = 0;
    cl_device_type type = 0;
    str_info(cl, d->id, CL_DEVICE_NAME, info->name, sizeof info->name);
    str_info(cl, d->id, CL_DEVICE_VENDOR, info->vendor, sizeof info->vendor);
    str_info(cl, d->id, CL_DEVICE_VERSION, version, sizeof version);
    str_info(cl, d->id, CL_DEVICE_OPENCL_C_VERSION, c_version, sizeof c_version);
    str_info(cl, d->id, CL_DRIVER_VERSION, d->driver_version, sizeof d->driver_version);
    str_info(cl, d->id, CL_DEVICE_EXTENSIONS, ext, sizeof ext);
    cl->clGetDeviceInfo(d->id, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof units, &units, NULL);
    cl->clGetDeviceInfo(d->id, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof clock, &clock, NULL);
    cl->clGetDeviceInfo(d->id, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL);
    cl->clGetDeviceInfo(d->id, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof d->max_alloc, &d->max_alloc,
                        NULL);
    cl->clGetDeviceInfo(d->id, CL_DEVICE_LOCAL_MEM_SIZE, sizeof d->local_mem, &d->local_mem,
                        NULL);
    cl->clGetDeviceInfo(d->id, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof d->max_wg, &d->max_wg,
                        NULL);
    cl->clGetDeviceInfo(d->id, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    d->fp16 = strstr(ext, "cl_khr_fp16") != NULL;
    d->fp64 = strstr(ext, "cl_khr_fp64") != NULL;
    info->memory_bytes = mem;
    info->max_alloc_bytes = d->max_alloc;
    info->fp16 = d->fp16;
    info->coopmat = 0;
    snprintf(info->driver, sizeof info->driver, "%.60s, %.60s", d->platform_name,
             d->driver_version);
    /* OpenCL reports compute units and clock but not the SIMD width behind them: assume 64
     * fp32 lanes per unit on a GPU (NVIDIA SM / AMD CU class) and 8 on a CPU (one AVX2
     * vector), one fused multiply-add each per cycle. Only `device = auto` uses it. */
    double lanes = (type & CL_DEVICE_TYPE_GPU) ? 64 : 8;
    info->peak_flops = (double)units * clock * 1e6 * lanes * 2;
    info->is_gpu = (type & (CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_ACCELERATOR)) != 0;
    char m[32], alloc[32], local[32];
    fmt_bytes(m, sizeof m, (double)mem);
    fmt_bytes(alloc, sizeof alloc, (double)d->max_alloc);
    fmt_bytes(local, sizeof local, (double)d->local_mem);
    info->details[0] = 0;
    append(info->details, sizeof info->details, "type: %s, %s (%s)", type_name(type), version,
           c_version);
    append(info->details, sizeof info->details, "platform: %s (%s)", d->platform_name,
           d->platform_version);
    append(info->details, sizeof info->details, "driver: %s", d->driver_version);
    append(info->details, sizeof info->details,
           "compute units %u at %u MHz, global memory %s, max allocation %s, local memory %s, "
           "work-group %zu",
           units, clock, m, alloc, local, d->max_wg);
    append(info->details, sizeof info->details, "fp16: cl_khr_fp16 %s; fp64: cl_khr_fp64 %s",
           d->fp16 ? "yes" : "no", d->fp64 ? "yes" : "no");
    append(info->details, sizeof info->details,
           "peak fp32 estimate: rough, compute units x clock x %s lanes x 2",
           (type & CL_DEVICE_TYPE_GPU) ? "64" : "8");
}

static void enumerate(void) {
    ndevices = 0;
    const vkt_cl_fns *cl = vkt_cl_loader_open();
    if (!cl) {
        snprintf(note, sizeof note, "%s", vkt_cl_loader_note());
        return;
    }
    cl_platform_id plats[16];
    cl_uint np = 0;
    cl_int rc = cl->clGetPlatformIDs(16, plats, &np);
    if (rc != CL_SUCCESS || np == 0) {
        snprintf(note, sizeof note,
                 "opencl: no OpenCL platform (%s): install a driver (pocl-opencl-icd for CPUs, "
                 "or the GPU vendor's)",
                 rc != CL_SUCCESS ? vkt_cl_error_name(rc) : "none registered");
        return;
    }
    for (cl_uint p = 0; p < np && p < 16; p++) {
        cl_device_id ids[MAX_DEVICES];
        cl_uint nd = 0;
        if (cl->clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, MAX_DEVICES, ids, &nd) !=
            CL_SUCCESS)
            continue;
        for (cl_uint i = 0; i < nd && i < MAX_DEVICES && ndevices < MAX_DEVICES; i++) {
            vkt_cl_device *d = &devices[ndevices++];
            memset(d, 0, sizeof *d);
            d->platform = plats[p];
            d->id = ids[i];
            cl->clGetPlatformInfo(plats[p], CL_PLATFORM_NAME, sizeof d->platform_name,
                                  d->platform_name, NULL);
            cl->clGetPlatformInfo(plats[p], CL_PLATFORM_VERSION, sizeof d->platform_version,
                                  d->platform_version, NULL);
            d->platform_name[sizeof d->platform_name - 1] = 0;
            d->platform_version[sizeof d->platform_version - 1] = 0;
            describe(cl, d);
        }
    }
    if (ndevices == 0)
        snprintf(note, sizeof note, "opencl: %u platform(s) but no device", (unsigned)np);
}

int vkt_cl_devices_count(void) {
    if (ndevices < 0) enumerate();
    return ndevices;
}

const vkt_cl_device *vkt_cl_devices_get(int index) {
    if (index < 0 || index >= vkt_cl_devices_count()) return NULL;
    return &devices[index];
}

const char *vkt_cl_devices_note(void) {
    vkt_cl_devices_count();
    return note;
}
