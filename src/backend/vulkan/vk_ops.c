/* The vulkan backend's ops: each records into the open command buffer (vk_context.c) one
 * or two dispatches of a shader from shaders/ (registered in CMakeLists.txt), stating the
 * bytes each binding may touch, by which the backend orders it after what it depends on.
 * Semantics are those of src/backend/cpu/cpu_ops.c; the shaders say how they map. */
#include <math.h>
#include <string.h>

#include "backend/vkt_spirv.h"
#include "backend/vulkan/vk_ops.h"

/* One dispatch of `threads` threads; bytes[i] is what binding i may touch (vkt_vk_bind). */
static void run(vkt_backend *be, const char *name, int nb, const vkt_ptr *ptrs,
                const size_t *bytes, void *push, uint32_t push_size, uint32_t *offs,
                size_t threads, uint32_t wg) {
    vkt_vk_ctx *c = vkt_vk(be);
    vkt_vk_bindings b;
    vkt_vk_bind(c, &b, nb, ptrs, bytes);
    memcpy(offs, b.elem_off, (size_t)nb * sizeof *offs);
    uint32_t gx, gy;
    vkt_vk_grid1d(threads, wg, &gx, &gy);
    vkt_vk_shader sh = vkt_vk_shader_1d(name, wg);
    vkt_vk_dispatch(c, &sh, &b, push, push_size, gx, gy, 1);
}

/* Tensors larger than one descriptor's range (maxStorageBufferRange: 128 MiB on lavapipe)
 * are processed in pieces that fit: 1-D ops in chunks of elements, row ops in row blocks,
 * matmul in row blocks of C (or slices of K when A is transposed). An op that cannot be split
 * that way fails the device (a sticky error naming the op) rather than computing from a
 * clipped window: need() returns 1 then, and every later dispatch is a no-op. */
static size_t chunk_elems(vkt_backend *be) { return (size_t)(vkt_vk(be)->max_range - 256) / 4; }

static void too_large(vkt_backend *be, const char *op, size_t bytes) {
    vkt_backend_failf(be,
                      "%s: a tensor of %zu bytes exceeds what one descriptor can cover on this "
                      "device (%llu bytes), and this op is not split yet. HINT: a smaller "
                      "batch_size, seq_len or model, or --device cpu:0",
                      op, bytes, (unsigned long long)vkt_vk(be)->max_range);
}
static int need(vkt_backend *be, const char *op, vkt_ptr p, size_t bytes) {
    if (!p.buf || vkt_vk_visible(vkt_vk(be), p) >= bytes) return 0;
    too_large(be, op, bytes);
    return 1;
}

/* A 1-D op over n elements (a thread each) in chunks; bindings whose bit is set in `advance`
 * move with the chunk (and touch its elements), the others are one element. *n_field
 * receives each chunk's length. */
static void run_chunked(vkt_backend *be, const char *name, int nb, const vkt_ptr *ptrs,
                        void *push, uint32_t push_size, uint32_t *offs, uint32_t *n_field,
                        size_t n, uint32_t wg, unsigned advance) {
    size_t chunk = chunk_elems(be);
    for (size_t at = 0; at < n || (n == 0 && at == 0); at += chunk) {
        size_t len = n - at < chunk ? n - at : chunk;
        vkt_ptr p[VKT_VK_MAX_BINDINGS];
        size_t bytes[VKT_VK_MAX_BINDINGS];
        for (int i = 0; i < nb; i++) {
            p[i] = ptrs[i];
            bytes[i] = vkt_elem_bytes(p[i]);
            if ((advance >> i) & 1u) {
                p[i].off += at * vkt_elem_bytes(p[i]);
                bytes[i] *= len ? len : 1;
            }
        }
        *n_field = (uint32_t)len;
        run(be, name, nb, p, bytes, push, push_size, offs, len, wg);
        if (n == 0) break;
    }
}

/* ---- two-stage deterministic reductions (shaders/colsum.comp, shaders/reduce.comp) ----
 * Stage 1 spreads a reduction over enough workgroups to fill a large GPU (REDUCE_TARGET),
 * each summing a fixed part in a fixed order into a partial; stage 2 sums the partials in
 * order. The partition depends only on the shape, so a result is bitwise the same run after
 * run on one device; nothing is atomic. */
#define REDUCE_TARGET 256u
#define REDUCE_MAX_GROUPS 1024u

/* Scratch for the partials, grown to the largest need so far (the old buffer is freed after
 * the work queued with it). NULL, the device failed, when there is no memory. */
static vkt_buf *partials(vkt_backend *be, const char *op, size_t floats) {
    vkt_vk_ctx *c = vkt_vk(be);
    size_t bytes = floats * sizeof(float);
    if (c->partials && c->partials->size >= bytes) return c->partials;
    char err[256];
    vkt_buf *n = vkt_vk_alloc(c, bytes < 4096 ? 4096 : bytes, err, sizeof err);
    if (!n) {
        vkt_backend_failf(be, "%s: no device memory for %zu bytes of partial sums: %s", op,
                          bytes, err);
        return NULL;
    }
    if (c->partials) vkt_vk_free(c, c->partials);
    c->partials = n;
    return n;
}

/* out[j] += sum over the M rows of column j of x (M x N, row-major); with ln (layernorm's
 * parameter gradients) x is dout, out gets sum dout * norm, out2 sum dout, where norm =
 * (inp - mean[i]) * rstd[i]. */
