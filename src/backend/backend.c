/* Device registry and op dispatch: maps global device indices onto the compiled backends and
 * forwards every public op to the chosen backend's ops table. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend_impl.h"

/* Registration order is --list-devices order. GPU backends join here under their
 * VKT_USE_* definitions; a backend without a driver contributes no devices. */
static const vkt_backend_ops *const registry[] = {
    &vkt_cpu_backend_ops,
#ifdef VKT_USE_VULKAN
    &vkt_vulkan_backend_ops,
#endif
#ifdef VKT_USE_OPENCL
    &vkt_opencl_backend_ops,
#endif
};
#define NUM_BACKENDS ((int)(sizeof registry / sizeof registry[0]))

int vkt_device_count(void) {
    int n = 0;
    for (int b = 0; b < NUM_BACKENDS; b++) n += registry[b]->device_count();
    return n;
}

/* Global index -> (backend, index within it). */
static const vkt_backend_ops *locate(int i, int *local) {
    if (i < 0) return NULL;
    for (int b = 0; b < NUM_BACKENDS; b++) {
        int n = registry[b]->device_count();
        if (i < n) {
            *local = i;
            return registry[b];
        }
        i -= n;
    }
    return NULL;
}

int vkt_device_info_get(int i, vkt_device_info *out) {
    int local;
    const vkt_backend_ops *ops = locate(i, &local);
    if (!ops) return -1;
    memset(out, 0, sizeof *out);
    if (ops->device_info(local, out)) return -1;
    snprintf(out->backend, sizeof out->backend, "%s", ops->name);
    out->backend_index = local;
    out->can_train = ops->init != NULL;
    return 0;
}

const char *vkt_device_notes(void) {
    static char notes[1024];
    notes[0] = 0;
    for (int b = 0; b < NUM_BACKENDS; b++) {
        char line[256] = "";
        if (registry[b]->note) registry[b]->note(line, sizeof line);
        if (line[0] && strlen(notes) + strlen(line) + 2 < sizeof notes) {
            strcat(notes, line);
            strcat(notes, "\n");
        }
    }
    return notes;
}

static int parse_index(const char *s, int *out) {
    char *end;
    if (!*s) return -1;
    long v = strtol(s, &end, 10);
    if (*end || v < 0 || v > 1000000) return -1;
    *out = (int)v;
    return 0;
}

int vkt_device_resolve(const char *spec, char *err, size_t errlen) {
    int n = vkt_device_count();
    if (!spec || !*spec || strcmp(spec, "auto") == 0) {
        /* the device with the highest peak estimate among those whose backend can train;
         * ties go to the lower index */
        int best = -1;
        double best_flops = -1;
        for (int i = 0; i < n; i++) {
            vkt_device_info info;
            if (vkt_device_info_get(i, &info) == 0 && info.can_train &&
                info.peak_flops > best_flops) {
                best = i;
                best_flops = info.peak_flops;
            }
        }
        if (best < 0 && n > 0)
            snprintf(err, errlen,
                     "none of the %d device%s found can train in this version (their backends' "
                     "ops are not implemented). HINT: run vktrain --list-devices",
                     n, n == 1 ? "" : "s");
        else if (best < 0)
            snprintf(err, errlen, "no device found. HINT: run vktrain --list-devices");
        return best;
    }
    int idx;
    const char *colon = strchr(spec, ':');
    if (!colon) {
        if (parse_index(spec, &idx) || idx >= n) {
            snprintf(err, errlen,
                     "device '%s' does not exist (%d device%s found). HINT: run vktrain "
                     "--list-devices",
                     spec, n, n == 1 ? "" : "s");
            return -1;
        }
        return idx;
    }
    size_t blen = (size_t)(colon - spec);
    int base = 0;
    for (int b = 0; b < NUM_BACKENDS; b++) {
        int count = registry[b]->device_count();
        if (strlen(registry[b]->name) == blen && strncmp(registry[b]->name, spec, blen) == 0) {
            if (parse_index(colon + 1, &idx) || idx >= count) {
                snprintf(err, errlen,
                         "device '%s' does not exist: backend %s has %d device%s. HINT: run "
                         "vktrain --list-devices",
                         spec, registry[b]->name, count, count == 1 ? "" : "s");
                return -1;
            }
            return base + idx;
        }
        base += count;
    }
    char names[256] = "";
    for (int b = 0; b < NUM_BACKENDS; b++) {
        if (b) strncat(names, ", ", sizeof names - strlen(names) - 1);
        strncat(names, registry[b]->name, sizeof names - strlen(names) - 1);
    }
    snprintf(err, errlen,
             "device '%s': unknown backend '%.*s' (compiled backends: %s). HINT: run vktrain "
             "--list-devices",
             spec, (int)blen, spec, names);
    return -1;
}

