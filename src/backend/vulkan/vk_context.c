/* The vulkan backend's device context: one VkDevice with one compute queue, one command
 * buffer that records everything queued since the last host round trip, and the fence that
 * flush waits on. Ops append to the open command buffer; download/synchronize flush it. */
#include <stdlib.h>
#include <string.h>

#include "backend/vulkan/vk_context.h"

/* VK_KHR_cooperative_matrix's feature struct (headers before 1.3.255 lack it). */
typedef struct vkt_coopmat_features {
    VkStructureType sType;
    void *pNext;
    VkBool32 cooperativeMatrix;
    VkBool32 cooperativeMatrixRobustBufferAccess;
} vkt_coopmat_features;
#define VKT_STRUCTURE_TYPE_COOPMAT_FEATURES ((VkStructureType)1000506000)

int vkt_vk_check(vkt_vk_ctx *c, const char *call, VkResult r) {
    if (r == VK_SUCCESS) return 0;
    vkt_backend_fail(c->be, call, vkt_vk_result_name(r),
                     r == VK_ERROR_OUT_OF_DEVICE_MEMORY
                         ? "a smaller batch_size, seq_len or model"
                         : NULL);
    return 1;
}

/* An init step failed: its sticky error becomes init's message. */
static int init_failed(vkt_backend *be, char *err, size_t errlen) {
    if (!err[0]) vkt_backend_error(be, err, errlen);
    vkt_vk_context_shutdown(be);
    return -1;
}

