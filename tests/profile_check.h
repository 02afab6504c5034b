/* The profiling check shared by test_profile (cpu: host timing) and test_vulkan_profile
 * (device timestamps): ops run with profiling on are reported by name with exact counts, ops
 * run with it off are not, and enabling again starts from zero. */
#ifndef VKT_PROFILE_CHECK_H
#define VKT_PROFILE_CHECK_H

#include "vkt_test.h"
#include "vktrain/backend.h"

/* Sums the entries whose name starts with prefix (a backend may name variants, e.g.
 * layernorm_forward_f64); *ms receives their total. */
static uint64_t profile_calls(vkt_backend *be, const char *prefix, double *ms) {
    vkt_profile_entry e[64];
    int n = vkt_profile_report(be, e, 64);
    uint64_t calls = 0;
    double t = 0;
    for (int i = 0; i < n && i < 64; i++)
        if (!strncmp(e[i].name, prefix, strlen(prefix))) {
            calls += e[i].calls;
            t += e[i].total_ms;
            CHECK(e[i].total_ms >= 0, "%s: %g ms", e[i].name, e[i].total_ms);
        }
    if (ms) *ms = t;
    return calls;
}

/* matmul_exact: each matmul call is one timed entry (host timing); a device backend counts
 * dispatches, at least one per call. big_positive: the 256^3 matmuls must take > 0 ms. */
static void profile_check(vkt_backend *be, const char *matmul, int matmul_exact,
                          int big_positive) {
    char err[256];
    enum { D = 256, NN = D * D };
    vkt_buf *a = vkt_alloc(be, NN * sizeof(float), err, sizeof err);
    vkt_buf *b = vkt_alloc(be, NN * sizeof(float), err, sizeof err);
    vkt_buf *c = vkt_alloc(be, NN * sizeof(float), err, sizeof err);
    vkt_buf *st = vkt_alloc(be, 2 * D * sizeof(float), err, sizeof err);
    CHECK(a && b && c && st, "alloc: %s", err);
    if (!a || !b || !c || !st) return;
    static float host[NN];
    for (int i = 0; i < NN; i++) host[i] = (float)((i * 7) % 13) * 0.1f - 0.6f;

    /* off: nothing accumulates */
    vkt_upload(be, vkt_at(a, 0), host, sizeof host);
    vkt_matmul(be, vkt_at(c, 0), vkt_at(a, 0), vkt_at(a, 0), VKT_NULL_PTR, D, D, D, 0, 0, 1, 0);
    vkt_synchronize(be);
    CHECK(vkt_profile_report(be, NULL, 0) == 0, "entries before enabling");

    CHECK(vkt_profile_enable(be, 1) == 0, "enable");
    vkt_upload(be, vkt_at(b, 0), host, sizeof host);
    for (int i = 0; i < 3; i++)
        vkt_matmul(be, vkt_at(c, 0), vkt_at(a, 0), vkt_at(b, 0), VKT_NULL_PTR, D, D, D, 0, i & 1,
                   1, 0);
    for (int i = 0; i < 2; i++)
        vkt_layernorm_forward(be, vkt_at(c, 0), vkt_at(st, 0), vkt_at(st, D * sizeof(float)),
                              vkt_at(a, 0), vkt_at(b, 0), vkt_at(b, D * sizeof(float)), D, D,
                              VKT_NULL_PTR);
    vkt_fill(be, vkt_at(b, 0), 1.0f, NN);
    vkt_copy(be, vkt_at(b, 0), vkt_at(a, 0), NN * sizeof(float));
    float one;
    vkt_download(be, &one, vkt_at(c, 0), sizeof one);

    vkt_profile_entry e[64];
    int n = vkt_profile_report(be, e, 64);
    CHECK(n >= 6 && n <= 64, "%d entries", n);
    for (int i = 1; i < n && i < 64; i++)
        CHECK(e[i - 1].total_ms >= e[i].total_ms, "not sorted at %d", i);
    double ms;
    uint64_t mm = profile_calls(be, matmul, &ms);
    if (matmul_exact)
        CHECK(mm == 3, "%s: %llu calls, want 3", matmul, (unsigned long long)mm);
    else
        CHECK(mm >= 3, "%s: %llu dispatches, want >= 3", matmul, (unsigned long long)mm);
    if (big_positive) CHECK(ms > 0, "%s: %g ms for three 256^3 matmuls", matmul, ms);
    CHECK(profile_calls(be, "layernorm_forward", NULL) == 2, "layernorm_forward calls");
    CHECK(profile_calls(be, "fill", NULL) == 1, "fill calls");
    CHECK(profile_calls(be, "copy", NULL) == 1, "copy calls");
    CHECK(profile_calls(be, "upload", NULL) == 1, "upload calls");
    CHECK(profile_calls(be, "download", NULL) == 1, "download calls");
    CHECK(profile_calls(be, "gelu", NULL) == 0, "gelu never ran");
    vkt_profile_entry two[2];
    CHECK(vkt_profile_report(be, two, 2) == n && !strcmp(two[0].name, e[0].name),
          "a short report");

    /* off again: the totals stay, new work is not counted */
    CHECK(vkt_profile_enable(be, 0) == 0, "disable");
    vkt_matmul(be, vkt_at(c, 0), vkt_at(a, 0), vkt_at(b, 0), VKT_NULL_PTR, D, D, D, 0, 0, 1, 0);
    vkt_fill(be, vkt_at(b, 0), 1.0f, NN);
    vkt_synchronize(be);
    CHECK(profile_calls(be, matmul, NULL) == mm, "a matmul counted while off");
    CHECK(profile_calls(be, "fill", NULL) == 1, "a fill counted while off");

    /* on again: from zero; more commands than one submission's first query pool holds */
    CHECK(vkt_profile_enable(be, 1) == 0, "enable again");
    CHECK(vkt_profile_report(be, e, 64) == 0, "enabling clears");
    for (int i = 0; i < 2500; i++) vkt_fill(be, vkt_at(st, 0), (float)i, 2 * D);
    vkt_synchronize(be);
    CHECK(profile_calls(be, "fill", NULL) == 2500, "fill calls in a long submission: %llu",
          (unsigned long long)profile_calls(be, "fill", NULL));
    vkt_profile_enable(be, 0);

    vkt_free(be, a);
    vkt_free(be, b);
    vkt_free(be, c);
    vkt_free(be, st);
}

#endif
