/* The device and memory half of the backend interface: enumeration, device names, info, and
 * alloc/upload/download/fill/copy/timers on the cpu backend; the op list (backend/ops.def):
 * a backend that leaves an op empty is named by that op. */
#include "backend/backend_impl.h"
#include "vkt_test.h"
#include "vktrain/backend.h"

int main(void) {
    char err[512];
    int n = vkt_device_count();
    CHECK(n >= 1, "no devices");

    /* naming: index, backend:index, auto */
    int cpu = vkt_device_resolve("cpu:0", err, sizeof err);
    CHECK(cpu >= 0 && cpu < n, "cpu:0 -> %d (%s)", cpu, err);
    char idx[16];
    snprintf(idx, sizeof idx, "%d", cpu);
    CHECK(vkt_device_resolve(idx, err, sizeof err) == cpu, "index %s", idx);
    CHECK(vkt_device_resolve("auto", err, sizeof err) >= 0, "auto: %s", err);
    const char *bad[] = {"cpu:1", "cpu:x", "cpu:", "99", "-1", "warp:0", "0x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        CHECK(vkt_device_resolve(bad[i], err, sizeof err) == -1 && strstr(err, bad[i]) &&
                  strstr(err, "--list-devices"),
              "'%s' -> '%s'", bad[i], err);
    }

    vkt_device_info info;
    CHECK(vkt_device_info_get(cpu, &info) == 0, "info");
    CHECK(!strcmp(info.backend, "cpu") && info.backend_index == 0, "backend %s:%d", info.backend,
          info.backend_index);
    CHECK(info.memory_bytes > 0 && info.peak_flops > 0 && info.name[0], "info fields");
    CHECK(vkt_device_info_get(n, &info) != 0, "info past the end");

    vkt_backend *be = vkt_backend_create(cpu, err, sizeof err);
    CHECK(be != NULL, "%s", err);
    if (!be) return 1;
    CHECK(!strcmp(vkt_backend_info(be)->backend, "cpu"), "backend info");

    /* memory: round trips at offsets, fill, copy (overlapping too) */
    enum { N = 1000 };
    vkt_buf *b = vkt_alloc(be, 2 * N * sizeof(float), err, sizeof err);
    CHECK(b != NULL, "%s", err);
    float host[N], back[N];
    for (int i = 0; i < N; i++) host[i] = (float)i * 0.5f - 7;
    vkt_upload(be, vkt_at(b, 0), host, sizeof host);
    vkt_upload(be, vkt_at(b, N * sizeof(float)), host, sizeof host);
    vkt_download(be, back, vkt_at(b, N * sizeof(float)), sizeof back);
    CHECK(!memcmp(host, back, sizeof host), "upload/download at an offset");
    vkt_fill(be, vkt_at(b, 10 * sizeof(float)), 3.25f, 5);
    vkt_download(be, back, vkt_at(b, 0), sizeof back);
    CHECK(back[9] == host[9] && back[10] == 3.25f && back[14] == 3.25f && back[15] == host[15],
          "fill touches exactly its range");
    vkt_copy(be, vkt_at(b, 100 * sizeof(float)), vkt_at(b, (N + 200) * sizeof(float)),
             50 * sizeof(float));
    vkt_download(be, back, vkt_at(b, 0), sizeof back);
    CHECK(back[100] == host[200] && back[149] == host[249] && back[150] == host[150], "copy");
    vkt_copy(be, vkt_at(b, (N + 1) * sizeof(float)), vkt_at(b, N * sizeof(float)),
             10 * sizeof(float));
    vkt_download(be, back, vkt_at(b, N * sizeof(float)), 11 * sizeof(float));
    CHECK(back[1] == host[0] && back[10] == host[9], "overlapping copy");
    vkt_free(be, b);
    vkt_free(be, NULL); /* allowed, like free(NULL) */

    /* an impossible allocation fails with a message, not a crash */
    err[0] = 0;
    vkt_buf *huge = vkt_alloc(be, (size_t)1 << 62, err, sizeof err);
    CHECK(huge == NULL && strstr(err, "out of memory") && strstr(err, "MiB"), "huge alloc: '%s'",
          err);

    double t0 = vkt_time_ms(be);
    vkt_synchronize(be);
    double t1 = vkt_time_ms(be);
    CHECK(t1 >= t0 && t0 > 0, "timer %g -> %g", t0, t1);
    vkt_backend_destroy(be);
    /* every compute op filled in the cpu backend; an empty one is found and named (what
     * vkt_backend_create refuses such a backend with), the first in ops.def's order */
    CHECK(vkt_backend_missing_op(&vkt_cpu_backend_ops) == NULL, "cpu backend lacks %s",
          vkt_backend_missing_op(&vkt_cpu_backend_ops));
    vkt_backend_ops partial = vkt_cpu_backend_ops;
    partial.to_half = NULL;
    const char *m1 = vkt_backend_missing_op(&partial);
    partial.scale = NULL;
    partial.encoder_forward = NULL;
    const char *m2 = vkt_backend_missing_op(&partial);
    CHECK(m1 && !strcmp(m1, "to_half") && m2 && !strcmp(m2, "encoder_forward"),
          "missing ops named %s, %s", m1 ? m1 : "(none)", m2 ? m2 : "(none)");
    return vkt_test_finish("test_backend");
}
