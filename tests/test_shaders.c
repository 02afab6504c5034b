/* The embedded SPIR-V table (src/backend/vkt_spirv.h): every variant the build promises is
 * there, looks like SPIR-V, and can be found by name. Needs no Vulkan device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/vkt_spirv.h"

static int failures = 0;
#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                               \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fprintf(stderr, "\n");                                                             \
            failures++;                                                                        \
        }                                                                                      \
    } while (0)

/* The push-constant block of shaders/matmul.comp is 10 scalars. */
_Static_assert(sizeof(vkt_matmul_push) == 40, "vkt_matmul_push must match matmul.comp's pc");

static void check_entry(const vkt_spirv *s) {
    CHECK(s->name && s->name[0], "entry without a name");
    CHECK(s->code != NULL, "%s: no code", s->name);
    /* A compute shader with a handful of bindings is hundreds of words at least; anything
     * over a few MB is not one of ours. */
    CHECK(s->words >= 100 && s->words < (1u << 20), "%s: implausible size %zu words", s->name,
          s->words);
    if (s->code && s->words >= 5) {
        CHECK(s->code[0] == 0x07230203u, "%s: magic 0x%08x, not 0x07230203", s->name,
              (unsigned)s->code[0]);
        /* Version word 0x00MMmm00: we target SPIR-V 1.5 (vulkan1.2). */
        unsigned major = (s->code[1] >> 16) & 0xff, minor = (s->code[1] >> 8) & 0xff;
        CHECK(major == 1 && minor >= 3 && minor <= 6, "%s: SPIR-V version %u.%u", s->name, major,
              minor);
        CHECK(s->code[3] > 0 && s->code[3] < 1u << 22, "%s: id bound %u", s->name,
              (unsigned)s->code[3]);
        CHECK(s->code[4] == 0, "%s: reserved schema word %u", s->name, (unsigned)s->code[4]);
    }
}

int main(void) {
    printf("%d embedded SPIR-V variants:\n", vkt_spirv_count);
    CHECK(vkt_spirv_count > 0, "empty table");
    for (int i = 0; i < vkt_spirv_count; i++) {
        const vkt_spirv *s = &vkt_spirv_table[i];
        printf("  %-24s %6zu words\n", s->name, s->words);
        check_entry(s);
        CHECK(vkt_spirv_find(s->name) == s, "%s: find returns another entry", s->name);
        const char *name = s->name ? s->name : "(no name)";
        for (int j = 0; j < i; j++)
            CHECK(strcmp(vkt_spirv_table[j].name, name) != 0, "%s: duplicate name", name);
    }

    const char *required[] = {"matmul_f32", "matmul_f16"};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++)
        CHECK(vkt_spirv_find(required[i]) != NULL, "%s missing", required[i]);
    CHECK(vkt_spirv_find("no_such_shader") == NULL, "find of an unknown name");

    const char *coopmat[] = {"matmul_coopmat"};
    const char *req = getenv("VKT_REQUIRE_COOPMAT");
    int need_coopmat = req && strcmp(req, "1") == 0;
    for (size_t i = 0; i < sizeof coopmat / sizeof *coopmat; i++) {
        const vkt_spirv *s = vkt_spirv_find(coopmat[i]);
        if (need_coopmat)
            CHECK(s != NULL, "%s missing but VKT_REQUIRE_COOPMAT=1. HINT: run "
                  "tools/build-glslang.sh and configure with -DVKT_GLSLANG=<its path>", coopmat[i]);
        if (!s) printf("  (%s not built: glslang without GL_KHR_cooperative_matrix)\n", coopmat[i]);
    }

    if (failures) {
        fprintf(stderr, "test_shaders: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_shaders: ok\n");
    return 0;
}
