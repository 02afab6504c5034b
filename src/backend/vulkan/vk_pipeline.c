/* The pipeline registry of the vulkan backend: per embedded shader variant and set of
 * specialization constants, a module, a layout (storage-buffer bindings 0..n-1 and one
 * push-constant range) and a compute pipeline, created on first use and checked at every
 * dispatch (bindings, push constants, workgroup size); descriptor sets come from one pool
 * that is reset after each flush. */
#include <stdarg.h>
#include <string.h>

#include "backend/vkt_spirv.h"
#include "backend/vulkan/vk_context.h"

struct vkt_vk_pipeline {
    const char *name;
    int nspec;
    vkt_spec_const spec[VKT_VK_MAX_SPEC]; /* sorted by id: part of the key */
    uint32_t nbind, push_size, local[3];
    uint32_t subgroup; /* a required subgroup size, 0 = the driver's choice */
    VkShaderModule module;
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkPipeline pipeline;
    vkt_vk_pipeline *next;
};

#define POOL_SETS 2048u
#define POOL_DESCRIPTORS (POOL_SETS * 8u)

static int make_pool(vkt_vk_ctx *c) {
    VkDescriptorPoolSize ps = {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                               .descriptorCount = POOL_DESCRIPTORS};
    VkDescriptorPoolCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .maxSets = POOL_SETS,
        .poolSizeCount = 1,
        .pPoolSizes = &ps,
    };
    return VKT_VK_TRY(c, vkCreateDescriptorPool, (c->dev, &pci, NULL, &c->dpool)) ? -1 : 0;
}

int vkt_vk_pipelines_init(vkt_vk_ctx *c) {
    VkPipelineCacheCreateInfo cci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
    if (VKT_VK_TRY(c, vkCreatePipelineCache, (c->dev, &cci, NULL, &c->cache))) return -1;
    return make_pool(c);
}

void vkt_vk_pipelines_shutdown(vkt_vk_ctx *c) {
    for (vkt_vk_pipeline *p = c->pipelines, *n; p; p = n) {
        n = p->next;
        c->d.vkDestroyPipeline(c->dev, p->pipeline, NULL);
        c->d.vkDestroyPipelineLayout(c->dev, p->layout, NULL);
        c->d.vkDestroyDescriptorSetLayout(c->dev, p->dsl, NULL);
        c->d.vkDestroyShaderModule(c->dev, p->module, NULL);
        free(p);
    }
    c->pipelines = NULL;
    if (c->dpool) c->d.vkDestroyDescriptorPool(c->dev, c->dpool, NULL);
    if (c->cache) c->d.vkDestroyPipelineCache(c->dev, c->cache, NULL);
    c->dpool = VK_NULL_HANDLE;
    c->cache = VK_NULL_HANDLE;
}

int vkt_vk_pipelines_count(const vkt_vk_ctx *c) {
    int n = 0;
    for (const vkt_vk_pipeline *p = c->pipelines; p; p = p->next) n++;
    return n;
}

void vkt_vk_pipelines_reset_sets(vkt_vk_ctx *c) {
    if (c->dpool) VKT_VK_TRY(c, vkResetDescriptorPool, (c->dev, c->dpool, 0));
}

/* A dispatch that contradicts its shader or its first use: a bug in the caller (an invariant
 * of the program, so it stops the process; what the device cannot do is a sticky error). */
