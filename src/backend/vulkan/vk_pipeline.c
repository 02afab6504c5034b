/* The pipeline registry of the vulkan backend: per embedded shader variant and set of
 * specialization constants, a module, a layout (storage-buffer bindings 0..n-1 and one
 * push-constant range) and a compute pipeline, created on first use and checked at every
 * dispatch (bindings, push constants, workgroup size). A dispatch's bindings are pushed into
 * the command buffer (VK_KHR_push_descriptor) or, without it, written to a set from a chain
 * of pools that grows within a submission and is reset after each flush: recording never
 * waits for the device either way. Each dispatch is ordered after the commands it depends
 * on (vkt_vk_order), from the byte ranges it binds and which of them its shader writes. */
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
    uint32_t writes;   /* bindings the shader stores to (bits, from its SPIR-V) */
    VkShaderModule module;
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkPipeline pipeline;
    vkt_vk_pipeline *next;
};

#define POOL_SETS 1024u
#define POOL_DESCRIPTORS (POOL_SETS * VKT_VK_MAX_BINDINGS)

/* One more descriptor pool for the chain; -1 (the sticky error) when the driver refuses. */
static int add_pool(vkt_vk_ctx *c) {
    if (c->ndpools == c->cap_dpools) {
        int cap = c->cap_dpools ? 2 * c->cap_dpools : 4;
        VkDescriptorPool *n = realloc(c->dpools, (size_t)cap * sizeof *n);
        if (!n) {
            vkt_backend_failf(c->be, "out of host memory for descriptor pools");
            return -1;
        }
        c->dpools = n;
        c->cap_dpools = cap;
    }
    VkDescriptorPoolSize ps = {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                               .descriptorCount = POOL_DESCRIPTORS};
    VkDescriptorPoolCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .maxSets = POOL_SETS,
        .poolSizeCount = 1,
        .pPoolSizes = &ps,
    };
    VkDescriptorPool pool;
    if (VKT_VK_TRY(c, vkCreateDescriptorPool, (c->dev, &pci, NULL, &pool))) return -1;
    c->dpools[c->ndpools++] = pool;
    return 0;
}

int vkt_vk_pipelines_init(vkt_vk_ctx *c) {
    VkPipelineCacheCreateInfo cci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
    if (VKT_VK_TRY(c, vkCreatePipelineCache, (c->dev, &cci, NULL, &c->cache))) return -1;
    return c->push_desc ? 0 : add_pool(c);
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
    for (int i = 0; i < c->ndpools; i++) c->d.vkDestroyDescriptorPool(c->dev, c->dpools[i], NULL);
    free(c->dpools);
    c->dpools = NULL;
    c->ndpools = c->cap_dpools = c->dpool_at = 0;
    if (c->cache) c->d.vkDestroyPipelineCache(c->dev, c->cache, NULL);
    c->cache = VK_NULL_HANDLE;
}

int vkt_vk_pipelines_count(const vkt_vk_ctx *c) {
    int n = 0;
    for (const vkt_vk_pipeline *p = c->pipelines; p; p = p->next) n++;
    return n;
}

void vkt_vk_pipelines_reset_sets(vkt_vk_ctx *c) {
    for (int i = 0; i <= c->dpool_at && i < c->ndpools; i++)
        if (VKT_VK_TRY(c, vkResetDescriptorPool, (c->dev, c->dpools[i], 0))) return;
    c->dpool_at = 0;
}

/* A set for p's layout from the current pool, moving on to the next (made when needed) once
 * it is spent; VK_NULL_HANDLE after a failure (the sticky error). */
