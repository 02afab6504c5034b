/* What both implementations of vktrain/dist.h share. */
#ifndef VKTRAIN_DIST_IMPL_H
#define VKTRAIN_DIST_IMPL_H

/* Even shares: rank r of `size` takes global_batch / size sequences from r * that on (the
 * config guarantees batch_size sequences per rank, so global_batch is a multiple). */
static inline void vkt_dist_even_slice(int rank, int size, int global_batch, int *offset,
                                       int *count) {
    int each = global_batch / size;
    *offset = rank * each;
    *count = rank == size - 1 ? global_batch - rank * each : each;
}

#endif
