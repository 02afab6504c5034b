/* The two facts the vulkan pipeline registry reads from a shader's SPIR-V: its workgroup
 * size with given specialization constants applied, so that a dispatch whose grid assumes
 * another size is caught at pipeline creation instead of silently skipping or repeating
 * threads; and which of its buffer bindings it stores to, so that the backend orders a
 * dispatch only after the commands it depends on (vk_context.c, vkt_vk_order). */
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

/* ---- the bindings a shader writes ----
 * A binding is written when some store-like instruction (OpStore, an atomic, a cooperative
 * matrix store, OpCopyMemory's target) takes a pointer derived, through access chains and
 * copies, from that binding's variable. A store through a buffer pointer of unknown origin
 * (a function parameter, say) counts as writing every binding: the answer may be too large,
 * never too small, which costs a barrier, never a race. */
enum {
    OP_TYPE_POINTER = 32,
    OP_FUNCTION_PARAMETER = 55,
    OP_VARIABLE = 59,
    OP_STORE = 62,
    OP_COPY_MEMORY = 63,
    OP_ACCESS_CHAIN = 65,
    OP_IN_BOUNDS_ACCESS_CHAIN = 66,
    OP_PTR_ACCESS_CHAIN = 67,
    OP_IN_BOUNDS_PTR_ACCESS_CHAIN = 70,
    OP_COPY_OBJECT = 83,
    OP_ATOMIC_STORE = 228,
    OP_ATOMIC_FIRST = 227, /* OpAtomicLoad .. OpAtomicXor: result type, id, pointer, ... */
    OP_ATOMIC_LAST = 242,
    OP_ATOMIC_FLAG_TEST_AND_SET = 318,
    OP_ATOMIC_FLAG_CLEAR = 319,
    OP_COOPMAT_STORE_KHR = 4458,
    OP_COOPMAT_STORE_NV = 5360,
    OP_COOPMAT_STORE_TENSOR_NV = 5368,
    OP_ATOMIC_FMIN_EXT = 5614,
    OP_ATOMIC_FMAX_EXT = 5615,
    OP_ATOMIC_FADD_EXT = 6035,
    DEC_BINDING = 33,
    DEC_DESCRIPTOR_SET = 34,
    SC_UNIFORM = 2,
    SC_STORAGE_BUFFER = 12,
    SC_PHYSICAL_STORAGE_BUFFER = 5349,
};
#define ROOT_ANY 0xfffffffeu   /* a buffer pointer of unknown origin */
#define ROOT_LOCAL 0xfffffffdu /* a pointer to function, private or workgroup memory */

/* The id of the pointer an instruction stores through, or NONE when it stores nothing. */
static uint32_t stored_pointer(uint32_t op, const uint32_t *w, uint32_t n) {
    if ((op == OP_STORE || op == OP_COPY_MEMORY || op == OP_ATOMIC_STORE ||
         op == OP_COOPMAT_STORE_KHR || op == OP_COOPMAT_STORE_NV ||
         op == OP_COOPMAT_STORE_TENSOR_NV) && n >= 2)
        return w[1];
    if (op == OP_ATOMIC_FLAG_CLEAR && n >= 2) return w[1];
    int atomic_rmw = (op > OP_ATOMIC_FIRST && op <= OP_ATOMIC_LAST && op != OP_ATOMIC_STORE) ||
                     op == OP_ATOMIC_FLAG_TEST_AND_SET || op == OP_ATOMIC_FMIN_EXT ||
                     op == OP_ATOMIC_FMAX_EXT || op == OP_ATOMIC_FADD_EXT;
    return atomic_rmw && n >= 4 ? w[3] : NONE;
}

static int is_buffer_class(uint32_t sc) {
    return sc == SC_UNIFORM || sc == SC_STORAGE_BUFFER || sc == SC_PHYSICAL_STORAGE_BUFFER;
}

int vkt_spirv_written_bindings(const vkt_spirv *sp, uint32_t *mask, char *err, size_t errlen) {
    if (!sp || sp->words < 5 || sp->code[0] != 0x07230203u || sp->code[3] == 0 ||
        sp->code[3] > (1u << 22)) {
        snprintf(err, errlen, "not a SPIR-V module");
        return -1;
    }
    uint32_t bound = sp->code[3];
    uint32_t *binding = malloc(bound * sizeof *binding), *set = calloc(bound, sizeof *set);
    uint32_t *root = malloc(bound * sizeof *root), *ptr_class = malloc(bound * sizeof *ptr_class);
    if (!binding || !set || !root || !ptr_class) {
        free(binding), free(set), free(root), free(ptr_class);
        snprintf(err, errlen, "out of host memory");
        return -1;
    }
    for (uint32_t i = 0; i < bound; i++) binding[i] = root[i] = ptr_class[i] = NONE;
    uint32_t out = 0;
    const uint32_t *code = sp->code;
    /* decorations precede every instruction they decorate; a pointer's definition precedes
     * its uses (SPIR-V's dominance rule, no variable pointers here): one pass suffices */
    for (size_t i = 5; i < sp->words;) {
        uint32_t op = code[i] & 0xffffu, n = code[i] >> 16;
        if (n == 0 || i + n > sp->words) break;
        const uint32_t *w = code + i;
        if (op == OP_DECORATE && n >= 4 && w[1] < bound) {
            if (w[2] == DEC_BINDING) binding[w[1]] = w[3];
            if (w[2] == DEC_DESCRIPTOR_SET) set[w[1]] = w[3];
        } else if (op == OP_TYPE_POINTER && n >= 4 && w[1] < bound) {
            ptr_class[w[1]] = w[2];
        } else if (op == OP_VARIABLE && n >= 4 && w[2] < bound) {
            root[w[2]] = binding[w[2]] != NONE && set[w[2]] == 0 ? w[2] : ROOT_LOCAL;
        } else if (op == OP_FUNCTION_PARAMETER && n >= 3 && w[2] < bound) {
            int buf = w[1] < bound && is_buffer_class(ptr_class[w[1]]);
            root[w[2]] = buf ? ROOT_ANY : ROOT_LOCAL;
        } else if ((op == OP_ACCESS_CHAIN || op == OP_IN_BOUNDS_ACCESS_CHAIN ||
                    op == OP_PTR_ACCESS_CHAIN || op == OP_IN_BOUNDS_PTR_ACCESS_CHAIN ||
                    op == OP_COPY_OBJECT) &&
                   n >= 4 && w[2] < bound && w[3] < bound) {
            if (root[w[3]] != NONE) root[w[2]] = root[w[3]];
        } else {
            uint32_t p = stored_pointer(op, w, n);
            if (p != NONE) {
                uint32_t r = p < bound ? root[p] : ROOT_ANY;
                if (r == NONE) r = ROOT_ANY; /* a pointer made some other way */
                if (r == ROOT_ANY)
                    out = 0xffffffffu;
                else if (r != ROOT_LOCAL && binding[r] < 32)
                    out |= 1u << binding[r];
            }
        }
        i += n;
    }
    free(binding), free(set), free(root), free(ptr_class);
    *mask = out;
    return 0;
}
