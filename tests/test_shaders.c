/* The embedded SPIR-V table (src/backend/vkt_spirv.h): every variant the build promises is
 * there, looks like SPIR-V, and can be found by name. Needs no Vulkan device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/vkt_spirv.h"
#include "coopmat_tiers.h"
#include "vkt_test.h"

/* The push-constant block of shaders/matmul_common.glsl is 13 scalars. */
_Static_assert(sizeof(vkt_matmul_push) == 52, "vkt_matmul_push must match matmul_common.glsl's pc");

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

/* Workgroup size of variant name under spec (nspec pairs) must be x*y*z; 0 = must fail. */
static void expect_size(const char *name, const vkt_spec_const *spec, int nspec, uint32_t x,
                        uint32_t y, uint32_t z) {
    const vkt_spirv *s = vkt_spirv_find(name);
    if (!s) return; /* a variant this build lacks is reported above */
    uint32_t got[3] = {0, 0, 0};
    char err[160] = "";
    int rc = vkt_spirv_local_size(s, spec, nspec, got, err, sizeof err);
    if (!x) {
        CHECK(rc != 0 && err[0], "%s: a bad specialization was accepted", name);
        return;
    }
    CHECK(rc == 0, "%s: no workgroup size: %s", name, err);
    CHECK(rc || (got[0] == x && got[1] == y && got[2] == z),
          "%s: workgroup %ux%ux%u, want %ux%ux%u", name, got[0], got[1], got[2], x, y, z);
}

/* vkt_spirv_local_size, which the pipeline registry checks every dispatch against: the
 * literal sizes of shaders/, the specialized ones of matmul (local_size_x_id / _y_id), and
 * an id the shader does not declare refused. */
static void check_local_sizes(void) {
    for (int i = 0; i < vkt_spirv_count; i++) {
        uint32_t got[3];
        char err[160];
        CHECK(vkt_spirv_local_size(&vkt_spirv_table[i], NULL, 0, got, err, sizeof err) == 0,
              "%s: %s", vkt_spirv_table[i].name, err);
    }
    expect_size("matmul_f32", NULL, 0, 16, 16, 1);
    expect_size("matmul_f16", NULL, 0, 16, 16, 1);
    vkt_spec_const xy[2] = {{1, 4}, {0, 8}};
    expect_size("matmul_f32", xy, 2, 8, 4, 1);
    vkt_spec_const tile[1] = {{2, 8}}; /* TM: not part of the workgroup size */
    expect_size("matmul_f32", tile, 1, 16, 16, 1);
    expect_size("matmul_coopmat", NULL, 0, 128, 1, 1);
    vkt_spec_const wg256[1] = {{0, 256}};
    expect_size("matmul_coopmat", wg256, 1, 256, 1, 1);
    expect_size("gelu_forward", NULL, 0, 256, 1, 1);
    expect_size("adamw", NULL, 0, 256, 1, 1);
    expect_size("sumsq", NULL, 0, 256, 1, 1);
    expect_size("layernorm_forward", NULL, 0, 64, 1, 1);
    expect_size("attention_backward_kv", NULL, 0, 64, 1, 1);
    expect_size("softmax_xent", NULL, 0, 256, 1, 1);
    expect_size("encoder_backward", NULL, 0, 64, 1, 1);
    expect_size("colsum_partial", NULL, 0, 256, 1, 1);
    expect_size("to_half", NULL, 0, 256, 1, 1);
    vkt_spec_const stray[1] = {{7, 1}};
    expect_size("adamw", stray, 1, 0, 0, 0);
    uint32_t junk[8] = {0x07230203u, 0x00010500u, 0, 10, 0, 0, 0, 0};
    vkt_spirv bad = {"junk", junk, 8};
    uint32_t got[3];
    char err[160] = "";
    CHECK(vkt_spirv_local_size(&bad, NULL, 0, got, err, sizeof err) != 0 && err[0],
          "a module without a workgroup size was accepted");
}

/* vkt_spirv_written_bindings, on which the vulkan backend decides what a dispatch must wait
 * for: every variant's stored-to bindings as its shader's code says (a binding missing here
 * would let a reader overtake this writer; an extra one only costs a barrier). A variant
 * not listed, or not built, is skipped; a module that is not SPIR-V is refused. */