static void colsum(vkt_backend *be, const char *op, vkt_ptr out, vkt_ptr out2, vkt_ptr x,
                   vkt_ptr inp, vkt_ptr mean, vkt_ptr rstd, int M, int N, int ln) {
    vkt_vk_ctx *c = vkt_vk(be);
    if (M <= 0 || N <= 0 || vkt_vk_failed(c)) return;
    uint32_t cols = ((uint32_t)N + 63) / 64, most = ((uint32_t)M + 63) / 64; /* rows >= 64 */
    uint32_t chunks = (REDUCE_TARGET + cols - 1) / cols;
    if (chunks > most) chunks = most;
    if (chunks < 1) chunks = 1;
    uint32_t rows = ((uint32_t)M + chunks - 1) / chunks;
    chunks = ((uint32_t)M + rows - 1) / rows;
    vkt_buf *pb = partials(be, op, (size_t)chunks * N * (ln ? 2 : 1));
    if (!pb) return;
    struct { uint32_t M, N, rows, chunks, o[5]; } pc = {(uint32_t)M, (uint32_t)N, rows, chunks, {0}};
    vkt_ptr p1[5] = {vkt_at(pb, 0), x, inp, mean, rstd};
    size_t mn = (size_t)M * N * 4;
    size_t e1[5] = {(size_t)chunks * N * (ln ? 2 : 1) * 4, mn, mn, (size_t)M * 4, (size_t)M * 4};
    vkt_vk_bindings b;
    vkt_vk_bind(c, &b, ln ? 5 : 2, p1, e1);
    memcpy(pc.o, b.elem_off, sizeof pc.o);
    vkt_vk_shader sh = vkt_vk_shader_1d(ln ? "colsum_partial_ln" : "colsum_partial", 256);
    vkt_vk_dispatch(c, &sh, &b, &pc, sizeof pc, cols, chunks, 1);
    struct { uint32_t N, chunks, two, o[3]; } fc = {(uint32_t)N, chunks, ln ? 1u : 0u, {0}};
    vkt_ptr p2[3] = {out, vkt_at(pb, 0), ln ? out2 : out};
    size_t e2[3] = {(size_t)N * 4, e1[0], (size_t)N * 4};
    run(be, "colsum_final", 3, p2, e2, &fc, sizeof fc, fc.o, (size_t)N, 256);
}

/* out[0] = (or +=, see reduce.comp) the sum of x(n), squared with square: stage 1 over at
 * most REDUCE_MAX_GROUPS workgroups of at least 4096 elements each, stage 2 in one. */
typedef struct { uint32_t n, m, o[2]; float s; } red_push;
static void whole_sum(vkt_backend *be, const char *final, vkt_ptr out, vkt_ptr x, size_t n,
                      int square, float s) {
    size_t per = (n + REDUCE_MAX_GROUPS - 1) / REDUCE_MAX_GROUPS;
    if (per < 4096) per = 4096;
    uint32_t groups = n ? (uint32_t)((n + per - 1) / per) : 1;
    vkt_buf *pb = partials(be, final, groups);
    if (!pb) return;
    red_push pc = {(uint32_t)n, (uint32_t)per, {0}, 0};
    vkt_ptr p1[2] = {vkt_at(pb, 0), x};
    size_t e1[2] = {(size_t)groups * 4, n * 4};
    run(be, square ? "sumsq_partial" : "sum_partial", 2, p1, e1, &pc, sizeof pc, pc.o,
        (size_t)groups * 256, 256);
    red_push fc = {groups, 0, {0}, s};
    vkt_ptr p2[2] = {out, vkt_at(pb, 0)};
    size_t e2[2] = {4, (size_t)groups * 4};
    run(be, final, 2, p2, e2, &fc, sizeof fc, fc.o, 256, 256);
}

/* ---- device ---- */

int vkt_vk_op_init(vkt_backend *be, char *err, size_t errlen) {
    return vkt_vk_context_init(be, err, errlen);
}
void vkt_vk_op_shutdown(vkt_backend *be) {
    vkt_vk_ctx *c = vkt_vk(be);
    if (c && c->scratch) vkt_vk_free(c, c->scratch);
    if (c && c->partials) vkt_vk_free(c, c->partials);
    if (c) c->scratch = c->partials = NULL;
    if (c && c->dev) vkt_vk_matmul_shutdown(c);
    vkt_vk_context_shutdown(be);
}
void vkt_vk_op_synchronize(vkt_backend *be) { vkt_vk_flush(vkt_vk(be)); }

/* ---- memory ---- */

vkt_buf *vkt_vk_op_alloc(vkt_backend *be, size_t bytes, char *err, size_t errlen) {
    return vkt_vk_alloc(vkt_vk(be), bytes, err, errlen);
}
void vkt_vk_op_free(vkt_backend *be, vkt_buf *buf) { vkt_vk_free(vkt_vk(be), buf); }
uint64_t vkt_vk_op_own_bytes(vkt_backend *be) {
    vkt_vk_ctx *c = vkt_vk(be);
    return c ? c->staging_size + (c->readback_map ? c->readback_size : 0) +
                   (c->scratch ? c->scratch->size : 0) + (c->partials ? c->partials->size : 0)
             : 0;
}
void vkt_vk_op_upload(vkt_backend *be, vkt_ptr dst, const void *src, size_t bytes) {
    if (bytes) vkt_vk_upload(vkt_vk(be), dst, src, bytes);
}
void vkt_vk_op_download(vkt_backend *be, void *dst, vkt_ptr src, size_t bytes) {
    /* VKT_FAULT_INJECT=download:N: this download's fence wait reports a lost device */
    if (vkt_fault_hit(be, VKT_FAULT_DOWNLOAD)) vkt_vk(be)->fail_wait = 1;
    if (bytes)
        vkt_vk_download(vkt_vk(be), dst, src, bytes);
    else
        vkt_vk_flush(vkt_vk(be));
}
void vkt_vk_op_fill(vkt_backend *be, vkt_ptr dst, float value, size_t n) {
    if (!n) return;
    vkt_vk_ctx *c = vkt_vk(be);
    uint32_t bits;
    memcpy(&bits, &value, 4);
    VKT_VK_ASSERT(dst.off % 4 == 0 && dst.off + n * 4 <= dst.buf->size);
    vkt_vk_span w = vkt_vk_span_of(c, dst, n * 4, 1);
    vkt_vk_order(c, &w, 1);
    if (c->census) return;
    VkCommandBuffer cmd = vkt_vk_cmd(c);
    if (!cmd) return;
    c->d.vkCmdFillBuffer(cmd, vkt_vk_buffer_of(c, dst.buf), dst.buf->off + dst.off, n * 4, bits);
}
void vkt_vk_op_copy(vkt_backend *be, vkt_ptr dst, vkt_ptr src, size_t bytes) {
    if (!bytes) return;
    vkt_vk_ctx *c = vkt_vk(be);
    VKT_VK_ASSERT(dst.off + bytes <= dst.buf->size && src.off + bytes <= src.buf->size);
    VkDeviceSize so = src.buf->off + src.off, d0 = dst.buf->off + dst.off;
    if (so == d0 && src.buf->block == dst.buf->block) return;
    if (src.buf->block == dst.buf->block && so < d0 + bytes && d0 < so + bytes) {
        /* overlapping ranges (vkt_copy is memmove; vkCmdCopyBuffer forbids overlap): through
         * a temporary buffer, released at the next flush */
        char err[256];
        vkt_buf *tmp = vkt_vk_alloc(c, bytes, err, sizeof err);
        if (!tmp) {
            vkt_backend_failf(be, "copy: no device memory for a temporary buffer of %zu bytes",
                              bytes);
            return;
        }
        vkt_vk_op_copy(be, vkt_at(tmp, 0), src, bytes);
        vkt_vk_op_copy(be, dst, vkt_at(tmp, 0), bytes);
        vkt_vk_free(c, tmp);
        return;
    }
    VkBufferCopy bc = {.srcOffset = so, .dstOffset = d0, .size = bytes};
    vkt_vk_span sp[2] = {vkt_vk_span_of(c, src, bytes, 0), vkt_vk_span_of(c, dst, bytes, 1)};
    vkt_vk_order(c, sp, 2);
    if (c->census) return;
    VkCommandBuffer cmd = vkt_vk_cmd(c);
    if (!cmd) return;
    c->d.vkCmdCopyBuffer(cmd, vkt_vk_buffer_of(c, src.buf), vkt_vk_buffer_of(c, dst.buf), 1,
                         &bc);
}

