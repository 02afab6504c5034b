/* The loader: batch k as a pure function of (view, order, seed, k, B, T), and a background
 * thread that computes the next batches into a ring of host buffers while the device trains.
 * Because batches are pure functions, prefetching changes nothing about which tokens a step
 * sees, and a resumed run (same seed and k) continues with the same next batch. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/rng.h"
#include "vktrain/data.h"

/* ---- batches as pure functions ---------------------------------------------------------------- */

/* Copies the window of T+1 tokens at start of span s. */
static void window(const vkt_span *s, size_t start, int T, int32_t *in, int32_t *tg) {
    const uint16_t *p = s->ids + start;
    for (int i = 0; i < T; i++) {
        in[i] = p[i];
        tg[i] = p[i + 1];
    }
}

/* Random window starts: a span of n tokens has n - T of them (a start s needs s + T < n). */
static size_t span_starts(const vkt_span *s, int T) {
    return s->n > (size_t)T ? s->n - (size_t)T : 0;
}

static size_t span_windows(const vkt_span *s, int T) {
    return s->n > (size_t)T ? (s->n - 1) / (size_t)T : 0;
}

size_t vkt_view_windows(const vkt_token_view *v, int T) {
    size_t w = 0;
    for (int i = 0; i < v->n_spans; i++) w += span_windows(&v->spans[i], T);
    return w;
}

/* Window number w of the sequential order (w < vkt_view_windows). */
static void sequential_window(const vkt_token_view *v, size_t w, int T, int32_t *in,
                              int32_t *tg) {
    for (int i = 0; i < v->n_spans; i++) {
        size_t n = span_windows(&v->spans[i], T);
        if (w < n) {
            window(&v->spans[i], w * (size_t)T, T, in, tg);
            return;
        }
        w -= n;
    }
}

static void random_window(const vkt_token_view *v, size_t total_starts, vkt_rng *rng, int T,
                          int32_t *in, int32_t *tg) {
    size_t u = vkt_rng_below(rng, total_starts);
    for (int i = 0; i < v->n_spans; i++) {
        size_t n = span_starts(&v->spans[i], T);
        if (u < n) {
            window(&v->spans[i], u, T, in, tg);
            return;
        }
        u -= n;
    }
}

void vkt_batch_slice_at(const vkt_token_view *v, vkt_data_order order, uint64_t seed,
                        uint64_t k, int global_B, int offset, int B, int T, int32_t *inputs,
                        int32_t *targets) {
    if (order == VKT_ORDER_SEQUENTIAL) {
        size_t total = vkt_view_windows(v, T);
        for (int b = 0; b < B; b++)
            sequential_window(v,
                              (size_t)((k * (uint64_t)global_B + (uint64_t)(offset + b)) % total),
                              T, inputs + (size_t)b * T, targets + (size_t)b * T);
        return;
    }
    size_t total = 0;
    for (int i = 0; i < v->n_spans; i++) total += span_starts(&v->spans[i], T);
    /* an independent stream per batch, its start a mix of (seed, k): batch k never depends
     * on the batches before it. Row b is the stream's b-th draw: a slice skips the draws of
     * the rows before it. */
    vkt_rng mix = {seed};
    mix.state = vkt_rng_u64(&mix) ^ k;
    vkt_rng rng = {vkt_rng_u64(&mix)};
    for (int b = 0; b < offset; b++) (void)vkt_rng_below(&rng, total);
    for (int b = 0; b < B; b++)
        random_window(v, total, &rng, T, inputs + (size_t)b * T, targets + (size_t)b * T);
}

void vkt_batch_at(const vkt_token_view *v, vkt_data_order order, uint64_t seed, uint64_t k, int B,
                  int T, int32_t *inputs, int32_t *targets) {
    vkt_batch_slice_at(v, order, seed, k, B, 0, B, T, inputs, targets);
}