static void check_written_bindings(void) {
    static const struct { const char *name; uint32_t mask; } want[] = {
        /* C, and the fused GELU's output (and its fp16 copy in the 16-bit storage ones) */
        {"matmul_f32", 0x11}, {"matmul_f16", 0x11}, {"matmul_f32_direct", 0x11},
        {"matmul_f16_direct", 0x11}, {"matmul_f16_s16", 0x31}, {"matmul_coopmat", 0x11},
        {"matmul_coopmat_s16", 0x31}, {"matmul_coopmat2", 0x1}, {"matmul_splitk_reduce", 0x9},
        {"to_half", 0x1}, {"gelu_forward", 0x1}, {"gelu_backward", 0x1},
        {"residual_forward", 0x1}, {"scale", 0x1}, {"sumsq", 0x1}, {"sum_into", 0x1},
        {"colsum_partial", 0x1}, {"colsum_partial_ln", 0x1},
        {"colsum_final", 0x5}, /* the sums and, for layernorm, the second output */
        {"sum_partial", 0x1}, {"sumsq_partial", 0x1},
        {"adamw", 0xd}, /* parameters, m and v; not the gradients or the norm */
        {"encoder_forward", 0x1}, {"encoder_backward", 0x1},
        {"layernorm_forward", 0x7}, /* out, mean, rstd */
        {"layernorm_backward", 0x1}, {"layernorm_backward_f64", 0x7},
        {"softmax_xent", 0x3}, /* losses, and the logits overwritten by their gradient */
        {"attention_forward", 0x3}, {"attention_backward_q", 0x11},
        {"attention_backward_kv", 0x1},
        {"flash_attention_forward", 0x3}, {"flash_attention_backward_q", 0x11},
        {"flash_attention_backward_kv", 0x1},
        {"flash_attention_cm_forward", 0x3}, {"flash_attention_cm_backward_q", 0x11},
        {"flash_attention_cm_backward_kv", 0x1},
        /* the producers that also write their output's fp16 copy (HALF_OUT) */
        {"layernorm_forward_h", 0x47}, {"gelu_forward_h", 0x5}, {"adamw_h", 0x2d},
        {"flash_attention_forward_h", 0xb}, {"flash_attention_cm_forward_h", 0xb},
        {"residual_layernorm_forward", 0xf}, /* out, mean, rstd and res = a + b */
        {"residual_layernorm_forward_h", 0x4f},
    };
    int n = 0;
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const vkt_spirv *s = vkt_spirv_find(want[i].name);
        if (!s) continue;
        uint32_t got = 0;
        char err[160] = "";
        CHECK(vkt_spirv_written_bindings(s, &got, err, sizeof err) == 0, "%s: %s", want[i].name,
              err);
        CHECK(got == want[i].mask, "%s: writes bindings 0x%x, want 0x%x", want[i].name, got,
              want[i].mask);
        n++;
    }
    printf("written bindings: %d variants as expected\n", n);
    for (int i = 0; i < vkt_spirv_count; i++) {
        uint32_t got;
        char err[160];
        CHECK(vkt_spirv_written_bindings(&vkt_spirv_table[i], &got, err, sizeof err) == 0,
              "%s: %s", vkt_spirv_table[i].name, err);
    }
    uint32_t junk[8] = {0x12345678u, 0, 0, 0, 0, 0, 0, 0}, got;
    vkt_spirv bad = {"junk", junk, 8};
    char err[160] = "";
    CHECK(vkt_spirv_written_bindings(&bad, &got, err, sizeof err) != 0 && err[0],
          "a module that is not SPIR-V was accepted");
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

    /* the cooperative-matrix variants: required under VKT_REQUIRE_COOPMAT=1 or =built */
    int need_coopmat = vkt_test_coopmat_built_required();
    for (int i = 0; i < VKT_TEST_NCOOPMAT; i++) {
        const char *shader = vkt_test_coopmat_tiers[i].shader;
        const vkt_spirv *s = vkt_spirv_find(shader);
        if (need_coopmat)
            CHECK(s != NULL, "%s (matmul = %s) missing but VKT_REQUIRE_COOPMAT=%s. HINT: run "
                  "tools/build-glslang.sh and configure with -DVKT_GLSLANG=<its path>", shader,
                  vkt_test_coopmat_tiers[i].tier, getenv("VKT_REQUIRE_COOPMAT"));
        if (!s) printf("  (%s not built: glslang without GL_KHR_cooperative_matrix)\n", shader);
    }

    check_local_sizes();
    check_written_bindings();

    return vkt_test_finish("test_shaders");
}