/* ---- ops ---- */

void vkt_vk_op_encoder_forward(vkt_backend *be, vkt_ptr out, vkt_ptr tokens, vkt_ptr wte,
                               vkt_ptr wpe, int B, int T, int C) {
    struct { uint32_t B, T, C, o[4]; } pc = {(uint32_t)B, (uint32_t)T, (uint32_t)C, {0}};
    vkt_ptr p[4] = {out, tokens, wte, wpe};
    size_t bt = (size_t)B * T;
    size_t e[4] = {bt * C * 4, bt * 4, 0 /* rows by token id: V is not known here */,
                   (size_t)T * C * 4};
    need(be, "encoder_forward", out, (size_t)B * T * C * 4);
    need(be, "encoder_forward", wte, (size_t)C * 4); /* at least; rows by token id */
    run(be, "encoder_forward", 4, p, e, &pc, sizeof pc, pc.o, (size_t)B * T * C, 64);
}
void vkt_vk_op_encoder_backward(vkt_backend *be, vkt_ptr dwte, vkt_ptr dwpe, vkt_ptr dout,
                                vkt_ptr tokens, int B, int T, int C) {
    /* dwte: C x K threads, thread (k, c) owning channel c of the token rows v % K == k
     * (encoder.comp): about 64 K threads, K at most 64 (each thread scans every position) */
    uint32_t k = (65536u + (uint32_t)C - 1) / (uint32_t)C;
    if (k > 64) k = 64;
    if (k < 1) k = 1;
    struct { uint32_t B, T, C, o[4], buckets; } pc = {(uint32_t)B, (uint32_t)T, (uint32_t)C, {0}, k};
    vkt_ptr p[4] = {dwte, dwpe, dout, tokens};
    size_t bt = (size_t)B * T;
    size_t e[4] = {0 /* rows by token id */, (size_t)T * C * 4, bt * C * 4, bt * 4};
    need(be, "encoder_backward", dout, (size_t)B * T * C * 4);
    run(be, "encoder_backward", 4, p, e, &pc, sizeof pc, pc.o, (size_t)C * k, 64);
    /* dwpe(T, C) += the column sums of dout seen as B rows of T*C */
    colsum(be, "encoder_backward", dwpe, VKT_NULL_PTR, dout, VKT_NULL_PTR, VKT_NULL_PTR,
           VKT_NULL_PTR, B, T * C, 0);
}

/* Whether a producer writes its fp16 copy itself (its *_h variant, through 16-bit storage);
 * otherwise the op is followed by vkt_to_half's pass (half_after). */
static int fused_half(vkt_backend *be, vkt_ptr out_half) {
    vkt_vk_ctx *c = vkt_vk(be);
    return out_half.buf && c->storage16 && !c->fp64;
}
static void half_after(vkt_backend *be, vkt_ptr out_half, vkt_ptr out, size_t n, int fused) {
    if (out_half.buf && !fused) vkt_vk_op_to_half(be, out_half, out, n);
}

typedef struct { uint32_t N, C, mode, o[9]; } ln_push;

/* LayerNorm's row kernels (layernorm_rows.comp): a workgroup of 64 per row. Where C is a
 * multiple of 4, at most 4096, and every row of the bindings in used[] starts 16-byte aligned,
 * the row is held in registers, PT 4-float vectors per invocation read with 128-bit loads
 * (mode bit 0, a pipeline per PT); otherwise strided scalar loops. */
/* the row tensors read or written as vectors: bindings 0, 3, 4, 5 (forward: out, inp,
 * weight, bias; backward: dinp, dout, inp, weight), and the residual's a and b at 7, 8 */