/* ---- device failures ---- */

static const char *const fault_names[VKT_FAULT_KINDS] = {"", "submit", "alloc", "download"};

/* VKT_FAULT_INJECT = "" | <kind>:<N>; 0, or -1 with err for a malformed value. */
static int parse_fault(vkt_backend *be, char *err, size_t errlen) {
    const char *v = getenv("VKT_FAULT_INJECT");
    if (!v || !*v) return 0;
    const char *colon = strchr(v, ':');
    char *end = NULL;
    unsigned long long n = colon ? strtoull(colon + 1, &end, 10) : 0;
    for (int k = 1; colon && k < VKT_FAULT_KINDS; k++)
        if (strlen(fault_names[k]) == (size_t)(colon - v) &&
            !strncmp(v, fault_names[k], (size_t)(colon - v)) && colon[1] != '-' && end &&
            end != colon + 1 && !*end && n >= 1) {
            be->fault_kind = (vkt_fault_kind)k;
            be->fault_at = n;
            snprintf(be->fault_spec, sizeof be->fault_spec, "%s:%llu", fault_names[k], n);
            return 0;
        }
    snprintf(err, errlen,
             "VKT_FAULT_INJECT=%.64s: expected submit:N, alloc:N or download:N with N >= 1 "
             "(a test knob: the Nth such device call fails). HINT: unset VKT_FAULT_INJECT",
             v);
    return -1;
}

int vkt_fault_hit(vkt_backend *be, vkt_fault_kind kind) {
    if (++be->fault_seen[kind] != be->fault_at || kind != be->fault_kind) return 0;
    be->fault_fired = 1;
    return 1;
}

const char *vkt_fault_note(const vkt_backend *be) {
    static _Thread_local char note[96];
    if (!be->fault_fired) return "";
    snprintf(note, sizeof note, " (injected: VKT_FAULT_INJECT=%s)", be->fault_spec);
    return note;
}

