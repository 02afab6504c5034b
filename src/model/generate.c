/* Text generation: repeated forward passes over the recent context, sampling the next token
 * from the last position's logits (temperature, top-k). No KV cache: each token recomputes
 * the context, which is simple and, for the model sizes trained here, fast enough. */
#include <math.h>
#include <stdlib.h>

#include "util/rng.h"
#include "vktrain/model.h"

typedef struct scored {
    float logit;
    int id;
} scored;

static int by_logit_desc(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;
    return x->id - y->id; /* ties: the smaller id first, so the order is total */
}

int vkt_sample_logits(const float *logits, int V, const vkt_sample_opts *o, uint64_t *rng_state) {
    if (o->temperature <= 0) {
        int best = 0;
        for (int i = 1; i < V; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
    scored *s = malloc((size_t)V * sizeof *s);
    if (!s) return 0;
    for (int i = 0; i < V; i++) s[i] = (scored){logits[i], i};
    int k = V;
    if (o->top_k > 0 && o->top_k < V) {
        qsort(s, (size_t)V, sizeof *s, by_logit_desc);
        k = o->top_k;
    }
    float max = -INFINITY;
    for (int i = 0; i < k; i++) max = fmaxf(max, s[i].logit);
    double sum = 0;
    for (int i = 0; i < k; i++) sum += exp((s[i].logit - max) / o->temperature);
    vkt_rng rng = {*rng_state};
    double u = vkt_rng_uniform(&rng) * sum, acc = 0;
    *rng_state = rng.state;
    int pick = s[k - 1].id;
    for (int i = 0; i < k; i++) {
        acc += exp((s[i].logit - max) / o->temperature);
        if (u < acc) {
            pick = s[i].id;
            break;
        }
    }
    free(s);
    return pick;
}

int vkt_generate(vkt_model *m, int32_t *tokens, int n, int n_new, const vkt_sample_opts *o,
                 void (*emit)(int token, void *user), void *user) {
    const vkt_gpt2_shape *s = vkt_model_shape(m);
    if (n < 1) return 0; /* no context to continue: the caller supplies at least one token */
    float *logits = malloc((size_t)s->padded_vocab_size * sizeof *logits);
    if (!logits) return 0;
    uint64_t rng = o->seed;
    int made = 0;
    for (; made < n_new; made++) {
        int len = n + made, T = len < s->max_seq_len ? len : s->max_seq_len;
        const int32_t *ctx = tokens + (len - T);
        vkt_model_forward(m, ctx, NULL, 1, T, 0.0f, 0);
        vkt_model_get_logits_at(m, logits, 1, T, 0, T - 1);
        int next = vkt_sample_logits(logits, s->vocab_size, o, &rng);
        tokens[len] = next;
        if (emit) emit(next, user);
    }
    free(logits);
    return made;
}