static const int ln_vec4[] = {0, 3, 4, 5, 7, 8};
static void run_layernorm(vkt_backend *be, const char *name, int nb, const vkt_ptr *p,
                          const size_t *e, int N, int C, const int *used, int nused) {
    vkt_vk_ctx *c = vkt_vk(be);
    vkt_vk_bindings b;
    vkt_vk_bind(c, &b, nb, p, e);
    ln_push pc = {(uint32_t)N, (uint32_t)C, 0, {0}};
    memcpy(pc.o, b.elem_off, (size_t)nb * sizeof pc.o[0]);
    uint32_t pt = ((uint32_t)C + 255) / 256;
    int vec = C % 4 == 0 && pt <= 16;
    for (int i = 0; i < nused; i++) vec = vec && pc.o[used[i]] % 4 == 0;
    pc.mode = vec ? 1u : 0u;
    vkt_vk_shader sh = {name, {64, 1, 1}, 1, {{0, vec ? pt : 1}}, 0};
    uint32_t gx, gy;
    vkt_vk_grid1d((size_t)N * 64, 64, &gx, &gy);
    vkt_vk_dispatch(c, &sh, &b, &pc, sizeof pc, gx, gy, 1);
}
void vkt_vk_op_layernorm_forward(vkt_backend *be, vkt_ptr out, vkt_ptr mean, vkt_ptr rstd,
                                 vkt_ptr inp, vkt_ptr weight, vkt_ptr bias, int N, int C,
                                 vkt_ptr out_half) {
    vkt_ptr p[7] = {out, mean, rstd, inp, weight, bias, out_half};
    size_t nc = (size_t)N * C * 4, n4 = (size_t)N * 4, c4 = (size_t)C * 4;
    size_t e[7] = {nc, n4, n4, nc, c4, c4, nc / 2};
    need(be, "layernorm_forward", out, (size_t)N * C * 4);
    need(be, "layernorm_forward", inp, (size_t)N * C * 4);
    int f64 = vkt_vk(be)->fp64, fused = fused_half(be, out_half);
    if (f64) { /* the fp64 diagnostic: a thread per row */
        ln_push pc = {(uint32_t)N, (uint32_t)C, 0, {0}};
        run(be, "layernorm_forward_f64", 6, p, e, &pc, sizeof pc, pc.o, (size_t)N, 64);
    } else {
        run_layernorm(be, fused ? "layernorm_forward_h" : "layernorm_forward", fused ? 7 : 6, p,
                      e, N, C, ln_vec4, 4);
    }
    half_after(be, out_half, out, (size_t)N * C, fused);
}
/* One kernel (layernorm_rows.comp, RESIDUAL): res = a + b written and normalized in the same
 * pass over the row. The fp64 diagnostic, and a device that cannot bind 9 storage buffers to
 * a shader, run the two ops instead. */
void vkt_vk_op_residual_layernorm_forward(vkt_backend *be, vkt_ptr res, vkt_ptr out,
                                          vkt_ptr mean, vkt_ptr rstd, vkt_ptr a, vkt_ptr b,
                                          vkt_ptr weight, vkt_ptr bias, int N, int C,
                                          vkt_ptr out_half) {
    vkt_vk_ctx *c = vkt_vk(be);
    if (c->fp64 || c->props.limits.maxPerStageDescriptorStorageBuffers < 9) {
        vkt_vk_op_residual_forward(be, res, a, b, (size_t)N * C);
        vkt_vk_op_layernorm_forward(be, out, mean, rstd, res, weight, bias, N, C, out_half);
        return;
    }
    int fused = fused_half(be, out_half);
    vkt_ptr p[9] = {out, mean, rstd, res, weight, bias, fused ? out_half : VKT_NULL_PTR, a, b};
    size_t nc = (size_t)N * C * 4, n4 = (size_t)N * 4, c4 = (size_t)C * 4;
    size_t e[9] = {nc, n4, n4, nc, c4, c4, nc / 2, nc, nc};
    need(be, "residual_layernorm_forward", out, nc);
    need(be, "residual_layernorm_forward", res, nc);
    need(be, "residual_layernorm_forward", a, nc);
    need(be, "residual_layernorm_forward", b, nc);
    run_layernorm(be, fused ? "residual_layernorm_forward_h" : "residual_layernorm_forward", 9,
                  p, e, N, C, ln_vec4, 6);
    half_after(be, out_half, out, (size_t)N * C, fused);
}

void vkt_vk_op_layernorm_backward(vkt_backend *be, vkt_ptr dinp, vkt_ptr dweight,
                                  vkt_ptr dbias, vkt_ptr dout, vkt_ptr inp, vkt_ptr weight,
                                  vkt_ptr mean, vkt_ptr rstd, int N, int C) {
    ln_push pc = {(uint32_t)N, (uint32_t)C, 0, {0}};
    vkt_ptr p[8] = {dinp, dweight, dbias, dout, inp, weight, mean, rstd};
    size_t nc = (size_t)N * C * 4, n4 = (size_t)N * 4, c4 = (size_t)C * 4;
    size_t e[8] = {nc, c4, c4, nc, nc, c4, n4, n4};
    need(be, "layernorm_backward", dinp, (size_t)N * C * 4);
    need(be, "layernorm_backward", dout, (size_t)N * C * 4);
    need(be, "layernorm_backward", inp, (size_t)N * C * 4);
    int f64 = vkt_vk(be)->fp64;
    if (!f64) {
        run_layernorm(be, "layernorm_backward", 8, p, e, N, C, ln_vec4, 4);
        colsum(be, "layernorm_backward", dweight, dbias, dout, inp, mean, rstd, N, C, 1);
        return;
    }
    /* the fp64 diagnostic: a thread per row, then one per channel, sums in double */
    run(be, "layernorm_backward_f64", 8, p, e, &pc, sizeof pc, pc.o, (size_t)N, 64);
    pc.mode = 1;
    run(be, "layernorm_backward_f64", 8, p, e, &pc, sizeof pc, pc.o, (size_t)C, 64);
}

/* One matmul of tensors within the descriptor range (vk_matmul.c plans and records it). */
static void matmul_once(vkt_backend *be, vkt_ptr c_, vkt_ptr a, vkt_ptr b, vkt_ptr bias, int M,
                        int N, int K, int trans_a, int trans_b, float alpha, float beta) {
    vkt_vk_matmul_record(be, -1, c_, a, b, bias, M, N, K, trans_a, trans_b, alpha, beta, NULL);
}