void vkt_backend_failf(vkt_backend *be, const char *fmt, ...) {
    if (be->failed) return; /* the first failure is the one that explains the rest */
    be->failed = 1;
    int n = snprintf(be->error, sizeof be->error, "%s:%d (%s): ", be->info.backend, be->device,
                     be->info.name);
    if (n < 0 || (size_t)n >= sizeof be->error) return;
    char msg[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* an injected fault says so before any HINT, which stays last */
    char *hint = strstr(msg, ". HINT: ");
    if (hint) *hint = 0;
    snprintf(be->error + n, sizeof be->error - (size_t)n, "%s%s%s%s", msg, vkt_fault_note(be),
             hint ? ". HINT: " : "", hint ? hint + 8 : "");
}

void vkt_backend_fail(vkt_backend *be, const char *call, const char *result, const char *hint) {
    vkt_backend_failf(be, "%s failed: %s%s%s", call, result, hint ? ". HINT: " : "",
                      hint ? hint : "");
}

int vkt_backend_error(const vkt_backend *be, char *err, size_t errlen) {
    if (!be->failed) return 0;
    if (err && errlen) snprintf(err, errlen, "%s", be->error);
    return -1;
}

const char *vkt_backend_missing_op(const vkt_backend_ops *ops) {
#define VKT_OP(name, params, args)                                                            \
    if (!ops->name) return #name;
#include "backend/ops.def"
    return NULL;
}

vkt_backend *vkt_backend_create(int device_index, char *err, size_t errlen) {
    int local;
    const vkt_backend_ops *ops = locate(device_index, &local);
    if (!ops) {
        snprintf(err, errlen, "device %d does not exist. HINT: run vktrain --list-devices",
                 device_index);
        return NULL;
    }
    vkt_backend *be = calloc(1, sizeof *be);
    if (!be) {
        snprintf(err, errlen, "out of host memory");
        return NULL;
    }
    be->ops = ops;
    be->device = local;
    if (vkt_device_info_get(device_index, &be->info)) {
        snprintf(err, errlen, "device %d (%s:%d): no device information", device_index,
                 ops->name, local);
        free(be);
        return NULL;
    }
    if (!ops->init) { /* a backend that lists devices before its ops exist */
        snprintf(err, errlen,
                 "%s:%d (%s): the %s backend cannot train yet: its compute ops are not "
                 "implemented in this version. HINT: --device cpu:0",
                 ops->name, local, be->info.name, ops->name);
        free(be);
        return NULL;
    }
    const char *missing = vkt_backend_missing_op(ops);
    if (missing) { /* a backend still being written: refused by name, never called */
        snprintf(err, errlen,
                 "%s:%d (%s): the %s backend does not implement the op %s in this version. "
                 "HINT: --device cpu:0",
                 ops->name, local, be->info.name, ops->name, missing);
        free(be);
        return NULL;
    }
    if (parse_fault(be, err, errlen)) {
        free(be);
        return NULL;
    }
    if (err && errlen) err[0] = 0;
    if (ops->init(be, err, errlen)) {
        if (!err[0]) snprintf(err, errlen, "device %d (%s:%d) failed to initialise",
                              device_index, ops->name, local);
        free(be);
        return NULL;
    }
    return be;
}

void vkt_backend_destroy(vkt_backend *be) {
    if (!be) return;
    be->ops->shutdown(be);
    vkt_profile_table_free(&be->host_prof);
    free(be);
}

/* ---- profiling ---- */

static void add_groups(struct vkt_profile_slot *s, uint32_t groups) {
    if (!groups) return;
    if (s->ngroups == s->capgroups) {
        uint32_t cap = s->capgroups ? 2 * s->capgroups : 16;
        uint32_t *g = realloc(s->groups, cap * sizeof *g);
        if (!g) return; /* a profile that misses a count beats a failed run */
        s->groups = g;
        s->capgroups = cap;
    }
    s->groups[s->ngroups++] = groups;
}

void vkt_profile_table_add_groups(vkt_profile_table *t, const char *name, double ms,
                                  uint32_t groups) {
    for (int i = 0; i < t->n; i++)
        if (t->slots[i].name == name || strcmp(t->slots[i].name, name) == 0) {
            t->slots[i].calls++;
            t->slots[i].total_ms += ms;
            add_groups(&t->slots[i], groups);
            return;
        }
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 32;
        struct vkt_profile_slot *s = realloc(t->slots, (size_t)cap * sizeof *s);
        if (!s) return; /* a profile that misses a name beats a failed run */
        memset(s + t->cap, 0, (size_t)(cap - t->cap) * sizeof *s);
        t->slots = s;
        t->cap = cap;
    }
    struct vkt_profile_slot *s = &t->slots[t->n++];
    s->name = name;
    s->calls = 1;
    s->total_ms = ms;
    s->ngroups = 0; /* a cleared table keeps its arrays for reuse */
    add_groups(s, groups);
}

void vkt_profile_table_add(vkt_profile_table *t, const char *name, double ms) {
    vkt_profile_table_add_groups(t, name, ms, 0);
}

void vkt_profile_table_clear(vkt_profile_table *t) {
    for (int i = 0; i < t->n; i++) t->slots[i].ngroups = 0;
    t->n = 0;
}

