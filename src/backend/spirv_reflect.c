/* The one fact the vulkan pipeline registry reads from a shader's SPIR-V: its workgroup size
 * with given specialization constants applied, so that a dispatch whose grid assumes another
 * size is caught at pipeline creation instead of silently skipping or repeating threads. */
#include <stdio.h>
#include <stdlib.h>

#include "backend/vkt_spirv.h"

/* opcodes, decorations and execution modes of the SPIR-V 1.x specification */
enum {
    OP_EXECUTION_MODE = 16,
    OP_CONSTANT = 43,
    OP_CONSTANT_COMPOSITE = 44,
    OP_SPEC_CONSTANT_TRUE = 48,
    OP_SPEC_CONSTANT_FALSE = 49,
    OP_SPEC_CONSTANT = 50,
    OP_SPEC_CONSTANT_COMPOSITE = 51,
    OP_DECORATE = 71,
    OP_EXECUTION_MODE_ID = 331,
    DEC_SPEC_ID = 1,
    DEC_BUILTIN = 11,
    BUILTIN_WORKGROUP_SIZE = 25,
    MODE_LOCAL_SIZE = 17,
    MODE_LOCAL_SIZE_ID = 38,
};

#define NONE 0xffffffffu

typedef struct module {
    uint32_t bound;
    uint32_t *spec_id; /* per result id: its SpecId decoration, NONE */
    uint32_t *value;   /* per result id: a 32-bit scalar constant's value */
    uint8_t *known;    /* per result id: value is set */
    uint32_t *at;      /* per result id: word index of a composite constant */
    uint32_t wg_builtin, local_size_id[3];
    uint32_t local_size[3];
    int has_local_size, has_local_size_id;
} module;

static void scan(module *m, const uint32_t *code, size_t words) {
    for (size_t i = 5; i < words;) {
        uint32_t op = code[i] & 0xffffu, n = code[i] >> 16;
        if (n == 0 || i + n > words) break; /* malformed: stop, the caller finds no size */
        const uint32_t *w = code + i;
        if (op == OP_DECORATE && n >= 4 && w[1] < m->bound) {
            if (w[2] == DEC_SPEC_ID) m->spec_id[w[1]] = w[3];
            if (w[2] == DEC_BUILTIN && w[3] == BUILTIN_WORKGROUP_SIZE) m->wg_builtin = w[1];
        } else if (op == OP_EXECUTION_MODE && n == 6 && w[2] == MODE_LOCAL_SIZE) {
            for (int k = 0; k < 3; k++) m->local_size[k] = w[3 + k];
            m->has_local_size = 1;
        } else if (op == OP_EXECUTION_MODE_ID && n == 6 && w[2] == MODE_LOCAL_SIZE_ID) {
            for (int k = 0; k < 3; k++) m->local_size_id[k] = w[3 + k];
            m->has_local_size_id = 1;
        } else if ((op == OP_CONSTANT || op == OP_SPEC_CONSTANT) && n == 4 && w[2] < m->bound) {
            m->value[w[2]] = w[3]; /* 32-bit scalars only: all a workgroup size is made of */
            m->known[w[2]] = 1;
        } else if ((op == OP_SPEC_CONSTANT_TRUE || op == OP_SPEC_CONSTANT_FALSE) && n == 3 &&
                   w[2] < m->bound) {
            m->value[w[2]] = op == OP_SPEC_CONSTANT_TRUE;
            m->known[w[2]] = 1;
        } else if ((op == OP_CONSTANT_COMPOSITE || op == OP_SPEC_CONSTANT_COMPOSITE) && n >= 3 &&
                   w[2] < m->bound) {
            m->at[w[2]] = (uint32_t)i;
        }
        i += n;
    }
}

/* The workgroup size, by precedence: the WorkgroupSize built-in, LocalSizeId, LocalSize. */
static int resolve(const module *m, const uint32_t *code, uint32_t out[3], char *err,
                   size_t errlen) {
    uint32_t ids[3];
    if (m->wg_builtin != NONE) {
        uint32_t at = m->at[m->wg_builtin];
        if (at == NONE || code[at] >> 16 != 6) {
            snprintf(err, errlen, "the WorkgroupSize built-in is not a 3-component constant");
            return -1;
        }
        for (int k = 0; k < 3; k++) ids[k] = code[at + 3 + k];
    } else if (m->has_local_size_id) {
        for (int k = 0; k < 3; k++) ids[k] = m->local_size_id[k];
    } else if (m->has_local_size) {
        for (int k = 0; k < 3; k++) out[k] = m->local_size[k];
        return 0;
    } else {
        snprintf(err, errlen, "no workgroup size (not a compute shader?)");
        return -1;
    }
    for (int k = 0; k < 3; k++) {
        if (ids[k] >= m->bound || !m->known[ids[k]]) {
            snprintf(err, errlen, "workgroup size component %d is not a scalar constant", k);
            return -1;
        }
        out[k] = m->value[ids[k]];
    }
    return 0;
}

int vkt_spirv_local_size(const vkt_spirv *sp, const vkt_spec_const *spec, int nspec,
                         uint32_t out[3], char *err, size_t errlen) {
    if (!sp || sp->words < 5 || sp->code[0] != 0x07230203u || sp->code[3] == 0 ||
        sp->code[3] > (1u << 22)) {
        snprintf(err, errlen, "not a SPIR-V module");
        return -1;
    }
    module m = {.bound = sp->code[3], .wg_builtin = NONE};
    m.spec_id = malloc(m.bound * sizeof *m.spec_id);
    m.value = calloc(m.bound, sizeof *m.value);
    m.known = calloc(m.bound, 1);
    m.at = malloc(m.bound * sizeof *m.at);
    int rc = -1;
    if (!m.spec_id || !m.value || !m.known || !m.at) {
        snprintf(err, errlen, "out of host memory");
        goto done;
    }
    for (uint32_t i = 0; i < m.bound; i++) m.spec_id[i] = m.at[i] = NONE;
    scan(&m, sp->code, sp->words);
    /* each given constant overrides the default of every id that carries its SpecId; one
     * the shader does not declare is a caller's mistake (a typo, a stale id) */
    for (int s = 0; s < nspec; s++) {
        int found = 0;
        for (uint32_t i = 0; i < m.bound; i++)
            if (m.spec_id[i] == spec[s].id) {
                m.value[i] = spec[s].value;
                m.known[i] = 1;
                found = 1;
            }
        if (!found) {
            snprintf(err, errlen, "specialization constant %u is not declared", spec[s].id);
            goto done;
        }
    }
    rc = resolve(&m, sp->code, out, err, errlen);
done:
    free(m.spec_id);
    free(m.value);
    free(m.known);
    free(m.at);
    return rc;
}
