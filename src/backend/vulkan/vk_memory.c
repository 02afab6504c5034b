/* Device memory for the vulkan backend: a few large VkDeviceMemory blocks, each covered by
 * one VkBuffer, carved first-fit (256-byte aligned, free neighbours coalesced) into the
 * opaque vkt_buf handles; and a host-visible staging ring for uploads and downloads. */
#include <stdlib.h>
#include <string.h>

#include "backend/vulkan/vk_context.h"

struct vkt_vk_range {
    VkDeviceSize off, size;
    int used;
    vkt_vk_range *prev, *next;
};

#define STAGING_BYTES (32u << 20)
#define BLOCK_BYTES ((VkDeviceSize)256 << 20)

static int find_type(vkt_vk_ctx *c, uint32_t bits, VkMemoryPropertyFlags want) {
    for (uint32_t i = 0; i < c->memprops.memoryTypeCount; i++)
        if ((bits & (1u << i)) && (c->memprops.memoryTypes[i].propertyFlags & want) == want)
            return (int)i;
    return -1;
}

/* A storage buffer of `size` bytes; the driver's answer (a size beyond its limits, memory). */
static VkResult make_buffer(vkt_vk_ctx *c, VkDeviceSize size, VkBuffer *out) {
    VkBufferCreateInfo bci = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = size,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                 VK_BUFFER_USAGE_TRANSFER_DST_BIT,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    *out = VK_NULL_HANDLE;
    VkResult r = c->d.vkCreateBuffer(c->dev, &bci, NULL, out);
    if (r != VK_SUCCESS) *out = VK_NULL_HANDLE;
    return r;
}

/* vkAllocateMemory, or the failure VKT_FAULT_INJECT=alloc:N asks for. */
static VkResult allocate(vkt_vk_ctx *c, const VkMemoryAllocateInfo *ai, VkDeviceMemory *mem) {
    *mem = VK_NULL_HANDLE;
    if (vkt_fault_hit(c->be, VKT_FAULT_ALLOC)) return VK_ERROR_OUT_OF_DEVICE_MEMORY;
    VkResult r = c->d.vkAllocateMemory(c->dev, ai, NULL, mem);
    if (r != VK_SUCCESS) *mem = VK_NULL_HANDLE;
    return r;
}