void vkt_profile_table_free(vkt_profile_table *t) {
    for (int i = 0; i < t->cap; i++) free(t->slots[i].groups);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int by_time_desc(const void *a, const void *b) {
    const vkt_profile_entry *x = a, *y = b;
    if (x->total_ms != y->total_ms) return x->total_ms < y->total_ms ? 1 : -1;
    return strcmp(x->name, y->name);
}

int vkt_profile_table_report(const vkt_profile_table *t, vkt_profile_entry *out, int max) {
    if (max <= 0 || !out) return t->n;
    vkt_profile_entry *all = malloc((size_t)(t->n ? t->n : 1) * sizeof *all);
    if (!all) return 0;
    for (int i = 0; i < t->n; i++) {
        snprintf(all[i].name, sizeof all[i].name, "%s", t->slots[i].name);
        all[i].calls = t->slots[i].calls;
        all[i].total_ms = t->slots[i].total_ms;
        all[i].min_groups = all[i].median_groups = 0;
        uint32_t ng = t->slots[i].ngroups;
        if (ng) { /* sorted in place: the order of the counts does not matter */
            qsort(t->slots[i].groups, ng, sizeof *t->slots[i].groups, cmp_u32);
            all[i].min_groups = t->slots[i].groups[0];
            all[i].median_groups = t->slots[i].groups[ng / 2];
        }
    }
    qsort(all, (size_t)t->n, sizeof *all, by_time_desc);
    memcpy(out, all, (size_t)(t->n < max ? t->n : max) * sizeof *all);
    free(all);
    return t->n;
}

int vkt_profile_enable(vkt_backend *be, int on) {
    if (be->failed) return -1;
    if (be->ops->profile_enable) return be->ops->profile_enable(be, on);
    if (on) vkt_profile_table_clear(&be->host_prof);
    be->host_timing = on != 0;
    return 0;
}

int vkt_profile_report(vkt_backend *be, vkt_profile_entry *out, int max) {
    if (be->ops->profile_read) return be->ops->profile_read(be, out, max);
    return vkt_profile_table_report(&be->host_prof, out, max);
}

static double host_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* Runs `call` unless the device has failed (then every op is a no-op: the policy of
 * backend.h); with host timing on, adds its duration under `name`. Free when off: two
 * predictable branches per op. */
#define TIMED(name, call)                                                                     \
    do {                                                                                      \
        if (be->failed) {                                                                     \
            /* after a device error nothing reaches the driver again */                       \
        } else if (!be->host_timing) {                                                        \
            call;                                                                             \
        } else {                                                                              \
            double t0_ = host_ms();                                                           \
            call;                                                                             \
            vkt_profile_table_add(&be->host_prof, name, host_ms() - t0_);                     \
        }                                                                                     \
    } while (0)

const vkt_device_info *vkt_backend_info(const vkt_backend *be) { return &be->info; }

int vkt_backend_set_option(vkt_backend *be, const char *key, const char *value, char *err,
                           size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!value) value = "";
    int precision = !strcmp(key, "precision");
    if (precision && strcmp(value, "fp32") && strcmp(value, "fp16")) {
        snprintf(err, errlen, "%s:%d: unknown precision \"%s\" (fp32, fp16)", be->info.backend,
                 be->device, value);
        return 1;
    }
    if (be->ops->set_option && be->ops->set_option(be, key, value, err, errlen)) return 1;
    if (precision) be->fp16_matmul = !strcmp(value, "fp16");
    return 0;
}
int vkt_synchronize(vkt_backend *be) {
    be->syncs++;
    if (!be->failed) be->ops->synchronize(be);
    return be->failed ? -1 : 0;
}

uint64_t vkt_sync_count(const vkt_backend *be) { return be->syncs; }

double vkt_time_ms(vkt_backend *be) {
    be->syncs++;
    if (be->failed) return host_ms();
    if (be->ops->time_ms) return be->ops->time_ms(be);
    be->ops->synchronize(be);
    return host_ms();
}

vkt_buf *vkt_alloc(vkt_backend *be, size_t bytes, char *err, size_t errlen) {
    if (be->failed) {
        snprintf(err, errlen, "%s", be->error);
        return NULL;
    }
    return be->ops->alloc(be, bytes, err, errlen);
}
void vkt_free(vkt_backend *be, vkt_buf *buf) {
    if (buf) be->ops->free(be, buf);
}
uint64_t vkt_backend_own_bytes(vkt_backend *be) {
    return be->ops->own_bytes ? be->ops->own_bytes(be) : 0;
}
void vkt_upload(vkt_backend *be, vkt_ptr dst, const void *src, size_t bytes) {
    TIMED("upload", be->ops->upload(be, dst, src, bytes));
}
int vkt_download(vkt_backend *be, void *dst, vkt_ptr src, size_t bytes) {
    be->syncs++;
    TIMED("download", be->ops->download(be, dst, src, bytes));
    if (!be->failed) return 0;
    if (bytes) memset(dst, 0, bytes); /* never stale or partial data */
    return -1;
}
void vkt_fill(vkt_backend *be, vkt_ptr dst, float value, size_t n) {
    TIMED("fill", be->ops->fill(be, dst, value, n));
}
void vkt_copy(vkt_backend *be, vkt_ptr dst, vkt_ptr src, size_t bytes) {
    TIMED("copy", be->ops->copy(be, dst, src, bytes));
}