static VkDescriptorSet alloc_set(vkt_vk_ctx *c, const vkt_vk_pipeline *p) {
    for (;;) {
        VkDescriptorSetAllocateInfo ai = {
            .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
            .descriptorPool = c->dpools[c->dpool_at],
            .descriptorSetCount = 1,
            .pSetLayouts = &p->dsl,
        };
        VkDescriptorSet set;
        VkResult r = c->d.vkAllocateDescriptorSets(c->dev, &ai, &set);
        if (r == VK_SUCCESS) return set;
        if (r != VK_ERROR_OUT_OF_POOL_MEMORY && r != VK_ERROR_FRAGMENTED_POOL) {
            vkt_vk_check(c, "vkAllocateDescriptorSets", r);
            return VK_NULL_HANDLE;
        }
        if (c->dpool_at + 1 == c->ndpools && add_pool(c)) return VK_NULL_HANDLE;
        c->dpool_at++;
    }
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
    VkDescriptorSetLayoutBinding b[VKT_VK_MAX_BINDINGS];
    VKT_VK_ASSERT(p->nbind <= VKT_VK_MAX_BINDINGS);
    for (uint32_t i = 0; i < p->nbind; i++)
        b[i] = (VkDescriptorSetLayoutBinding){
            .binding = i,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .descriptorCount = 1,
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        };
    VkDescriptorSetLayoutCreateInfo dli = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .flags = c->push_desc ? VK_DESCRIPTOR_SET_LAYOUT_CREATE_PUSH_DESCRIPTOR_BIT_KHR : 0,
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
    char why[160];
    if (vkt_spirv_written_bindings(sp, &p->writes, why, sizeof why)) die(sh->name, "%s", why);
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

void vkt_vk_bind(vkt_vk_ctx *c, vkt_vk_bindings *b, int n, const vkt_ptr *ptrs,
                 const size_t *bytes) {
    VKT_VK_ASSERT(n >= 1 && n <= VKT_VK_MAX_BINDINGS && ptrs[0].buf);
    VkDeviceSize align = c->props.limits.minStorageBufferOffsetAlignment;
    if (align < 4) align = 4;
    b->n = n;
    for (int i = 0; i < n; i++) {
        b->ptr[i] = ptrs[i].buf ? ptrs[i] : ptrs[0];
        /* an absent buffer stands in for a binding the shader does not touch: 4 bytes */
        b->bytes[i] = !ptrs[i].buf ? 4 : bytes ? bytes[i] : 0;
        VkDeviceSize abs = b->ptr[i].buf->off + b->ptr[i].off;
        b->elem_off[i] = (uint32_t)((abs % align) / vkt_elem_bytes(b->ptr[i]));
    }
}

static VkDeviceSize align_of(vkt_vk_ctx *c) {
    VkDeviceSize align = c->props.limits.minStorageBufferOffsetAlignment;
    return align < 4 ? 4 : align;
}

/* Binding i's descriptor: from the tensor rounded down to the offset alignment, over its
 * extent rounded up to whole words (or, extent unknown, to the end of its allocation), at
 * most the device's storage-buffer range (a tensor beyond it must be split by the op). */
static void window(vkt_vk_ctx *c, const vkt_vk_bindings *b, int i, VkDeviceSize *start,
                   VkDeviceSize *range) {
    const vkt_buf *buf = b->ptr[i].buf;
    VkDeviceSize abs = buf->off + b->ptr[i].off, end = buf->off + buf->size;
    *start = abs - abs % align_of(c);
    if (b->bytes[i] && abs + b->bytes[i] < end) end = (abs + b->bytes[i] + 3) & ~(VkDeviceSize)3;
    *range = end - *start;
    if (*range > c->max_range) *range = c->max_range & ~(VkDeviceSize)3;
}

size_t vkt_vk_visible(vkt_vk_ctx *c, vkt_ptr p) {
    VkDeviceSize abs = p.buf->off + p.off, start = abs - abs % align_of(c);
    VkDeviceSize range = p.buf->off + p.buf->size - start;
    if (range > c->max_range) range = c->max_range;
    return (size_t)(range - (abs - start));
}

/* Census mode (vk_context.h): what a dispatch would launch and touch. */
static void census_add(vkt_vk_ctx *c, const char *name, uint32_t groups, uint64_t bytes,
                       int barrier) {
    vkt_vk_census *k = c->census_log;
    if (!k) return;
    if (k->n == k->cap) {
        int cap = k->cap ? 2 * k->cap : 256;
        vkt_vk_census_entry *e = realloc(k->e, (size_t)cap * sizeof *e);
        if (!e) return;
        k->e = e;
        k->cap = cap;
    }
    k->e[k->n++] = (vkt_vk_census_entry){name, groups, bytes, barrier};
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
    VkDescriptorBufferInfo bi[VKT_VK_MAX_BINDINGS];
    vkt_vk_span spans[VKT_VK_MAX_BINDINGS];
    uint64_t touched = 0;
    for (int i = 0; i < b->n; i++) {
        VkDeviceSize start, range;
        window(c, b, i, &start, &range);
        bi[i] = (VkDescriptorBufferInfo){
            .buffer = vkt_vk_buffer_of(c, b->ptr[i].buf), .offset = start, .range = range};
        spans[i] = (vkt_vk_span){bi[i].buffer, start, start + range, (int)(p->writes >> i) & 1};
        touched += range;
    }
    uint64_t before = c->barriers;
    if (!c->census) vkt_vk_prof_reserve(c); /* a flush for the query pool comes first */
    if (vkt_vk_failed(c)) return;
    vkt_vk_order(c, spans, b->n);
    c->dispatches++;
    if (c->census) {
        census_add(c, p->name, gx * gy * gz, touched, c->barriers != before);
        return;
    }
    VkWriteDescriptorSet w[VKT_VK_MAX_BINDINGS];
    VkDescriptorSet set = VK_NULL_HANDLE;
    if (!c->push_desc && !(set = alloc_set(c, p))) return;
    for (int i = 0; i < b->n; i++)
        w[i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstSet = set,
            .dstBinding = (uint32_t)i,
            .descriptorCount = 1,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .pBufferInfo = &bi[i],
        };
    if (!c->push_desc) c->d.vkUpdateDescriptorSets(c->dev, (uint32_t)b->n, w, 0, NULL);
    vkt_vk_prof_begin(c, p->name);
    vkt_vk_prof_groups(c, gx * gy * gz);
    VkCommandBuffer cmd = vkt_vk_cmd(c);
    if (!cmd) return;
    c->d.vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipeline);
    if (c->push_desc)
        c->push_set(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, (uint32_t)b->n, w);
    else
        c->d.vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1, &set,
                                     0, NULL);
    if (push_size)
        c->d.vkCmdPushConstants(cmd, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_size, push);
    c->d.vkCmdDispatch(cmd, gx, gy, gz);
    vkt_vk_prof_end(c);
}