static void die(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void die(const char *name, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vulkan: shader %s: ", name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

/* The caller's constants sorted by id, so that one set has one key whatever its order. */
static void sorted_spec(const vkt_vk_shader *sh, vkt_spec_const *out) {
    VKT_VK_ASSERT(sh->nspec >= 0 && sh->nspec <= VKT_VK_MAX_SPEC);
    for (int i = 0; i < sh->nspec; i++) {
        int j = i;
        for (; j > 0 && out[j - 1].id > sh->spec[i].id; j--) out[j] = out[j - 1];
        out[j] = sh->spec[i];
    }
    for (int i = 1; i < sh->nspec; i++) VKT_VK_ASSERT(out[i].id != out[i - 1].id);
}

static vkt_vk_pipeline *find(vkt_vk_ctx *c, const char *name, int nspec,
                             const vkt_spec_const *spec, uint32_t subgroup) {
    for (vkt_vk_pipeline *p = c->pipelines; p; p = p->next)
        if (p->nspec == nspec && p->subgroup == subgroup && strcmp(p->name, name) == 0 &&
            (nspec == 0 || memcmp(p->spec, spec, (size_t)nspec * sizeof *spec) == 0))
            return p;
    return NULL;
}

/* The shader's workgroup size under its specialization must be the one the caller's grid
 * assumes, and within the device's limits. */
static int check_local_size(vkt_vk_ctx *c, const vkt_spirv *sp, const vkt_vk_shader *sh,
                            vkt_vk_pipeline *p) {
    char why[160];
    if (vkt_spirv_local_size(sp, p->spec, p->nspec, p->local, why, sizeof why))
        die(sh->name, "%s", why);
    if (memcmp(p->local, sh->local, sizeof p->local))
        die(sh->name, "workgroup %ux%ux%u, but the dispatch assumes %ux%ux%u", p->local[0],
            p->local[1], p->local[2], sh->local[0], sh->local[1], sh->local[2]);
    const VkPhysicalDeviceLimits *l = &c->props.limits;
    uint64_t inv = (uint64_t)p->local[0] * p->local[1] * p->local[2];
    if (inv == 0 || inv > l->maxComputeWorkGroupInvocations ||
        p->local[0] > l->maxComputeWorkGroupSize[0] ||
        p->local[1] > l->maxComputeWorkGroupSize[1] ||
        p->local[2] > l->maxComputeWorkGroupSize[2]) {
        vkt_backend_failf(c->be, "shader %s: workgroup %ux%ux%u exceeds the device's limits (%u "
                          "invocations, %ux%u). HINT: another device, or --device cpu:0",
                          sh->name, p->local[0], p->local[1], p->local[2],
                          l->maxComputeWorkGroupInvocations, l->maxComputeWorkGroupSize[0],
                          l->maxComputeWorkGroupSize[1]);
        return -1;
    }
    return 0;
}

/* The module, layouts and pipeline of p; -1 (the sticky error recorded) when the driver
 * refuses one of them. */
static int create(vkt_vk_ctx *c, const vkt_spirv *sp, vkt_vk_pipeline *p) {
    VkShaderModuleCreateInfo smi = {
        .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
        .codeSize = sp->words * 4,
        .pCode = sp->code,
    };
    if (VKT_VK_TRY(c, vkCreateShaderModule, (c->dev, &smi, NULL, &p->module))) return -1;
    VkDescriptorSetLayoutBinding b[8];
    VKT_VK_ASSERT(p->nbind <= 8);
    for (uint32_t i = 0; i < p->nbind; i++)
        b[i] = (VkDescriptorSetLayoutBinding){
            .binding = i,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .descriptorCount = 1,
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        };
    VkDescriptorSetLayoutCreateInfo dli = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .bindingCount = p->nbind,
        .pBindings = b,
    };
    if (VKT_VK_TRY(c, vkCreateDescriptorSetLayout, (c->dev, &dli, NULL, &p->dsl))) return -1;
    VkPushConstantRange pr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .size = p->push_size};
    VKT_VK_ASSERT(p->push_size <= c->props.limits.maxPushConstantsSize);
    VkPipelineLayoutCreateInfo pli = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
        .setLayoutCount = 1,
        .pSetLayouts = &p->dsl,
        .pushConstantRangeCount = p->push_size ? 1 : 0,
        .pPushConstantRanges = &pr,
    };
    if (VKT_VK_TRY(c, vkCreatePipelineLayout, (c->dev, &pli, NULL, &p->layout))) return -1;
    VkSpecializationMapEntry map[VKT_VK_MAX_SPEC];
    uint32_t data[VKT_VK_MAX_SPEC];
    for (int i = 0; i < p->nspec; i++) {
        map[i] = (VkSpecializationMapEntry){
            .constantID = p->spec[i].id, .offset = (uint32_t)i * 4, .size = 4};
        data[i] = p->spec[i].value;
    }
    VkSpecializationInfo si = {
        .mapEntryCount = (uint32_t)p->nspec,
        .pMapEntries = map,
        .dataSize = (size_t)p->nspec * 4,
        .pData = data,
    };
    /* a kernel laid out for one subgroup size gets it, in full subgroups, where the device
     * lets a pipeline ask; elsewhere vkt_vk_subgroup_fixed vouched that it is the only size */
    VkPipelineShaderStageRequiredSubgroupSizeCreateInfo rss = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO,
        .requiredSubgroupSize = p->subgroup};
    int require = p->subgroup && c->size_control;
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                  .pNext = require ? &rss : NULL,
                  .flags = require ? VK_PIPELINE_SHADER_STAGE_CREATE_REQUIRE_FULL_SUBGROUPS_BIT
                                   : 0,
                  .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = p->module,
                  .pName = "main",
                  .pSpecializationInfo = p->nspec ? &si : NULL},
        .layout = p->layout,
    };
    return VKT_VK_TRY(c, vkCreateComputePipelines, (c->dev, c->cache, 1, &ci, NULL, &p->pipeline))
               ? -1
               : 0;
}