void vkt_vk_op_matmul(vkt_backend *be, vkt_ptr c_, vkt_ptr a, vkt_ptr b, vkt_ptr bias, int M,
                      int N, int K, int trans_a, int trans_b, float alpha, float beta) {
    vkt_vk_ctx *c = vkt_vk(be);
    size_t szc = (size_t)M * N * 4, sza = (size_t)M * K * vkt_elem_bytes(a),
           szb = (size_t)K * N * vkt_elem_bytes(b);
    if (vkt_vk_visible(c, c_) >= szc && vkt_vk_visible(c, a) >= sza &&
        vkt_vk_visible(c, b) >= szb) {
        matmul_once(be, c_, a, b, bias, M, N, K, trans_a, trans_b, alpha, beta);
        return;
    }
    size_t lim = chunk_elems(be);
    if (!trans_a) {
        need(be, "matmul", b, szb); /* B whole; C and A in row blocks */
        /* row blocks of C and A: C(m0.., :) = A(m0.., :) op(B) */
        size_t rows = lim / (size_t)(N > K ? N : K);
        if (rows == 0) too_large(be, "matmul", (size_t)(N > K ? N : K) * 4); /* one row */
        if (vkt_vk_failed(c)) return;
        for (size_t m0 = 0; m0 < (size_t)M; m0 += rows) {
            int mr = (int)((size_t)M - m0 < rows ? (size_t)M - m0 : rows);
            matmul_once(be, vkt_ptr_addf(c_, m0 * N), vkt_ptr_addf(a, m0 * K), b, bias, mr, N,
                        K, 0, trans_b, alpha, beta);
        }
        return;
    }
    /* A stored (K,M): slices of K rows of A and of B (stored (K,N)), accumulating into C,
     * which must fit whole. B stored (N,K) cannot be sliced along K (the shader strides by
     * its own K), so A transposed with B transposed must fit as it is. */
    need(be, "matmul", c_, szc);
    if (trans_b) need(be, "matmul", a, sza);
    size_t ks = lim / (size_t)(M > N ? M : N);
    if (ks == 0) too_large(be, "matmul", (size_t)(M > N ? M : N) * 4); /* one row */
    if (vkt_vk_failed(c)) return;
    for (size_t k0 = 0; k0 < (size_t)K; k0 += ks) {
        int kr = (int)((size_t)K - k0 < ks ? (size_t)K - k0 : ks);
        matmul_once(be, c_, vkt_ptr_addf(a, k0 * M), vkt_ptr_addf(b, k0 * N),
                    k0 == 0 ? bias : VKT_NULL_PTR, M, N, kr, 1, 0, alpha,
                    k0 == 0 ? beta : 1.0f);
    }
}

/* The GELU in the matmul's epilogue where the tensors fit one descriptor each (not in the fp64
 * diagnostic, whose gelu evaluates tanh in double); what the tier could not fuse (vk_matmul.c:
 * the coopmat2 tier nothing, a split matmul or a variant without 16-bit storage the fp16
 * copy) runs after it as its own op. */
void vkt_vk_op_matmul_gelu(vkt_backend *be, vkt_ptr pre, vkt_ptr out, vkt_ptr a, vkt_ptr b,
                           vkt_ptr bias, int M, int N, int K, int trans_a, int trans_b,
                           vkt_ptr out_half) {
    vkt_vk_ctx *c = vkt_vk(be);
    size_t mn = (size_t)M * N;
    int fused = 0;
    if (!c->fp64 && vkt_vk_visible(c, pre) >= mn * 4 && vkt_vk_visible(c, out) >= mn * 4 &&
        (!out_half.buf || vkt_vk_visible(c, out_half) >= mn * 2) &&
        vkt_vk_visible(c, a) >= (size_t)M * K * vkt_elem_bytes(a) &&
        vkt_vk_visible(c, b) >= (size_t)K * N * vkt_elem_bytes(b)) {
        vkt_vk_gelu_out g = {out, out_half};
        fused = vkt_vk_matmul_record(be, -1, pre, a, b, bias, M, N, K, trans_a, trans_b, 1.0f,
                                     0.0f, &g);
    } else {
        vkt_vk_op_matmul(be, pre, a, b, bias, M, N, K, trans_a, trans_b, 1.0f, 0.0f);
    }
    if (!(fused & VKT_VK_FUSED_GELU))
        vkt_vk_op_gelu_forward(be, out, pre, mn, out_half);
    else if (out_half.buf && !(fused & VKT_VK_FUSED_GELU_HALF))
        vkt_vk_op_to_half(be, out_half, out, mn);
}

void vkt_vk_op_bias_backward(vkt_backend *be, vkt_ptr dbias, vkt_ptr dout, int M, int N) {
    need(be, "bias_backward", dout, (size_t)M * N * 4);
    colsum(be, "bias_backward", dbias, VKT_NULL_PTR, dout, VKT_NULL_PTR, VKT_NULL_PTR,
           VKT_NULL_PTR, M, N, 0);
}

/* ---- attention ----
 * By default flash attention (shaders/flash_attention.comp): tiles of BLK query rows by BLK
 * key rows through shared memory, workgroups of 128, grid (ceil(T/BLK), B*NH), one pipeline
 * per (head size, BLK). Under precision = fp16, where the device has cooperative matrices
 * whose fragment divides the head size, its variant on them (flash_attention_cm.comp: 4
 * subgroups, fp16 operands). Option attention = exact, the fp64 diagnostic
 * (VKT_VULKAN_FP64=1), or a head size whose tiles do not fit the device's shared memory even
 * at BLK 16 take attention.comp: a thread per row, workgroups of 64 rows. */
typedef struct { uint32_t B, T, C, NH, o[6]; float scale; } att_push;
enum { FLASH_FWD, FLASH_BWD_Q, FLASH_BWD_KV };
static const char *const flash_names[] = {"flash_attention_forward",
                                          "flash_attention_backward_q",
                                          "flash_attention_backward_kv"};
