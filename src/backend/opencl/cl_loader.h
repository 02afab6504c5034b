/* Internal to the opencl backend: the OpenCL ICD loader (libOpenCL.so.1) and CLBlast
 * (libclblast.so.1) opened at run time (dlopen), so the binary links against neither and every
 * other backend runs on a machine without them. Headers give the types only. */
#ifndef VKT_CL_LOADER_H
#define VKT_CL_LOADER_H

#define CL_TARGET_OPENCL_VERSION 120
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>
#include <clblast_c.h>
#include <stddef.h>

/* The entry points the backend uses (X-macro: one list for the struct and for loading). */
#define VKT_CL_FNS(X)                                                                         \
    X(clGetPlatformIDs)                                                                       \
    X(clGetPlatformInfo)                                                                      \
    X(clGetDeviceIDs)                                                                         \
    X(clGetDeviceInfo)                                                                        \
    X(clCreateContext)                                                                        \
    X(clReleaseContext)                                                                       \
    X(clCreateCommandQueue)                                                                   \
    X(clReleaseCommandQueue)                                                                  \
    X(clCreateBuffer)                                                                         \
    X(clReleaseMemObject)                                                                     \
    X(clEnqueueWriteBuffer)                                                                   \
    X(clEnqueueReadBuffer)                                                                    \
    X(clEnqueueFillBuffer)                                                                    \
    X(clEnqueueCopyBuffer)                                                                    \
    X(clCreateProgramWithSource)                                                              \
    X(clCreateProgramWithBinary)                                                              \
    X(clBuildProgram)                                                                         \
    X(clGetProgramBuildInfo)                                                                  \
    X(clGetProgramInfo)                                                                       \
    X(clReleaseProgram)                                                                       \
    X(clCreateKernel)                                                                         \
    X(clReleaseKernel)                                                                        \
    X(clSetKernelArg)                                                                         \
    X(clEnqueueNDRangeKernel)                                                                 \
    X(clFlush)                                                                                \
    X(clFinish)                                                                               \
    X(clWaitForEvents)                                                                        \
    X(clGetEventProfilingInfo)                                                                \
    X(clReleaseEvent)

#define VKT_CLBLAST_FNS(X)                                                                    \
    X(CLBlastSgemm)                                                                           \
    X(CLBlastOverrideParameters)                                                              \
    X(CLBlastClearCache)

typedef struct vkt_cl_fns {
#define VKT_CL_FIELD(name) __typeof__(&name) name;
    VKT_CL_FNS(VKT_CL_FIELD)
    VKT_CLBLAST_FNS(VKT_CL_FIELD)
#undef VKT_CL_FIELD
} vkt_cl_fns;

/* Opens both libraries on first use; NULL when either is missing or incomplete, with the
 * reason in vkt_cl_loader_note(). VKT_OPENCL_LOADER / VKT_CLBLAST_LIBRARY name other files
 * (a private install, or a missing file to test the no-loader path). */
const vkt_cl_fns *vkt_cl_loader_open(void);
const char *vkt_cl_loader_note(void);

/* "CL_OUT_OF_RESOURCES" for -5, ...; "CL error -N" for codes it does not know. */
const char *vkt_cl_error_name(cl_int code);

#endif