void vkt_eval_batch(const vkt_token_view *v, int i, int B, int T, int32_t *inputs,
                    int32_t *targets) {
    vkt_batch_at(v, VKT_ORDER_SEQUENTIAL, 0, (uint64_t)i, B, T, inputs, targets);
}
void vkt_eval_batch_slice(const vkt_token_view *v, int i, int global_B, int offset, int B, int T,
                          int32_t *inputs, int32_t *targets) {
    vkt_batch_slice_at(v, VKT_ORDER_SEQUENTIAL, 0, (uint64_t)i, global_B, offset, B, T, inputs,
                       targets);
}

/* ---- the prefetching loader ------------------------------------------------------------------ */

enum { SLOT_EMPTY, SLOT_FILLING, SLOT_FULL };

typedef struct slot {
    int state;
    uint64_t k;         /* batch index it holds (or is being filled with) */
    int B, T;           /* its shape */
    unsigned gen;       /* the request generation it was filled for */
    int32_t *in, *tg;   /* max_B * max_T each */
} slot;

struct vkt_loader {
    const vkt_token_view *view;
    vkt_data_order order;
    int max_B, max_T, depth;
    int global_B, offset; /* batches are rows [offset, offset + B) of global_B (0: B of B) */
    vkt_loader_state state; /* state.batches = next batch handed out */
    slot *ring;             /* depth slots; batch k lives in ring[k % depth] */
    /* prefetch thread (depth > 0) */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    uint64_t produce_next; /* next batch index the thread computes */
    int B, T;              /* the shape being prefetched: the last one asked for */
    unsigned gen;          /* bumped when the request stream changes (seek, new shape) */
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Batch k as this loader serves it: its slice of the global batch, or all of it. */
static void batch_of(const vkt_loader *l, uint64_t seed, uint64_t k, int global_B, int offset,
                     int B, int T, int32_t *in, int32_t *tg) {
    if (global_B > 0)
        vkt_batch_slice_at(l->view, l->order, seed, k, global_B, offset, B, T, in, tg);
    else
        vkt_batch_at(l->view, l->order, seed, k, B, T, in, tg);
}

static void *prefetch_main(void *arg) {
    vkt_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        uint64_t k = l->produce_next;
        slot *s = &l->ring[k % (uint64_t)l->depth];
        /* k - batches, not k >= batches + depth: near 2^64 the sum wraps and the thread would
         * wait for ever (a resumed checkpoint may hold any position) */
        if (l->B == 0 || k - l->state.batches >= (uint64_t)l->depth || s->state != SLOT_EMPTY) {
            pthread_cond_wait(&l->cv, &l->mu);
            continue;
        }
        *s = (slot){SLOT_FILLING, k, l->B, l->T, l->gen, s->in, s->tg};
        l->produce_next++;
        uint64_t seed = l->state.seed;
        int global_B = l->global_B, offset = l->offset;
        pthread_mutex_unlock(&l->mu);
        batch_of(l, seed, k, global_B, offset, s->B, s->T, s->in, s->tg);
        pthread_mutex_lock(&l->mu);
        /* a slot filled for an abandoned request stream is thrown away */
        s->state = s->gen == l->gen ? SLOT_FULL : SLOT_EMPTY;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

vkt_loader *vkt_loader_create(const vkt_token_view *v, vkt_data_order order, uint64_t seed,
                              int max_B, int max_T, int prefetch, char *err, size_t errlen) {
    vkt_loader *l = calloc(1, sizeof *l);
    if (!l) goto oom;
    *l = (vkt_loader){.view = v, .order = order, .max_B = max_B, .max_T = max_T,
                      .depth = prefetch, .state = {.seed = seed}};
    if (prefetch <= 0) return l;
    l->ring = calloc((size_t)prefetch, sizeof *l->ring);
    if (!l->ring) goto oom;
    size_t n = (size_t)max_B * max_T;
    for (int i = 0; i < prefetch; i++) {
        l->ring[i].in = malloc(n * sizeof(int32_t));
        l->ring[i].tg = malloc(n * sizeof(int32_t));
        if (!l->ring[i].in || !l->ring[i].tg) goto oom;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    if (pthread_create(&l->thread, NULL, prefetch_main, l) != 0) {
        snprintf(err, errlen, "cannot start the data prefetch thread. HINT: [data] prefetch = 0");
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv);
        l->depth = 0; /* so destroy does not join */
        for (int i = 0; i < prefetch; i++) free(l->ring[i].in), free(l->ring[i].tg);
        free(l->ring);
        free(l);
        return NULL;
    }
    return l;
oom:
    snprintf(err, errlen, "out of host memory for the data loader");
    if (l && l->ring)
        for (int i = 0; i < prefetch; i++) free(l->ring[i].in), free(l->ring[i].tg);
    if (l) free(l->ring);
    free(l);
    return NULL;
}

void vkt_loader_destroy(vkt_loader *l) {
    if (!l) return;
    if (l->depth > 0) {
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv);
        for (int i = 0; i < l->depth; i++) free(l->ring[i].in), free(l->ring[i].tg);
        free(l->ring);
    }
    free(l);
}

vkt_loader_state vkt_loader_get_state(const vkt_loader *l) { return l->state; }

/* Starts the request stream afresh at state.batches with shape (B, T); caller holds mu. */
static void restart_locked(vkt_loader *l, int B, int T) {
    l->gen++;
    l->B = B;
    l->T = T;
    l->produce_next = l->state.batches;
    for (int i = 0; i < l->depth; i++)
        if (l->ring[i].state == SLOT_FULL) l->ring[i].state = SLOT_EMPTY;
    pthread_cond_broadcast(&l->cv);
}

void vkt_loader_set_state(vkt_loader *l, vkt_loader_state s) {
    if (l->depth <= 0) {
        l->state = s;
        return;
    }
    pthread_mutex_lock(&l->mu);
    l->state = s;
    restart_locked(l, 0, 0); /* nothing is prefetched until the next request says its shape */
    pthread_mutex_unlock(&l->mu);
}

double vkt_loader_next(vkt_loader *l, int B, int T, int32_t *inputs, int32_t *targets) {
    uint64_t k = l->state.batches;
    if (l->depth <= 0 || B > l->max_B || T > l->max_T) { /* computed here, all of it waiting */
        double t0 = now_s();
        batch_of(l, l->state.seed, k, l->global_B, l->offset, B, T, inputs, targets);
        if (l->depth > 0) { /* a shape beyond the ring's buffers: the thread starts over */
            pthread_mutex_lock(&l->mu);
            l->state.batches++;
            restart_locked(l, 0, 0);
            pthread_mutex_unlock(&l->mu);
        } else {
            l->state.batches++;
        }
        return now_s() - t0;
    }
    pthread_mutex_lock(&l->mu);
    if (B != l->B || T != l->T) restart_locked(l, B, T); /* e.g. a seq_len curriculum step */
    slot *s = &l->ring[k % (uint64_t)l->depth];
    double waited = 0;
    if (!(s->state == SLOT_FULL && s->k == k && s->gen == l->gen)) {
        double t0 = now_s();
        while (!(s->state == SLOT_FULL && s->k == k && s->gen == l->gen))
            pthread_cond_wait(&l->cv, &l->mu);
        waited = now_s() - t0;
    }
    size_t n = (size_t)B * T;
    memcpy(inputs, s->in, n * sizeof(int32_t));
    memcpy(targets, s->tg, n * sizeof(int32_t));
    s->state = SLOT_EMPTY;
    l->state.batches++;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    return waited;
}

void vkt_loader_set_slice(vkt_loader *l, int global_B, int offset) {
    if (l->depth > 0) pthread_mutex_lock(&l->mu);
    l->global_B = global_B;
    l->offset = offset;
    if (l->depth > 0) {
        restart_locked(l, l->B, l->T); /* what was prefetched was another slice */
        pthread_mutex_unlock(&l->mu);
    }
}