static const char *const flash_cm_names[] = {"flash_attention_cm_forward",
                                             "flash_attention_cm_backward_q",
                                             "flash_attention_cm_backward_kv"};
/* the forwards that also write out's fp16 copy (binding 3) */
static const char *const flash_fwd_h[] = {"flash_attention_forward_h",
                                          "flash_attention_cm_forward_h"};

/* Shared memory of a flash variant at block blk and head size hs: what the shader declares. */
static uint64_t flash_shared_bytes(int variant, uint32_t blk, uint32_t hs) {
    uint64_t rows = (uint64_t)blk * hs, tile = (uint64_t)blk * (blk + 1), lanes = 128 / blk;
    switch (variant) {
    case FLASH_FWD: return 4 * (3 * rows + 2 * tile);
    case FLASH_BWD_Q: return 4 * (4 * rows + tile + blk * lanes);
    default: return 4 * (4 * rows + 2 * tile + 2 * (uint64_t)blk);
    }
}

/* Both flash kernels try blocks of 64, 32, 16 rows, largest first, skipping one that a short
 * sequence would leave half empty (16 always qualifies). */
static int block_suits(uint32_t blk, uint32_t T) { return blk == 16 || blk / 2 < T; }

/* The block of a flash variant: the largest whose tiles fit the device's shared memory; 0
 * when none fits. */
static uint32_t flash_block(vkt_vk_ctx *c, int variant, uint32_t hs, uint32_t T) {
    for (uint32_t blk = 64; blk >= 16; blk /= 2) {
        if (!block_suits(blk, T)) continue;
        if (flash_shared_bytes(variant, blk, hs) <= c->props.limits.maxComputeSharedMemorySize)
            return blk;
    }
    return 0;
}

/* The cooperative-matrix variant's dispatch: workgroup, block and the device's fragment. */
typedef struct { uint32_t wg, sg, blk, tm, tn, tk; } flash_cm_plan;

/* Shared memory of a cooperative-matrix variant, as flash_attention_cm.comp declares it. */
static uint64_t flash_cm_shared(int variant, uint32_t blk, uint32_t hs, uint32_t wg) {
    uint64_t hsp = hs + 8, blkp = blk + 8, sfs = blk + 4, pvs = hs + 4, lanes = wg / blk;
    uint64_t halves, scr, extra = blk * lanes;
    switch (variant) {
    case FLASH_FWD:
        halves = 3 * blk * hsp + blk * blkp;
        scr = blk * sfs > blk * pvs ? blk * sfs : blk * pvs;
        break;
    case FLASH_BWD_Q:
        halves = 4 * blk * hsp + 2 * blk * blkp;
        scr = 2 * blk * sfs > blk * pvs ? 2 * blk * sfs : blk * pvs;
        break;
    default:
        halves = 4 * blk * hsp + 2 * blk * blkp;
        scr = 2 * blk * (sfs > pvs ? sfs : pvs);
        extra += 2 * (uint64_t)blk;
    }
    return 2 * halves + 4 * (scr + extra);
}

/* Whether the cooperative-matrix variant runs this head size here (precision = fp16, the
 * shader built, a fragment of the device's that divides the head size, 4 subgroups of the
 * device's fixed size, a block that fits shared memory), and how. */
static int flash_cm_plan_for(vkt_vk_ctx *c, int variant, uint32_t hs, uint32_t T,
                             flash_cm_plan *p) {
    const vkt_vk_mma_shape *s = c->coopmat_on ? vkt_vk_mma_shape_of(c) : NULL;
    uint32_t sg = c->phys->subgroup_size, wg = 4 * sg;
    if (!c->precision_f16 || !s || !vkt_spirv_find(flash_cm_names[variant]) || !sg ||
        !vkt_vk_subgroup_fixed(c, sg) || wg > c->props.limits.maxComputeWorkGroupInvocations ||
        wg > c->props.limits.maxComputeWorkGroupSize[0] || hs % 8 || hs % s->n || hs % s->k)
        return 0;
    for (uint32_t blk = 64; blk >= 16; blk /= 2) {
        if (!block_suits(blk, T)) continue;
        if (blk % s->m || blk % s->n || blk % s->k || wg % blk || wg < blk) continue;
        if (flash_cm_shared(variant, blk, hs, wg) > c->props.limits.maxComputeSharedMemorySize)
            continue;
        *p = (flash_cm_plan){wg, sg, blk, s->m, s->n, s->k};
        return 1;
    }
    return 0;
}

/* Whether attention runs as flash attention here (said once when the head size forces the
 * exact kernel). */
static int use_flash(vkt_backend *be, uint32_t hs, uint32_t T) {
    vkt_vk_ctx *c = vkt_vk(be);
    if (c->attention_exact || c->fp64) return 0;
    for (int v = FLASH_FWD; v <= FLASH_BWD_KV; v++)
        if (!flash_block(c, v, hs, T)) {
            if (!c->attention_noted)
                fprintf(stderr, "vulkan:%d: attention: head size %u needs more than the "
                        "device's %u bytes of shared memory for flash attention's tiles; the "
                        "exact kernel runs instead\n", be->device, hs,
                        c->props.limits.maxComputeSharedMemorySize);
            c->attention_noted = 1;
            return 0;
        }
    return 1;
}

/* flash: a FLASH_* variant, or -1 for the exact kernel `name`; cm: its cooperative-matrix
 * form with plan *cp. */