int vkt_vk_context_init(vkt_backend *be, char *err, size_t errlen) {
    const vkt_vk_physdev *phys = vkt_vk_devices_get(be->device);
    const vkt_vk_fns *vk = vkt_vk_instance_fns();
    if (!phys || !vk) {
        snprintf(err, errlen, "vulkan:%d: no such device", be->device);
        return -1;
    }
    vkt_vk_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of host memory");
        return -1;
    }
    be->ctx = c;
    c->be = be;
    c->phys = phys;
    vk->vkGetPhysicalDeviceProperties(phys->pd, &c->props);
    vk->vkGetPhysicalDeviceMemoryProperties(phys->pd, &c->memprops);
    c->max_range = c->props.limits.maxStorageBufferRange & ~(VkDeviceSize)255;
    const char *mr = getenv("VKT_VULKAN_MAX_RANGE"); /* tests: a small range forces splits */
    if (mr && atol(mr) >= 4096 && (VkDeviceSize)atol(mr) < c->max_range)
        c->max_range = (VkDeviceSize)atol(mr) & ~(VkDeviceSize)255;

    uint32_t nq = 0;
    vk->vkGetPhysicalDeviceQueueFamilyProperties(phys->pd, &nq, NULL);
    VkQueueFamilyProperties qf[32];
    if (nq > 32) nq = 32;
    vk->vkGetPhysicalDeviceQueueFamilyProperties(phys->pd, &nq, qf);
    int fam = -1;
    for (uint32_t i = 0; i < nq && fam < 0; i++) /* prefer a compute-only family */
        if ((qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) &&
            !(qf[i].queueFlags & VK_QUEUE_GRAPHICS_BIT))
            fam = (int)i;
    for (uint32_t i = 0; i < nq && fam < 0; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) fam = (int)i;
    if (fam < 0) {
        snprintf(err, errlen, "vulkan:%d (%s): no compute queue", be->device, phys->info.name);
        vkt_vk_context_shutdown(be);
        return -1;
    }
    c->queue_family = (uint32_t)fam;
    c->prof_valid_bits = qf[fam].timestampValidBits;

    /* optional features: fp16 arithmetic (a 1.2 core structure); for cooperative matrices
     * the memory model plus the KHR extension, and VK_NV_cooperative_matrix2 on top; subgroup
     * size control, so that kernels laid out for one subgroup size get it */
    const char *exts[5];
    uint32_t next = 0;
    VkPhysicalDeviceShaderFloat16Int8Features f16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
    VkPhysicalDevice16BitStorageFeatures s16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    VkPhysicalDeviceVulkanMemoryModelFeatures mm = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES};
    vkt_coopmat_features cm = {.sType = VKT_STRUCTURE_TYPE_COOPMAT_FEATURES};
    VkPhysicalDeviceCooperativeMatrix2FeaturesNV cm2 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_2_FEATURES_NV};
    VkPhysicalDeviceSubgroupSizeControlFeatures ssc = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES};
    void *chain = NULL;
    int v12 = phys->api_version >= VK_API_VERSION_1_2 && vk->vkGetPhysicalDeviceFeatures2;
    if (v12) {
        VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
        f16.pNext = &s16;
        s16.pNext = &mm;
        void **tail = &mm.pNext;
        if (phys->info.coopmat) {
            *tail = &cm;
            tail = &cm.pNext;
        }
        if (phys->cm2) {
            *tail = &cm2;
            tail = &cm2.pNext;
        }
        if (phys->size_control) *tail = &ssc;
        f2.pNext = &f16;
        vk->vkGetPhysicalDeviceFeatures2(phys->pd, &f2);
        /* keep only what we use */
        VkBool32 half = f16.shaderFloat16;
        /* a test knob: behave like a device without fp16 arithmetic (the fp16 tiers and
         * precision = fp16 are then refused, naming shaderFloat16) */
        const char *no16 = getenv("VKT_VULKAN_DISABLE_FP16");
        if (no16 && !strcmp(no16, "1")) half = VK_FALSE;
        /* likewise without subgroupBroadcast (the direct matmul tiers are then refused) */
        const char *nosub = getenv("VKT_VULKAN_DISABLE_SUBGROUP");
        c->subgroup_ballot = phys->subgroup_ballot && !(nosub && !strcmp(nosub, "1"));
        c->shader_f16 = half == VK_TRUE;
        VkBool32 model = mm.vulkanMemoryModel, coop = cm.cooperativeMatrix;
        f16.shaderInt8 = VK_FALSE;
        f16.shaderFloat16 = half;
        s16.uniformAndStorageBuffer16BitAccess = s16.storagePushConstant16 =
            s16.storageInputOutput16 = VK_FALSE;
        /* 16-bit storage where the device has it (with fp16 arithmetic): the fp16 matmul
         * tiers' *_s16 variants and coopmat2 read fp16 tensors as fp16; without it the
         * others read them as 32-bit words. A test knob turns it off, so the fallback is
         * tested on devices that have it. */
        const char *no_s16 = getenv("VKT_VULKAN_DISABLE_STORAGE16");
        VkBool32 sb16 = s16.storageBuffer16BitAccess && half &&
                        !(no_s16 && !strcmp(no_s16, "1"));
        s16.storageBuffer16BitAccess = sb16;
        c->storage16 = sb16 == VK_TRUE;
        mm.vulkanMemoryModelDeviceScope = mm.vulkanMemoryModelAvailabilityVisibilityChains =
            VK_FALSE;
        mm.vulkanMemoryModel = phys->info.coopmat ? model : VK_FALSE;
        cm.cooperativeMatrixRobustBufferAccess = VK_FALSE;
        if (phys->info.coopmat && coop && model) {
            exts[next++] = VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME;
            c->coopmat_on = 1;
        }
        /* coopmat2: the features vk_device.c checked; reductions and block loads unused */
        cm2.cooperativeMatrixReductions = cm2.cooperativeMatrixBlockLoads = VK_FALSE;
        if (c->coopmat_on && phys->cm2) {
            exts[next++] = VK_NV_COOPERATIVE_MATRIX_2_EXTENSION_NAME;
            c->cm2_on = 1;
        }
        if (phys->size_control) {
            if (phys->api_version < VK_API_VERSION_1_3)
                exts[next++] = VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME;
            c->size_control = ssc.subgroupSizeControl && ssc.computeFullSubgroups;
        }
        /* the chain as enabled: f16 -> s16 -> mm [-> cm] [-> cm2] [-> ssc] */
        tail = &mm.pNext;
        *tail = NULL;
        if (c->coopmat_on) {
            *tail = &cm;
            tail = &cm.pNext;
            *tail = NULL;
        }
        if (c->cm2_on) {
            *tail = &cm2;
            tail = &cm2.pNext;
            *tail = NULL;
        }
        if (c->size_control) {
            *tail = &ssc;
            ssc.pNext = NULL;
        }
        chain = &f16;
    }

    /* The *_f64 variants (layernorm statistics, attention's softmax sums, exp and tanh in
     * double) round like the cpu reference, but fp64 is slow on most GPUs: they are a
     * diagnostic, chosen with VKT_VULKAN_FP64=1 where the device has shaderFloat64. The
     * float variants meet the 1e-4 contract of test_backend_ops. */
    VkPhysicalDeviceFeatures base, enabled = {0};
    vk->vkGetPhysicalDeviceFeatures(phys->pd, &base);
    const char *want64 = getenv("VKT_VULKAN_FP64");
    c->fp64 = base.shaderFloat64 == VK_TRUE && want64 && !strcmp(want64, "1");
    enabled.shaderFloat64 = c->fp64 ? VK_TRUE : VK_FALSE;

    /* push descriptors where the device has them: a dispatch then writes its bindings into
     * the command buffer instead of allocating a set (a test knob turns them off, so that
     * the pools' path is tested on devices that have them) */
    const char *no_push = getenv("VKT_VULKAN_NO_PUSH_DESCRIPTORS");
    if (phys->push_desc && !(no_push && !strcmp(no_push, "1"))) {
        exts[next++] = VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME;
        c->push_desc = 1;
    }
    /* VKT_VULKAN_BARRIERS=all: the diagnostic ordering, a barrier between any two commands;
     * =none, a test knob that is wrong on purpose: no barriers, so that the validation test
     * can prove that synchronization validation reports what a missing one does */
    const char *bar = getenv("VKT_VULKAN_BARRIERS");
    c->all_barriers = bar && !strcmp(bar, "all");
    c->no_barriers = bar && !strcmp(bar, "none");

    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = c->queue_family,
        .queueCount = 1,
        .pQueuePriorities = &prio,
    };
    VkDeviceCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .pNext = chain,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &qci,
        .enabledExtensionCount = next,
        .ppEnabledExtensionNames = exts,
        .pEnabledFeatures = &enabled,
    };
    VkResult r = vk->vkCreateDevice(phys->pd, &dci, NULL, &c->dev);
    if (r != VK_SUCCESS) {
        snprintf(err, errlen, "vulkan:%d (%s): vkCreateDevice failed: %s", be->device,
                 phys->info.name, vkt_vk_result_name(r));
        c->dev = VK_NULL_HANDLE;
        vkt_vk_context_shutdown(be);
        return -1;
    }
    if (vkt_vk_loader_device(c->dev, &c->d, err, errlen)) {
        vkt_vk_context_shutdown(be);
        return -1;
    }
    c->d.vkGetDeviceQueue(c->dev, c->queue_family, 0, &c->queue);
    if (c->push_desc) {
        c->push_set = (PFN_vkCmdPushDescriptorSetKHR)vkt_vk_loader_device_proc(
            c->dev, "vkCmdPushDescriptorSetKHR");
        if (!c->push_set) c->push_desc = 0; /* the extension without its entry point */
    }
    VkCommandPoolCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_TRANSIENT_BIT,
        .queueFamilyIndex = c->queue_family,
    };
    if (VKT_VK_TRY(c, vkCreateCommandPool, (c->dev, &pci, NULL, &c->pool)))
        return init_failed(be, err, errlen);
    VkCommandBufferAllocateInfo cai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = c->pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    if (VKT_VK_TRY(c, vkAllocateCommandBuffers, (c->dev, &cai, &c->cmd)) ||
        VKT_VK_TRY(c, vkCreateFence, (c->dev, &fci, NULL, &c->fence)) ||
        vkt_vk_memory_init(c, err, errlen) || vkt_vk_pipelines_init(c))
        return init_failed(be, err, errlen);
    return 0;
}