int vkt_vk_memory_init(vkt_vk_ctx *c, char *err, size_t errlen) {
    /* the memory type of storage buffers: device-local when there is one */
    VkBuffer probe;
    if (vkt_vk_check(c, "vkCreateBuffer", make_buffer(c, 4096, &probe))) return -1;
    VkMemoryRequirements req;
    c->d.vkGetBufferMemoryRequirements(c->dev, probe, &req);
    int t = find_type(c, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    if (t < 0) t = find_type(c, req.memoryTypeBits, 0);
    int st = find_type(c, req.memoryTypeBits,
                       VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
    c->staging_coherent = 1;
    if (st < 0) {
        st = find_type(c, req.memoryTypeBits, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT);
        c->staging_coherent = 0;
    }
    c->d.vkDestroyBuffer(c->dev, probe, NULL);
    if (t < 0 || st < 0) {
        snprintf(err, errlen, "vulkan:%d (%s): no usable memory type for storage buffers",
                 c->be->device, c->be->info.name);
        return -1;
    }
    c->device_type = (uint32_t)t;
    c->heap_size = c->memprops.memoryHeaps[c->memprops.memoryTypes[t].heapIndex].size;
    c->block_size = BLOCK_BYTES < c->heap_size ? BLOCK_BYTES : c->heap_size;
    /* one allocation's limit (vk_device.c: maintenance3 and 4, or VKT_VULKAN_MAX_ALLOC) */
    c->max_alloc = c->phys->max_alloc;
    if (c->block_size > c->max_alloc) c->block_size = c->max_alloc;

    c->staging_size = STAGING_BYTES;
    if (vkt_vk_check(c, "vkCreateBuffer", make_buffer(c, c->staging_size, &c->staging)))
        return -1;
    c->d.vkGetBufferMemoryRequirements(c->dev, c->staging, &req);
    VkMemoryAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .allocationSize = req.size,
        .memoryTypeIndex = (uint32_t)st,
    };
    VkResult r = allocate(c, &ai, &c->staging_mem);
    if (r != VK_SUCCESS) {
        vkt_backend_failf(c->be, "vkAllocateMemory failed for %u MiB of staging memory: %s",
                          STAGING_BYTES >> 20, vkt_vk_result_name(r));
        return -1;
    }
    if (VKT_VK_TRY(c, vkBindBufferMemory, (c->dev, c->staging, c->staging_mem, 0)) ||
        VKT_VK_TRY(c, vkMapMemory, (c->dev, c->staging_mem, 0, VK_WHOLE_SIZE, 0, &c->staging_map)))
        return -1;
    return 0;
}

/* A host-mapped buffer (the staging ring, the readback buffer): unmapped, destroyed, its
 * handles cleared; a no-op on one never made. */
static void destroy_mapped(vkt_vk_ctx *c, VkBuffer *buf, VkDeviceMemory *mem, void **map) {
    if (*map) c->d.vkUnmapMemory(c->dev, *mem);
    if (*buf) c->d.vkDestroyBuffer(c->dev, *buf, NULL);
    if (*mem) c->d.vkFreeMemory(c->dev, *mem, NULL);
    *map = NULL;
    *buf = VK_NULL_HANDLE;
    *mem = VK_NULL_HANDLE;
}

void vkt_vk_memory_shutdown(vkt_vk_ctx *c) {
    vkt_vk_free_dead(c);
    for (int i = 0; i < c->nblocks; i++) {
        vkt_vk_block *b = &c->blocks[i];
        for (vkt_vk_range *r = b->ranges, *n; r; r = n) {
            n = r->next;
            free(r);
        }
        if (b->buffer) c->d.vkDestroyBuffer(c->dev, b->buffer, NULL);
        if (b->mem) c->d.vkFreeMemory(c->dev, b->mem, NULL);
    }
    free(c->blocks);
    c->blocks = NULL;
    c->nblocks = c->cap_blocks = 0;
    destroy_mapped(c, &c->readback, &c->readback_mem, &c->readback_map);
    destroy_mapped(c, &c->staging, &c->staging_mem, &c->staging_map);
}

/* A new block of `size` bytes; -1 with *why (the refusing call and its result, or "" for a
 * size beyond the heap or the allocation limit) when the device cannot. */
static int add_block(vkt_vk_ctx *c, VkDeviceSize size, char *why, size_t whylen) {
    why[0] = 0;
    if (size > c->heap_size || size > c->max_alloc) return -1;
    if (c->nblocks == c->cap_blocks) {
        int cap = c->cap_blocks ? 2 * c->cap_blocks : 64;
        vkt_vk_block *nb = realloc(c->blocks, (size_t)cap * sizeof *nb);
        if (!nb) {
            snprintf(why, whylen, "no host memory for the block table");
            return -1;
        }
        c->blocks = nb;
        c->cap_blocks = cap;
    }
    vkt_vk_block *b = &c->blocks[c->nblocks];
    memset(b, 0, sizeof *b);
    VkMemoryAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .allocationSize = size,
        .memoryTypeIndex = c->device_type,
    };
    VkBuffer buf;
    VkResult r = make_buffer(c, size, &buf);
    const char *call = "vkCreateBuffer";
    if (r == VK_SUCCESS) {
        VkMemoryRequirements req;
        c->d.vkGetBufferMemoryRequirements(c->dev, buf, &req);
        if (req.size > size) ai.allocationSize = req.size;
        r = allocate(c, &ai, &b->mem);
        call = "vkAllocateMemory";
        if (r == VK_SUCCESS) {
            r = c->d.vkBindBufferMemory(c->dev, buf, b->mem, 0);
            call = "vkBindBufferMemory";
        }
    }
    if (r != VK_SUCCESS) {
        snprintf(why, whylen, "%s of %.1f MiB failed: %s", call,
                 (double)ai.allocationSize / (1 << 20), vkt_vk_result_name(r));
        if (b->mem) c->d.vkFreeMemory(c->dev, b->mem, NULL);
        if (buf) c->d.vkDestroyBuffer(c->dev, buf, NULL);
        b->mem = VK_NULL_HANDLE;
        return -1;
    }
    b->buffer = buf;
    b->size = size;
    b->ranges = calloc(1, sizeof *b->ranges);
    VKT_VK_ASSERT(b->ranges != NULL);
    b->ranges->size = size;
    return c->nblocks++;
}

/* First fit in block bi; NULL when no free range is large enough. */
static vkt_buf *take(vkt_vk_ctx *c, int bi, VkDeviceSize size) {
    for (vkt_vk_range *r = c->blocks[bi].ranges; r; r = r->next) {
        if (r->used || r->size < size) continue;
        if (r->size > size) { /* split: the tail stays free */
            vkt_vk_range *t = calloc(1, sizeof *t);
            VKT_VK_ASSERT(t != NULL);
            t->off = r->off + size;
            t->size = r->size - size;
            t->prev = r;
            t->next = r->next;
            if (r->next) r->next->prev = t;
            r->next = t;
            r->size = size;
        }
        r->used = 1;
        vkt_buf *b = calloc(1, sizeof *b);
        VKT_VK_ASSERT(b != NULL);
        b->block = bi;
        b->off = r->off;
        b->size = size;
        return b;
    }
    return NULL;
}

