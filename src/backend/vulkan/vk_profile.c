/* Device-side op timing for the vulkan backend (vkt_profile_enable/report): while profiling is
 * on, every dispatch, copy and fill is bracketed by two timestamp queries in the open command
 * buffer; flush reads them back after the fence and adds each difference to a per-name table.
 * When off, nothing is recorded: the hooks return at their first test. */
#include <string.h>

#include "backend/vulkan/vk_context.h"

#define FIRST_CAP 4096u /* queries per submission to start with (2048 timed commands) */

static void destroy_pool(vkt_vk_ctx *c) {
    if (c->prof_pool) c->d.vkDestroyQueryPool(c->dev, c->prof_pool, NULL);
    c->prof_pool = VK_NULL_HANDLE;
    free(c->prof_names);
    free(c->prof_groups);
    c->prof_names = NULL;
    c->prof_groups = NULL;
    c->prof_cap = 0;
}

/* Only between submissions: no query of the pool is in flight. */
static void make_pool(vkt_vk_ctx *c, uint32_t cap) {
    destroy_pool(c);
    VkQueryPoolCreateInfo qi = {
        .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
        .queryType = VK_QUERY_TYPE_TIMESTAMP,
        .queryCount = cap,
    };
    if (VKT_VK_TRY(c, vkCreateQueryPool, (c->dev, &qi, NULL, &c->prof_pool))) {
        c->prof_pool = VK_NULL_HANDLE;
        return;
    }
    c->prof_names = calloc(cap / 2, sizeof *c->prof_names);
    c->prof_groups = calloc(cap / 2, sizeof *c->prof_groups);
    VKT_VK_ASSERT(c->prof_names != NULL && c->prof_groups != NULL);
    c->prof_cap = cap;
}

void vkt_vk_prof_shutdown(vkt_vk_ctx *c) {
    destroy_pool(c);
    vkt_profile_table_free(&c->prof);
}

/* Room for one more timed command in this submission; submits the queued work when the pool
 * is full (and doubles it for the next submissions). Call it before anything that a flush
 * would invalidate (a descriptor set, a staging offset), then vkt_vk_prof_begin. */
void vkt_vk_prof_reserve(vkt_vk_ctx *c) {
    if (!c->prof_on || c->prof_used + 2 <= c->prof_cap) return;
    c->prof_want = c->prof_cap * 2;
    vkt_vk_flush(c);
}

void vkt_vk_prof_begin(vkt_vk_ctx *c, const char *name) {
    if (!c->prof_on && !c->prof_depth) return;
    if (c->prof_depth++) return; /* nested (a timed command inside another): the outer counts */
    vkt_vk_prof_reserve(c);
    VkCommandBuffer cmd = vkt_vk_cmd(c);
    if (!cmd || !c->prof_pool) return; /* the device has failed */
    if (c->prof_used == 0) c->d.vkCmdResetQueryPool(cmd, c->prof_pool, 0, c->prof_cap);
    /* bottom of pipe: when everything recorded before has finished, i.e. the previous
     * command's end, since every command is followed by a barrier */
    c->d.vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, c->prof_pool,
                             c->prof_used);
    c->prof_names[c->prof_used / 2] = name;
    c->prof_groups[c->prof_used / 2] = 0;
    c->prof_used++;
    c->prof_open = 1;
}

void vkt_vk_prof_groups(vkt_vk_ctx *c, uint32_t groups) {
    if (c->prof_open && c->prof_depth == 1) c->prof_groups[(c->prof_used - 1) / 2] = groups;
}

void vkt_vk_prof_end(vkt_vk_ctx *c) {
    if (!c->prof_depth || --c->prof_depth || !c->prof_open) return;
    VkCommandBuffer cmd = vkt_vk_cmd(c);
    if (!cmd) return;
    c->d.vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, c->prof_pool,
                             c->prof_used);
    c->prof_used++;
    c->prof_open = 0;
}

/* After the fence: the submission's timestamps into the table. A command whose begin and end
 * straddle a submission (something inside it flushed) is not counted. */
void vkt_vk_prof_collect(vkt_vk_ctx *c) {
    uint32_t used = c->prof_used - (uint32_t)c->prof_open;
    if (used >= 2) {
        uint64_t *t = malloc(used * sizeof *t);
        VKT_VK_ASSERT(t != NULL);
        if (VKT_VK_TRY(c, vkGetQueryPoolResults,
                       (c->dev, c->prof_pool, 0, used, used * sizeof *t, t, sizeof *t,
                        VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT)))
            used = 0; /* nothing to add; the sticky error stops the run */
        double ms_per_tick = (double)c->props.limits.timestampPeriod * 1e-6;
        for (uint32_t i = 0; i + 1 < used; i += 2) {
            uint64_t ticks = (t[i + 1] - t[i]) & c->prof_mask; /* wraps at validBits */
            vkt_profile_table_add_groups(&c->prof, c->prof_names[i / 2],
                                         (double)ticks * ms_per_tick, c->prof_groups[i / 2]);
        }
        free(t);
    }
    c->prof_used = 0;
    c->prof_open = 0;
    if (c->prof_on && c->prof_want > c->prof_cap) make_pool(c, c->prof_want);
}

int vkt_vk_op_profile_enable(vkt_backend *be, int on) {
    vkt_vk_ctx *c = vkt_vk(be);
    if (on && !c->prof_valid_bits) return -1; /* this queue has no timestamps */
    /* what is queued belongs to the period before: finish it first (one submission, once) */
    if (c->pending) vkt_vk_flush(c);
    if (on) {
        vkt_profile_table_clear(&c->prof);
        c->prof_mask = c->prof_valid_bits >= 64 ? ~(uint64_t)0
                                                : ((uint64_t)1 << c->prof_valid_bits) - 1;
        if (!c->prof_pool) make_pool(c, c->prof_want > FIRST_CAP ? c->prof_want : FIRST_CAP);
        if (!c->prof_pool) return -1; /* the sticky error says why */
    }
    c->prof_on = on != 0;
    return 0;
}

int vkt_vk_op_profile_read(vkt_backend *be, vkt_profile_entry *out, int max) {
    return vkt_profile_table_report(&vkt_vk(be)->prof, out, max);
}