static void run_attention(vkt_backend *be, int flash, const flash_cm_plan *cp,
                          const char *name, int nb, const vkt_ptr *ptrs, const size_t *bytes,
                          att_push *pc) {
    vkt_vk_ctx *c = vkt_vk(be);
    vkt_vk_bindings bd;
    vkt_vk_bind(c, &bd, nb, ptrs, bytes);
    memcpy(pc->o, bd.elem_off, (size_t)nb * sizeof pc->o[0]);
    uint32_t hs = pc->C / pc->NH;
    int h = flash == FLASH_FWD && nb == 4; /* a forward writing out's fp16 copy */
    if (flash >= 0 && cp) {
        vkt_vk_shader sh = {h ? flash_fwd_h[1] : flash_cm_names[flash], {cp->wg, 1, 1}, 6,
                            {{0, cp->wg}, {1, hs}, {2, cp->blk}, {3, cp->tm}, {4, cp->tn},
                             {5, cp->tk}}, cp->sg};
        vkt_vk_dispatch(c, &sh, &bd, pc, sizeof *pc, (pc->T + cp->blk - 1) / cp->blk,
                        pc->B * pc->NH, 1);
        return;
    }
    if (flash >= 0) {
        uint32_t blk = flash_block(c, flash, hs, pc->T);
        vkt_vk_shader sh = {h ? flash_fwd_h[0] : flash_names[flash], {128, 1, 1}, 2,
                            {{0, hs}, {1, blk}}, 0};
        vkt_vk_dispatch(c, &sh, &bd, pc, sizeof *pc, (pc->T + blk - 1) / blk, pc->B * pc->NH, 1);
        return;
    }
    vkt_vk_shader sh = {name, {64, 1, 1}, 1, {{0, hs}}, 0};
    vkt_vk_dispatch(c, &sh, &bd, pc, sizeof *pc, (pc->T + 63) / 64, pc->B * pc->NH, 1);
}

void vkt_vk_op_attention_forward(vkt_backend *be, vkt_ptr out, vkt_ptr lse, vkt_ptr qkv, int B,
                                 int T, int C, int NH, vkt_ptr out_half) {
    att_push pc = {(uint32_t)B, (uint32_t)T, (uint32_t)C, (uint32_t)NH, {0},
                   1.0f / sqrtf((float)(C / NH))};
    vkt_ptr p[4] = {out, lse, qkv, out_half};
    size_t btc = (size_t)B * T * C * 4;
    size_t e[4] = {btc, (size_t)B * NH * T * 4, 3 * btc, btc / 2};
    need(be, "attention_forward", out, (size_t)B * T * C * 4);
    need(be, "attention_forward", qkv, (size_t)B * T * 3 * C * 4);
    uint32_t hs = (uint32_t)(C / NH);
    int flash = use_flash(be, hs, (uint32_t)T) ? FLASH_FWD : -1;
    flash_cm_plan cp;
    int cm = flash >= 0 && flash_cm_plan_for(vkt_vk(be), FLASH_FWD, hs, (uint32_t)T, &cp);
    int fused = flash >= 0 && fused_half(be, out_half); /* the exact kernel: a to_half pass */
    run_attention(be, flash, cm ? &cp : NULL,
                  vkt_vk(be)->fp64 ? "attention_forward_f64" : "attention_forward",
                  fused ? 4 : 3, p, e, &pc);
    half_after(be, out_half, out, (size_t)B * T * C, fused);
}
void vkt_vk_op_attention_backward(vkt_backend *be, vkt_ptr dqkv, vkt_ptr dout, vkt_ptr qkv,
                                  vkt_ptr lse, vkt_ptr out, int B, int T, int C, int NH) {
    vkt_vk_ctx *c = vkt_vk(be);
    size_t dots_bytes = (size_t)B * NH * T * sizeof(float);
    if (!c->scratch || c->scratch->size < dots_bytes) { /* the old one dies at the next flush */
        char err[256];
        if (c->scratch) vkt_vk_free(c, c->scratch);
        c->scratch = vkt_vk_alloc(c, dots_bytes, err, sizeof err);
        if (!c->scratch) {
            vkt_backend_failf(be, "attention_backward: no device memory for its %zu-byte "
                              "scratch buffer. HINT: a smaller batch_size or model",
                              dots_bytes);
            return;
        }
    }
    att_push pc = {(uint32_t)B, (uint32_t)T, (uint32_t)C, (uint32_t)NH, {0},
                   1.0f / sqrtf((float)(C / NH))};
    /* flash attention's dQ kernel forms D = rowsum(dout o out) from the forward's output
     * (binding 5); the exact kernel sums it from the probabilities */
    vkt_ptr p[6] = {dqkv, dout, qkv, lse, vkt_at(c->scratch, 0), out};
    size_t btc = (size_t)B * T * C * 4;
    size_t e[6] = {3 * btc, btc, 3 * btc, dots_bytes, dots_bytes, btc};
    need(be, "attention_backward", qkv, (size_t)B * T * 3 * C * 4);
    need(be, "attention_backward", dqkv, (size_t)B * T * 3 * C * 4);
    uint32_t hs = (uint32_t)(C / NH);
    int flash = use_flash(be, hs, (uint32_t)T);
    flash_cm_plan cq, ckv; /* both kernels on cooperative matrices, or neither */
    int cm = flash && flash_cm_plan_for(c, FLASH_BWD_Q, hs, (uint32_t)T, &cq) &&
             flash_cm_plan_for(c, FLASH_BWD_KV, hs, (uint32_t)T, &ckv);
    run_attention(be, flash ? FLASH_BWD_Q : -1, cm ? &cq : NULL,
                  c->fp64 ? "attention_backward_q_f64" : "attention_backward_q", flash ? 6 : 5,
                  p, e, &pc);
    run_attention(be, flash ? FLASH_BWD_KV : -1, cm ? &ckv : NULL,
                  c->fp64 ? "attention_backward_kv_f64" : "attention_backward_kv", 5, p, e, &pc);
}

