/* The vulkan backend's device layer: enumeration through the run-time loader, the info and
 * details it reports, naming, and opening each device for training (a few ops round trip).
 * Skips (77) without a loader or device unless VKT_REQUIRE_BACKENDS names vulkan. */
#include "vkt_test.h"
#include "vktrain/backend.h"

static int required(void) {
    const char *r = getenv("VKT_REQUIRE_BACKENDS");
    return r && strstr(r, "vulkan");
}

int main(void) {
    char err[1024];
    int n = vkt_device_count();
    int first = -1, count = 0;
    for (int i = 0; i < n; i++) {
        vkt_device_info info;
        if (vkt_device_info_get(i, &info) == 0 && !strcmp(info.backend, "vulkan")) {
            if (first < 0) first = i;
            count++;
        }
    }
    if (count == 0) {
        const char *notes = vkt_device_notes();
        fprintf(stderr, "no vulkan device%s%s\n", notes[0] ? ": " : "", notes);
#ifndef VKT_USE_VULKAN
        fprintf(stderr, "(the vulkan backend is not compiled in)\n");
#endif
        if (required()) {
            fprintf(stderr, "FAIL: VKT_REQUIRE_BACKENDS names vulkan\n");
            return 1;
        }
        return 77;
    }

    for (int k = 0; k < count; k++) {
        vkt_device_info info;
        char spec[32];
        snprintf(spec, sizeof spec, "vulkan:%d", k);
        int idx = vkt_device_resolve(spec, err, sizeof err);
        CHECK(idx == first + k, "%s -> %d (%s)", spec, idx, err);
        if (idx < 0) continue;
        CHECK(vkt_device_info_get(idx, &info) == 0, "info %s", spec);
        CHECK(!strcmp(info.backend, "vulkan") && info.backend_index == k, "%s names back as %s:%d",
              spec, info.backend, info.backend_index);
        CHECK(info.name[0] && info.vendor[0] && info.driver[0], "%s: name '%s' vendor '%s' "
              "driver '%s'", spec, info.name, info.vendor, info.driver);
        CHECK(info.memory_bytes > 0, "%s: memory", spec);
        CHECK(info.peak_flops > 0, "%s: peak estimate", spec);
        CHECK(strstr(info.details, "subgroup size") != NULL, "%s: details lack the subgroup "
              "size:\n%s", spec, info.details);
        CHECK(strstr(info.details, "memory heaps") && strstr(info.details, "cooperative matrix"),
              "%s: details:\n%s", spec, info.details);
        CHECK(info.can_train, "%s: the vulkan backend implements every op", spec);
        CHECK(info.coopmat == (info.coopmat_shapes[0] != 0), "%s: coopmat %d but shapes '%s'",
              spec, info.coopmat, info.coopmat_shapes);
        if (strstr(info.name, "llvmpipe")) {
            /* lavapipe: measured facts of this driver */
            /* no claim on cooperative matrices: Mesa 22's lavapipe has none, Mesa 26's has
             * VK_KHR_cooperative_matrix (8x8x8); the check above ties the flag to the shapes */
            CHECK(!strcmp(info.vendor, "Mesa"), "lavapipe vendor '%s'", info.vendor);
            CHECK(strstr(info.details, "type: CPU") != NULL, "lavapipe type:\n%s", info.details);
            /* its estimate stays below the host's so `auto` would not pick it anyway */
            vkt_device_info cpu;
            int c = vkt_device_resolve("cpu:0", err, sizeof err);
            CHECK(c >= 0 && vkt_device_info_get(c, &cpu) == 0 && cpu.peak_flops > info.peak_flops,
                  "lavapipe's peak estimate above the cpu backend's");
        }

        /* it opens, memory round-trips through fill/copy/upload/download, and closes */
        err[0] = 0;
        vkt_backend *be = vkt_backend_create(idx, err, sizeof err);
        CHECK(be != NULL, "%s: %s", spec, err);
        if (be) {
            float h[300], back[300];
            for (int i = 0; i < 300; i++) h[i] = (float)i;
            vkt_buf *x = vkt_alloc(be, sizeof h, err, sizeof err);
            vkt_buf *y = vkt_alloc(be, sizeof h, err, sizeof err);
            CHECK(x && y, "%s: alloc: %s", spec, err);
            if (x && y) {
                vkt_upload(be, vkt_at(x, 0), h, sizeof h);
                vkt_fill(be, vkt_at(y, 0), -1.0f, 300);
                vkt_copy(be, vkt_at(y, 40), vkt_at(x, 40), 100 * sizeof(float));
                vkt_download(be, back, vkt_at(y, 0), sizeof back);
                int ok = 1;
                for (int i = 0; i < 300; i++)
                    ok &= back[i] == (i >= 10 && i < 110 ? (float)i : -1.0f);
                CHECK(ok, "%s: upload/fill/copy/download", spec);
                /* overlapping copies behave like memmove, both directions */
                vkt_copy(be, vkt_at(x, 4), vkt_at(x, 0), 200 * sizeof(float));
                vkt_copy(be, vkt_at(x, 400), vkt_at(x, 404), 50 * sizeof(float));
                vkt_download(be, back, vkt_at(x, 0), sizeof back);
                ok = back[0] == 0 && back[1] == 0 && back[5] == 4 && back[200] == 199 &&
                     back[100] == 100 && back[101] == 101;
                CHECK(ok, "%s: overlapping copies: %g %g %g %g %g %g", spec, back[0], back[1],
                      back[5], back[200], back[100], back[101]);
            }
            vkt_free(be, x);
            vkt_free(be, y);
            /* an absurd allocation fails with a message naming the size and the device's
             * limit for one allocation (which it exceeds before the heap) */
            err[0] = 0;
            vkt_buf *huge = vkt_alloc(be, (size_t)1 << 50, err, sizeof err);
            CHECK(huge == NULL && strstr(err, "1125899906842624 bytes") &&
                      strstr(err, "largest allocation is"),
                  "%s: huge alloc '%s'", spec, err);
            vkt_free(be, huge);
        }
        vkt_backend_destroy(be);
    }
    CHECK(vkt_device_resolve("vulkan:99", err, sizeof err) == -1 && strstr(err, "vulkan:99"),
          "vulkan:99 -> '%s'", err);

    /* auto takes a device that can train, and it opens */
    int a = vkt_device_resolve("auto", err, sizeof err);
    vkt_device_info ai;
    CHECK(a >= 0 && vkt_device_info_get(a, &ai) == 0 && ai.can_train, "auto -> %d (%s)", a, err);
    vkt_backend *be = a >= 0 ? vkt_backend_create(a, err, sizeof err) : NULL;
    CHECK(be != NULL, "auto device: %s", err);
    vkt_backend_destroy(be);

    /* enumeration is cached: a second pass sees the same devices */
    CHECK(vkt_device_count() == n, "device count changed");
    if (vkt_test_failures) fprintf(stderr, "%d failure(s)\n", vkt_test_failures);
    else printf("ok: %d vulkan device%s\n", count, count == 1 ? "" : "s");
    return vkt_test_failures ? 1 : 0;
}
