/* Opens the OpenCL ICD loader and CLBlast at run time and fills the backend's entry-point
 * table. A machine without them keeps every other backend: the opencl backend then reports no
 * devices and says why. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/opencl/cl_loader.h"

static vkt_cl_fns fns;
static void *cl_lib, *blast_lib;
static int opened; /* 0: not tried, 1: ok, -1: failed */
static char note[320];

static void *open_lib(const char *env, const char *const *names, size_t n, const char **tried) {
    const char *override = getenv(env);
    *tried = names[0];
    if (override && *override) {
        *tried = override;
        return dlopen(override, RTLD_NOW | RTLD_LOCAL);
    }
    void *h = NULL;
    for (size_t i = 0; !h && i < n; i++) h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    return h;
}

/* dlsym returns an object pointer; POSIX guarantees it converts to a function pointer. */
static int load(void *lib, const char *name, void *dst, const char *libname) {
    void *p = dlsym(lib, name);
    if (!p) {
        snprintf(note, sizeof note, "opencl: %s lacks %s", libname, name);
        return -1;
    }
    memcpy(dst, &p, sizeof p);
    return 0;
}

const vkt_cl_fns *vkt_cl_loader_open(void) {
    if (opened) return opened > 0 ? &fns : NULL;
    opened = -1;
    const char *cl_names[] = {"libOpenCL.so.1", "libOpenCL.so"};
    const char *blast_names[] = {"libclblast.so.1", "libclblast.so"};
    const char *tried;
    cl_lib = open_lib("VKT_OPENCL_LOADER", cl_names, 2, &tried);
    if (!cl_lib) {
        snprintf(note, sizeof note,
                 "opencl: no OpenCL ICD loader (%s): install ocl-icd-libopencl1 and a driver "
                 "(pocl-opencl-icd for CPUs, or the GPU vendor's)", tried);
        return NULL;
    }
#define VKT_CL_LOAD(name)                                                                     \
    if (load(cl_lib, #name, &fns.name, tried)) return NULL;
    VKT_CL_FNS(VKT_CL_LOAD)
#undef VKT_CL_LOAD
    blast_lib = open_lib("VKT_CLBLAST_LIBRARY", blast_names, 2, &tried);
    if (!blast_lib) {
        snprintf(note, sizeof note,
                 "opencl: no CLBlast library (%s), which the opencl backend's matmul uses: "
                 "install libclblast1", tried);
        return NULL;
    }
#define VKT_CL_LOAD(name)                                                                     \
    if (load(blast_lib, #name, &fns.name, tried)) return NULL;
    VKT_CLBLAST_FNS(VKT_CL_LOAD)
#undef VKT_CL_LOAD
    opened = 1;
    return &fns;
}

const char *vkt_cl_loader_note(void) { return note; }

const char *vkt_cl_error_name(cl_int code) {
    switch (code) {
#define N(c) case c: return #c;
        N(CL_SUCCESS) N(CL_DEVICE_NOT_FOUND) N(CL_DEVICE_NOT_AVAILABLE)
        N(CL_COMPILER_NOT_AVAILABLE) N(CL_MEM_OBJECT_ALLOCATION_FAILURE) N(CL_OUT_OF_RESOURCES)
        N(CL_OUT_OF_HOST_MEMORY) N(CL_PROFILING_INFO_NOT_AVAILABLE) N(CL_BUILD_PROGRAM_FAILURE)
        N(CL_INVALID_VALUE) N(CL_INVALID_PLATFORM) N(CL_INVALID_DEVICE) N(CL_INVALID_CONTEXT)
        N(CL_INVALID_COMMAND_QUEUE) N(CL_INVALID_MEM_OBJECT) N(CL_INVALID_BINARY)
        N(CL_INVALID_BUILD_OPTIONS) N(CL_INVALID_PROGRAM) N(CL_INVALID_KERNEL_NAME)
        N(CL_INVALID_KERNEL) N(CL_INVALID_ARG_INDEX) N(CL_INVALID_ARG_VALUE)
        N(CL_INVALID_ARG_SIZE) N(CL_INVALID_KERNEL_ARGS) N(CL_INVALID_WORK_DIMENSION)
        N(CL_INVALID_WORK_GROUP_SIZE) N(CL_INVALID_WORK_ITEM_SIZE) N(CL_INVALID_GLOBAL_OFFSET)
        N(CL_INVALID_EVENT) N(CL_INVALID_BUFFER_SIZE) N(CL_INVALID_GLOBAL_WORK_SIZE)
#undef N
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR (no OpenCL driver installed)";
    default: {
        static _Thread_local char buf[32];
        snprintf(buf, sizeof buf, "CL error %d", (int)code);
        return buf;
    }
    }
}