/* A pipeline that failed part-way (handles never made are VK_NULL_HANDLE: a no-op). */
static void destroy(vkt_vk_ctx *c, vkt_vk_pipeline *p) {
    c->d.vkDestroyPipeline(c->dev, p->pipeline, NULL);
    c->d.vkDestroyPipelineLayout(c->dev, p->layout, NULL);
    c->d.vkDestroyDescriptorSetLayout(c->dev, p->dsl, NULL);
    c->d.vkDestroyShaderModule(c->dev, p->module, NULL);
    free(p);
}

static vkt_vk_pipeline *get(vkt_vk_ctx *c, const vkt_vk_shader *sh, uint32_t nbind,
                            uint32_t push_size) {
    vkt_spec_const spec[VKT_VK_MAX_SPEC];
    sorted_spec(sh, spec);
    vkt_vk_pipeline *p = find(c, sh->name, sh->nspec, spec, sh->subgroup);
    if (p) {
        /* one pipeline, one interface: a caller disagreeing with the first is a bug */
        if (p->nbind != nbind || p->push_size != push_size ||
            memcmp(p->local, sh->local, sizeof p->local))
            die(sh->name, "dispatched with %u bindings, %u bytes of push constants and "
                "workgroup %ux%ux%u; first with %u, %u and %ux%ux%u", nbind, push_size,
                sh->local[0], sh->local[1], sh->local[2], p->nbind, p->push_size, p->local[0],
                p->local[1], p->local[2]);
        return p;
    }
    const vkt_spirv *sp = vkt_spirv_find(sh->name);
    if (!sp) {
        fprintf(stderr, "vulkan: shader %s is not built into this binary\n", sh->name);
        abort();
    }
    p = calloc(1, sizeof *p);
    VKT_VK_ASSERT(p != NULL);
    p->name = sp->name;
    p->nspec = sh->nspec;
    memcpy(p->spec, spec, (size_t)p->nspec * sizeof *spec);
    p->nbind = nbind;
    p->push_size = push_size;
    p->subgroup = sh->subgroup;
    if (p->subgroup) {
        VKT_VK_ASSERT(vkt_vk_subgroup_fixed(c, p->subgroup));
        /* full subgroups need a workgroup of whole subgroups */
        VKT_VK_ASSERT(sh->local[0] % p->subgroup == 0);
    }
    if (check_local_size(c, sp, sh, p) || create(c, sp, p)) {
        destroy(c, p);
        return NULL;
    }
    p->next = c->pipelines;
    c->pipelines = p;
    return p;
}

int vkt_vk_subgroup_fixed(const vkt_vk_ctx *c, uint32_t size) {
    const vkt_vk_physdev *d = c->phys;
    if (!size || size & (size - 1)) return 0;
    if (c->size_control) return size >= d->min_subgroup && size <= d->max_subgroup;
    /* without control: a device whose only size it is (min == max, or no range reported
     * and the size is its subgroupSize); a workgroup that is a multiple of it then runs in
     * full subgroups */
    if (d->min_subgroup && d->max_subgroup)
        return d->min_subgroup == d->max_subgroup && size == d->min_subgroup;
    return 0;
}

void vkt_vk_bind(vkt_vk_ctx *c, vkt_vk_bindings *b, int n, const vkt_ptr *ptrs) {
    VKT_VK_ASSERT(n >= 1 && n <= 8 && ptrs[0].buf);
    VkDeviceSize align = c->props.limits.minStorageBufferOffsetAlignment;
    if (align < 4) align = 4;
    b->n = n;
    for (int i = 0; i < n; i++) {
        b->ptr[i] = ptrs[i].buf ? ptrs[i] : ptrs[0];
        VkDeviceSize abs = b->ptr[i].buf->off + b->ptr[i].off;
        b->elem_off[i] = (uint32_t)((abs % align) / vkt_elem_bytes(b->ptr[i]));
    }
}