int vkt_backend_precision_fp16(const vkt_backend *be) { return be->fp16_matmul; }

/* fp16 tensors go only where backend.h allows them: anything else is a caller's bug. */
static void require_types(int ok, const char *op, const char *what) {
    if (ok) return;
    fprintf(stderr, "vktrain: internal error: %s: %s\n", op, what);
    abort();
}
static void check_matmul(vkt_ptr c, vkt_ptr a, vkt_ptr b, vkt_ptr bias, int M, int N, int K,
                         int trans_a, int trans_b, float alpha, float beta) {
    (void)a, (void)b, (void)M, (void)N, (void)K, (void)trans_a, (void)trans_b, (void)alpha,
        (void)beta;
    require_types(!c.half && !bias.half, "vkt_matmul", "C and the bias must be fp32 tensors");
}
static void check_to_half(vkt_ptr dst, vkt_ptr src, size_t n) {
    (void)n;
    require_types(dst.half && !src.half && dst.off % 2 == 0, "vkt_to_half",
                  "dst must be an fp16 tensor at an even offset, src an fp32 one");
}

/* A producer's fp16 copy (out_half): none, or an fp16 tensor at an even offset. */
static void require_half_copy(vkt_ptr h, const char *op) {
    require_types(!h.buf || (h.half && h.off % 2 == 0), op,
                  "out_half must be VKT_NULL_PTR or an fp16 tensor at an even offset");
}
static void check_layernorm_forward(vkt_ptr out, vkt_ptr mean, vkt_ptr rstd, vkt_ptr inp,
                                    vkt_ptr weight, vkt_ptr bias, int N, int C, vkt_ptr out_half) {
    (void)out, (void)mean, (void)rstd, (void)inp, (void)weight, (void)bias, (void)N, (void)C;
    require_half_copy(out_half, "vkt_layernorm_forward");
}
static void check_attention_forward(vkt_ptr out, vkt_ptr lse, vkt_ptr qkv, int B, int T, int C,
                                    int NH, vkt_ptr out_half) {
    (void)out, (void)lse, (void)qkv, (void)B, (void)T, (void)C, (void)NH;
    require_half_copy(out_half, "vkt_attention_forward");
}
static void check_residual_layernorm_forward(vkt_ptr res, vkt_ptr out, vkt_ptr mean,
                                             vkt_ptr rstd, vkt_ptr a, vkt_ptr b, vkt_ptr weight,
                                             vkt_ptr bias, int N, int C, vkt_ptr out_half) {
    (void)res, (void)out, (void)mean, (void)rstd, (void)a, (void)b, (void)weight, (void)bias,
        (void)N, (void)C;
    require_half_copy(out_half, "vkt_residual_layernorm_forward");
}
static void check_gelu_forward(vkt_ptr out, vkt_ptr inp, size_t n, vkt_ptr out_half) {
    (void)out, (void)inp, (void)n;
    require_half_copy(out_half, "vkt_gelu_forward");
}
static void check_matmul_gelu(vkt_ptr pre, vkt_ptr out, vkt_ptr a, vkt_ptr b, vkt_ptr bias,
                              int M, int N, int K, int trans_a, int trans_b, vkt_ptr out_half) {
    (void)a, (void)b, (void)M, (void)N, (void)K, (void)trans_a, (void)trans_b;
    require_types(!pre.half && !out.half && !bias.half, "vkt_matmul_gelu",
                  "pre, out and the bias must be fp32 tensors");
    require_half_copy(out_half, "vkt_matmul_gelu");
}

/* The public entry point of every compute op (ops.def): the argument check where there is
 * one, then the backend's op, timed on the host when host profiling is on and skipped after
 * a device failure (TIMED). Profile names are the op names. */
#define VKT_OP(name, params, args)                                                            \
    void vkt_##name(vkt_backend *be, VKT_UNPAREN params) {                                    \
        TIMED(#name, be->ops->name(be, VKT_UNPAREN args));                                    \
    }
#define VKT_OP_CHECKED(name, params, args)                                                    \
    void vkt_##name(vkt_backend *be, VKT_UNPAREN params) {                                    \
        check_##name(VKT_UNPAREN args);                                                       \
        TIMED(#name, be->ops->name(be, VKT_UNPAREN args));                                    \
    }
#include "backend/ops.def"