vkt_buf *vkt_vk_alloc(vkt_vk_ctx *c, size_t bytes, char *err, size_t errlen) {
    VkDeviceSize size = ((VkDeviceSize)(bytes ? bytes : 1) + VKT_VK_ALIGN - 1) &
                        ~(VkDeviceSize)(VKT_VK_ALIGN - 1);
    for (int i = 0; i < c->nblocks; i++) {
        vkt_buf *b = take(c, i, size);
        if (b) return b;
    }
    VkDeviceSize bs = size > c->block_size ? size : c->block_size;
    char why[160];
    int bi = add_block(c, bs, why, sizeof why);
    if (bi < 0 && bs > size) /* the heap may fit a smaller block */
        bi = add_block(c, size, why, sizeof why);
    if (bi < 0 && size > c->max_alloc) {
        snprintf(err, errlen,
                 "vulkan:%d (%s): cannot allocate %zu bytes (%.1f MiB) in one buffer: the "
                 "device's largest allocation is %.1f MiB (min of maxMemoryAllocationSize and "
                 "maxBufferSize). HINT: a smaller batch_size or model",
                 c->be->device, c->be->info.name, bytes, (double)bytes / (1 << 20),
                 (double)c->max_alloc / (1 << 20));
        return NULL;
    }
    if (bi < 0) {
        snprintf(err, errlen,
                 "vulkan:%d (%s): out of memory on the device: %zu bytes requested, heap size "
                 "%.1f MiB%s%s%s%s. HINT: a smaller batch_size or model",
                 c->be->device, c->be->info.name, bytes, (double)c->heap_size / (1 << 20),
                 why[0] ? " (" : "", why, why[0] ? ")" : "", vkt_fault_note(c->be));
        return NULL;
    }
    return take(c, bi, size);
}

static void release(vkt_vk_ctx *c, vkt_buf *b) {
    vkt_vk_range *r = c->blocks[b->block].ranges;
    while (r && r->off != b->off) r = r->next;
    VKT_VK_ASSERT(r && r->used);
    r->used = 0;
    if (r->next && !r->next->used) { /* merge the next one into r */
        vkt_vk_range *n = r->next;
        r->size += n->size;
        r->next = n->next;
        if (n->next) n->next->prev = r;
        free(n);
    }
    if (r->prev && !r->prev->used) { /* merge r into the previous one */
        vkt_vk_range *p = r->prev;
        p->size += r->size;
        p->next = r->next;
        if (r->next) r->next->prev = p;
        free(r);
    }
    free(b);
}

void vkt_vk_free(vkt_vk_ctx *c, vkt_buf *b) {
    if (!b) return;
    if (!c->pending) {
        release(c, b);
        return;
    }
    b->next_dead = c->dead;
    c->dead = b;
}

void vkt_vk_free_dead(vkt_vk_ctx *c) {
    while (c->dead) {
        vkt_buf *b = c->dead;
        c->dead = b->next_dead;
        release(c, b);
    }
}

VkBuffer vkt_vk_buffer_of(vkt_vk_ctx *c, const vkt_buf *b) { return c->blocks[b->block].buffer; }
VkDeviceSize vkt_vk_offset_of(const vkt_buf *b) { return b->off; }

void vkt_vk_upload(vkt_vk_ctx *c, vkt_ptr dst, const void *src, size_t bytes) {
    VKT_VK_ASSERT(dst.buf && dst.off + bytes <= dst.buf->size);
    if (c->census) { /* nothing reaches the device; the copy is ordered like any other */
        vkt_vk_span w = vkt_vk_span_of(c, dst, bytes, 1);
        vkt_vk_order(c, &w, 1);
        return;
    }
    const char *s = src;
    while (bytes && !vkt_vk_failed(c)) {
        vkt_vk_prof_reserve(c); /* before the staging offset is taken */
        if (c->staging_used >= c->staging_size) vkt_vk_flush(c); /* the ring is full */
        if (vkt_vk_failed(c)) return;
        VkDeviceSize room = c->staging_size - c->staging_used;
        VkDeviceSize n = bytes < room ? bytes : room;
        memcpy((char *)c->staging_map + c->staging_used, s, n);
        if (!c->staging_coherent) {
            VkMappedMemoryRange mr = {.sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE,
                                      .memory = c->staging_mem,
                                      .size = VK_WHOLE_SIZE};
            if (VKT_VK_TRY(c, vkFlushMappedMemoryRanges, (c->dev, 1, &mr))) return;
        }
        VkBufferCopy bc = {.srcOffset = c->staging_used,
                           .dstOffset = dst.buf->off + dst.off,
                           .size = n};
        /* the ring's slot is fresh in this submission: only the destination is ordered */
        vkt_vk_span w = vkt_vk_span_of(c, dst, n, 1);
        vkt_vk_order(c, &w, 1);
        vkt_vk_prof_begin(c, "upload");
        VkCommandBuffer cmd = vkt_vk_cmd(c);
        if (!cmd) return;
        c->d.vkCmdCopyBuffer(cmd, c->staging, vkt_vk_buffer_of(c, dst.buf), 1, &bc);
        vkt_vk_prof_end(c);
        /* keep the ring's next slot aligned for copies */
        c->staging_used += (n + 15) & ~(VkDeviceSize)15;
        s += n;
        dst.off += n;
        bytes -= n;
    }
}