/* Safe on a partly built context; teardown in reverse order. */
void vkt_vk_context_shutdown(vkt_backend *be) {
    vkt_vk_ctx *c = vkt_vk(be);
    if (!c) return;
    if (c->dev) {
        if (c->pending) vkt_vk_flush(c);
        const char *st = getenv("VKT_VULKAN_STATS");
        if (st && *st && *st != '0')
            fprintf(stderr, "vulkan: %llu submissions, %llu dispatches, %llu barriers%s\n",
                    (unsigned long long)c->submits, (unsigned long long)c->dispatches,
                    (unsigned long long)c->barriers,
                    c->push_desc ? ", push descriptors" : ", descriptor pools");
        c->d.vkDeviceWaitIdle(c->dev);
        vkt_vk_prof_shutdown(c);
        vkt_vk_pipelines_shutdown(c);
        vkt_vk_memory_shutdown(c);
        if (c->fence) c->d.vkDestroyFence(c->dev, c->fence, NULL);
        if (c->pool) c->d.vkDestroyCommandPool(c->dev, c->pool, NULL);
        c->d.vkDestroyDevice(c->dev, NULL);
    }
    free(c);
    be->ctx = NULL;
}

VkCommandBuffer vkt_vk_cmd(vkt_vk_ctx *c) {
    if (vkt_vk_failed(c)) return VK_NULL_HANDLE;
    if (!c->recording) {
        VkCommandBufferBeginInfo bi = {
            .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
            .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
        };
        if (VKT_VK_TRY(c, vkBeginCommandBuffer, (c->cmd, &bi))) return VK_NULL_HANDLE;
        c->recording = 1;
    }
    c->pending = 1;
    return c->cmd;
}

/* A global memory barrier: on most drivers it costs the same as buffer barriers, and the
 * spans (vkt_vk_order) decide whether one is needed at all. */