static VkDeviceSize align_of(vkt_vk_ctx *c) {
    VkDeviceSize align = c->props.limits.minStorageBufferOffsetAlignment;
    return align < 4 ? 4 : align;
}

size_t vkt_vk_visible(vkt_vk_ctx *c, vkt_ptr p) {
    VkDeviceSize abs = p.buf->off + p.off, start = abs - abs % align_of(c);
    VkDeviceSize range = p.buf->off + p.buf->size - start;
    if (range > c->max_range) range = c->max_range;
    return (size_t)(range - (abs - start));
}

void vkt_vk_dispatch(vkt_vk_ctx *c, const vkt_vk_shader *sh, const vkt_vk_bindings *b,
                     const void *push, uint32_t push_size, uint32_t gx, uint32_t gy,
                     uint32_t gz) {
    if (vkt_vk_failed(c)) return;
    vkt_vk_pipeline *p = get(c, sh, (uint32_t)b->n, push_size);
    if (!p || gx == 0 || gy == 0 || gz == 0) return;
    const uint32_t *maxg = c->props.limits.maxComputeWorkGroupCount;
    if (gx > maxg[0] || gy > maxg[1] || gz > maxg[2]) {
        vkt_backend_failf(c->be, "shader %s: a grid of %ux%ux%u workgroups exceeds the device's "
                          "limit of %ux%ux%u. HINT: a smaller batch_size or model",
                          sh->name, gx, gy, gz, maxg[0], maxg[1], maxg[2]);
        return;
    }
    vkt_vk_prof_reserve(c); /* a flush for the query pool must come before the set */
    if (vkt_vk_failed(c)) return;
    VkDescriptorSetAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
        .descriptorPool = c->dpool,
        .descriptorSetCount = 1,
        .pSetLayouts = &p->dsl,
    };
    VkDescriptorSet set;
    if (c->d.vkAllocateDescriptorSets(c->dev, &ai, &set) != VK_SUCCESS) {
        vkt_vk_flush(c); /* the pool is spent: finish the queued work and start over */
        if (vkt_vk_failed(c) || VKT_VK_TRY(c, vkAllocateDescriptorSets, (c->dev, &ai, &set)))
            return;
    }
    VkDeviceSize align = c->props.limits.minStorageBufferOffsetAlignment;
    if (align < 4) align = 4;
    VkDeviceSize maxr = c->max_range;
    VkDescriptorBufferInfo bi[8];
    VkWriteDescriptorSet w[8];
    for (int i = 0; i < b->n; i++) {
        const vkt_buf *buf = b->ptr[i].buf;
        VkDeviceSize abs = buf->off + b->ptr[i].off;
        VkDeviceSize start = abs - abs % align;
        /* the window: from the tensor to the end of its allocation, at most the device's
         * storage-buffer range (a tensor beyond it must be split by the op) */
        VkDeviceSize range = buf->off + buf->size - start;
        if (range > maxr) range = maxr & ~(VkDeviceSize)3;
        bi[i] = (VkDescriptorBufferInfo){
            .buffer = vkt_vk_buffer_of(c, buf), .offset = start, .range = range};
        w[i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstSet = set,
            .dstBinding = (uint32_t)i,
            .descriptorCount = 1,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .pBufferInfo = &bi[i],
        };
    }
    c->d.vkUpdateDescriptorSets(c->dev, (uint32_t)b->n, w, 0, NULL);
    vkt_vk_prof_begin(c, p->name);
    vkt_vk_prof_groups(c, gx * gy * gz);
    VkCommandBuffer cmd = vkt_vk_cmd(c);
    if (!cmd) return;
    c->d.vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipeline);
    c->d.vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1, &set, 0,
                                 NULL);
    if (push_size)
        c->d.vkCmdPushConstants(cmd, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_size, push);
    c->d.vkCmdDispatch(cmd, gx, gy, gz);
    vkt_vk_prof_end(c);
    c->dispatches++;
    vkt_vk_barrier(c);
}