typedef struct { uint32_t n, o[3]; float s; } ew_push;
void vkt_vk_op_gelu_forward(vkt_backend *be, vkt_ptr out, vkt_ptr inp, size_t n,
                            vkt_ptr out_half) {
    ew_push pc = {(uint32_t)n, {0}, 0};
    int fused = fused_half(be, out_half);
    vkt_ptr p[3] = {out, inp, fused ? out_half : out}; /* the copy in the unused binding */
    run_chunked(be, vkt_vk(be)->fp64 ? "gelu_forward_f64" : fused ? "gelu_forward_h"
                                                               : "gelu_forward",
                3, p, &pc, sizeof pc, pc.o, &pc.n, n, 256, 7u);
    half_after(be, out_half, out, n, fused);
}
void vkt_vk_op_gelu_backward(vkt_backend *be, vkt_ptr dinp, vkt_ptr inp, vkt_ptr dout,
                             size_t n) {
    ew_push pc = {(uint32_t)n, {0}, 0};
    vkt_ptr p[3] = {dinp, inp, dout};
    run_chunked(be, vkt_vk(be)->fp64 ? "gelu_backward_f64" : "gelu_backward", 3, p, &pc,
                sizeof pc, pc.o, &pc.n, n, 256, 7u);
}
void vkt_vk_op_residual_forward(vkt_backend *be, vkt_ptr out, vkt_ptr a, vkt_ptr b, size_t n) {
    ew_push pc = {(uint32_t)n, {0}, 0};
    vkt_ptr p[3] = {out, a, b};
    run_chunked(be, "residual_forward", 3, p, &pc, sizeof pc, pc.o, &pc.n, n, 256, 7u);
}
/* In chunks a descriptor covers; one thread per 32-bit word of dst (n/2 + 1 of them at most,
 * the shader skips those past the end). */
void vkt_vk_op_to_half(vkt_backend *be, vkt_ptr dst, vkt_ptr src, size_t n) {
    size_t chunk = chunk_elems(be);
    for (size_t at = 0; at < n; at += chunk) {
        size_t len = n - at < chunk ? n - at : chunk;
        struct { uint32_t n, o[2]; } pc = {(uint32_t)len, {0}};
        vkt_ptr p[2] = {vkt_ptr_addf(dst, at), vkt_ptr_addf(src, at)};
        size_t e[2] = {len * 2, len * 4}; /* the window rounds dst out to whole words */
        run(be, "to_half", 2, p, e, &pc, sizeof pc, pc.o, len / 2 + 1, 256);
    }
}

void vkt_vk_op_scale(vkt_backend *be, vkt_ptr x, float s, size_t n) {
    ew_push pc = {(uint32_t)n, {0}, s};
    vkt_ptr p[3] = {x, x, x};
    run_chunked(be, "scale", 3, p, &pc, sizeof pc, pc.o, &pc.n, n, 256, 7u);
}

void vkt_vk_op_softmax_xent(vkt_backend *be, vkt_ptr losses, vkt_ptr logits, vkt_ptr targets,
                            int N, int V, int Vp, float grad_scale, int want_grad) {
    struct { uint32_t N, V, Vp, o[3], want_grad; float grad_scale; } pc = {
        (uint32_t)N, (uint32_t)V, (uint32_t)Vp, {0}, want_grad ? 1u : 0u, grad_scale};
    /* one workgroup of 256 per row; row blocks that one descriptor covers */
    size_t rows = chunk_elems(be) / (size_t)Vp;
    if (rows == 0) too_large(be, "softmax_xent", (size_t)Vp * 4); /* one row */
    if (vkt_vk_failed(vkt_vk(be))) return;
    for (size_t r0 = 0; r0 < (size_t)N; r0 += rows) {
        size_t nr = (size_t)N - r0 < rows ? (size_t)N - r0 : rows;
        vkt_ptr p[3] = {vkt_ptr_addf(losses, r0), vkt_ptr_addf(logits, r0 * Vp),
                        vkt_ptr_addf(targets, r0)};
        size_t e[3] = {nr * 4, nr * Vp * 4, nr * 4};
        pc.N = (uint32_t)nr;
        run(be, "softmax_xent", 3, p, e, &pc, sizeof pc, pc.o, nr * 256, 256);
    }
}

void vkt_vk_op_adamw(vkt_backend *be, vkt_ptr params, vkt_ptr grads, vkt_ptr m, vkt_ptr v,
                     size_t n, const vkt_adamw_args *a) {
    struct {
        uint32_t n, o[6], has_norm;
        float lr, beta1, beta2, eps, weight_decay, grad_scale, bc1, bc2, max_norm;
    } pc = {
        .n = (uint32_t)n, .has_norm = a->norm_sq.buf ? 1u : 0u,
        .lr = a->lr, .beta1 = a->beta1, .beta2 = a->beta2, .eps = a->eps,
        .weight_decay = a->weight_decay, .grad_scale = a->grad_scale,
        .bc1 = (float)(1.0 - pow(a->beta1, a->t)), .bc2 = (float)(1.0 - pow(a->beta2, a->t)),
        .max_norm = a->max_norm,
    };
    int fused = fused_half(be, a->params_half);
    vkt_ptr p[6] = {params, grads, m, v, a->norm_sq, a->params_half};
    /* the chunks move params, grads, m, v and the copy; norm_sq stays */
    run_chunked(be, fused ? "adamw_h" : "adamw", fused ? 6 : 5, p, &pc, sizeof pc, pc.o, &pc.n,
                n, 256, 0x2fu);
    half_after(be, a->params_half, params, n, fused);
}

/* In chunks one descriptor covers; sumsq's later chunks add to the first's. */
void vkt_vk_op_sumsq(vkt_backend *be, vkt_ptr out, vkt_ptr x, size_t n) {
    size_t chunk = chunk_elems(be), at = 0;
    do {
        size_t len = n - at < chunk ? n - at : chunk;
        whole_sum(be, "sumsq", out, vkt_ptr_addf(x, at), len, 1, at ? 1.0f : 0.0f);
        at += len;
    } while (at < n);
}
void vkt_vk_op_sum_into(vkt_backend *be, vkt_ptr out, vkt_ptr x, size_t n, float scale) {
    size_t chunk = chunk_elems(be), at = 0;
    do {
        size_t len = n - at < chunk ? n - at : chunk;
        whole_sum(be, "sum_into", out, vkt_ptr_addf(x, at), len, 0, scale);
        at += len;
    } while (at < n);
}