void vkt_vk_barrier(vkt_vk_ctx *c) {
    c->nspans = 0;
    c->since_barrier = 0;
    c->barriers++;
    if (c->census) return;
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                         VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
    };
    VkPipelineStageFlags st = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    VkCommandBuffer cmd = vkt_vk_cmd(c);
    if (cmd) c->d.vkCmdPipelineBarrier(cmd, st, st, 0, 1, &mb, 0, NULL, 0, NULL);
}

vkt_vk_span vkt_vk_span_of(vkt_vk_ctx *c, vkt_ptr p, size_t bytes, int write) {
    VkDeviceSize lo = p.buf->off + p.off, end = p.buf->off + p.buf->size;
    VkDeviceSize hi = bytes && lo + bytes < end ? lo + bytes : end;
    return (vkt_vk_span){vkt_vk_buffer_of(c, p.buf), lo, hi, write};
}

/* Whether a command accessing s depends on one recorded since the last barrier: read after
 * write, write after read, write after write, on overlapping bytes of one buffer. */
static int depends(const vkt_vk_ctx *c, const vkt_vk_span *s) {
    for (int i = 0; i < c->nspans; i++) {
        const vkt_vk_span *t = &c->spans[i];
        if ((s->write || t->write) && s->buf == t->buf && s->lo < t->hi && t->lo < s->hi)
            return 1;
    }
    return 0;
}

void vkt_vk_order(vkt_vk_ctx *c, const vkt_vk_span *s, int n) {
    int need = 0;
    if (c->all_barriers || c->prof_on)
        need = c->since_barrier > 0;
    else
        for (int i = 0; i < n && !need; i++) need = depends(c, &s[i]);
    if ((need || c->nspans + n > VKT_VK_MAX_SPANS) && !c->no_barriers) vkt_vk_barrier(c);
    for (int i = 0; i < n && c->nspans < VKT_VK_MAX_SPANS; i++) c->spans[c->nspans++] = s[i];
    c->since_barrier++;
}

/* Ends, submits and waits for the recorded commands; stops at the first call that fails
 * (recorded as the sticky error). VKT_FAULT_INJECT fails vkQueueSubmit (submit:N) or a
 * download's fence wait (download:N) with VK_ERROR_DEVICE_LOST, as a lost device would. */
static void submit_and_wait(vkt_vk_ctx *c) {
    /* make device writes visible to host reads of mapped staging memory */
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_HOST_READ_BIT,
    };
    c->d.vkCmdPipelineBarrier(c->cmd,
                              VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                              VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    if (VKT_VK_TRY(c, vkEndCommandBuffer, (c->cmd))) return;
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &c->cmd,
    };
    VkResult r = vkt_fault_hit(c->be, VKT_FAULT_SUBMIT)
                     ? VK_ERROR_DEVICE_LOST
                     : c->d.vkQueueSubmit(c->queue, 1, &si, c->fence);
    if (vkt_vk_check(c, "vkQueueSubmit", r)) return;
    c->submits++;
    r = c->d.vkWaitForFences(c->dev, 1, &c->fence, VK_TRUE, UINT64_MAX);
    if (c->fail_wait && r == VK_SUCCESS) r = VK_ERROR_DEVICE_LOST;
    c->fail_wait = 0;
    if (vkt_vk_check(c, "vkWaitForFences", r) ||
        VKT_VK_TRY(c, vkResetFences, (c->dev, 1, &c->fence)))
        return;
    if (c->prof_used) vkt_vk_prof_collect(c);
    if (!vkt_vk_failed(c)) VKT_VK_TRY(c, vkResetCommandPool, (c->dev, c->pool, 0));
}

void vkt_vk_flush(vkt_vk_ctx *c) {
    if (c->pending && !vkt_vk_failed(c)) submit_and_wait(c);
    c->nspans = 0; /* the fence: everything before is done */
    c->since_barrier = 0;
    c->recording = 0;
    c->pending = 0;
    c->staging_used = 0;
    if (!vkt_vk_failed(c)) vkt_vk_pipelines_reset_sets(c);
    vkt_vk_free_dead(c); /* host bookkeeping only: nothing reuses the ranges after a failure */
}

void vkt_vk_census_begin(vkt_vk_ctx *c, vkt_vk_census *log, VkDeviceSize range) {
    vkt_vk_flush(c);
    c->census = 1;
    c->census_log = log;
    c->census_saved_range = c->max_range;
    if (range) c->max_range = range & ~(VkDeviceSize)255;
}

void vkt_vk_census_end(vkt_vk_ctx *c) {
    c->census = 0;
    c->census_log = NULL;
    c->max_range = c->census_saved_range;
    c->nspans = 0;
    c->since_barrier = 0;
}