/* The host-cached readback buffer (vk_context.h), made once; 0 when there is none. Made
 * outside the fault-injection count (VKT_FAULT_INJECT=alloc:N numbers the model's blocks):
 * it is an optimization, and a refusal only means downloads use the ring. */
static int readback_ready(vkt_vk_ctx *c) {
    if (c->readback_tried) return c->readback_map != NULL;
    c->readback_tried = 1;
    const char *off = getenv("VKT_VULKAN_NO_READBACK"); /* a test knob: the ring's path */
    if (off && !strcmp(off, "1")) return 0;
    VkBuffer buf;
    if (make_buffer(c, STAGING_BYTES, &buf) != VK_SUCCESS) return 0;
    VkMemoryRequirements req;
    c->d.vkGetBufferMemoryRequirements(c->dev, buf, &req);
    const VkMemoryPropertyFlags cached =
        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_CACHED_BIT;
    int t = find_type(c, req.memoryTypeBits, cached | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
    c->readback_coherent = t >= 0;
    if (t < 0) t = find_type(c, req.memoryTypeBits, cached);
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                               .allocationSize = req.size,
                               .memoryTypeIndex = (uint32_t)t};
    VkDeviceMemory mem = VK_NULL_HANDLE;
    void *map = NULL;
    if (t < 0 || c->d.vkAllocateMemory(c->dev, &ai, NULL, &mem) != VK_SUCCESS ||
        c->d.vkBindBufferMemory(c->dev, buf, mem, 0) != VK_SUCCESS ||
        c->d.vkMapMemory(c->dev, mem, 0, VK_WHOLE_SIZE, 0, &map) != VK_SUCCESS) {
        if (mem) c->d.vkFreeMemory(c->dev, mem, NULL);
        c->d.vkDestroyBuffer(c->dev, buf, NULL);
        return 0;
    }
    c->readback = buf;
    c->readback_mem = mem;
    c->readback_map = map;
    c->readback_size = STAGING_BYTES;
    return 1;
}

void vkt_vk_download(vkt_vk_ctx *c, void *dst, vkt_ptr src, size_t bytes) {
    VKT_VK_ASSERT(src.buf && src.off + bytes <= src.buf->size);
    if (c->census) {
        vkt_vk_span r = vkt_vk_span_of(c, src, bytes, 0);
        vkt_vk_order(c, &r, 1);
        memset(dst, 0, bytes);
        return;
    }
    char *d = dst;
    int cached = readback_ready(c);
    /* the copy joins the queued work, so a step's download is one submission; larger reads
     * go in pieces of the readback buffer (or of what is left of the ring), one submission
     * each */
    while (bytes && !vkt_vk_failed(c)) {
        vkt_vk_prof_reserve(c);
        if (!cached && c->staging_used >= c->staging_size) vkt_vk_flush(c);
        VkDeviceSize at = cached ? 0 : c->staging_used;
        VkDeviceSize room = cached ? c->readback_size : c->staging_size - at;
        VkDeviceSize n = bytes < room ? bytes : room;
        VkBufferCopy bc = {.srcOffset = src.buf->off + src.off, .dstOffset = at, .size = n};
        vkt_vk_span r = vkt_vk_span_of(c, src, n, 0); /* the host barrier orders the rest */
        vkt_vk_order(c, &r, 1);
        vkt_vk_prof_begin(c, "download");
        VkCommandBuffer cmd = vkt_vk_cmd(c);
        if (!cmd) return; /* failed: vkt_download zero-fills dst and returns the error */
        c->d.vkCmdCopyBuffer(cmd, vkt_vk_buffer_of(c, src.buf),
                             cached ? c->readback : c->staging, 1, &bc);
        vkt_vk_prof_end(c);
        vkt_vk_flush(c);
        if (vkt_vk_failed(c)) return;
        if (!(cached ? c->readback_coherent : c->staging_coherent)) {
            VkMappedMemoryRange mr = {.sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE,
                                      .memory = cached ? c->readback_mem : c->staging_mem,
                                      .size = VK_WHOLE_SIZE};
            if (VKT_VK_TRY(c, vkInvalidateMappedMemoryRanges, (c->dev, 1, &mr))) return;
        }
        memcpy(d, (char *)(cached ? c->readback_map : c->staging_map) + at, n);
        d += n;
        src.off += n;
        bytes -= n;
    }
}
