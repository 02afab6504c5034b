/* Data parallelism seam: how ranks share a step. The single-process build links a trivial
 * implementation; the MPI one (later) all-reduces gradients between ranks, each rank taking
 * its slice of the step's global batch. */
#ifndef VKTRAIN_DIST_H
#define VKTRAIN_DIST_H

#include <stddef.h>
#include "vktrain/backend.h"

typedef struct vkt_dist vkt_dist;

vkt_dist *vkt_dist_init(int *argc, char ***argv);
void vkt_dist_finalize(vkt_dist *d);
int vkt_dist_rank(const vkt_dist *d);
int vkt_dist_size(const vkt_dist *d);
/* This rank's share [offset, offset+count) of a step's global_batch sequences. */
void vkt_dist_batch_slice(const vkt_dist *d, int global_batch, int *offset, int *count);
/* Replaces grads(n floats, on be) by the weighted sum over ranks of weight * grads, where
 * weight is this rank's share of the global batch (so the result is the global mean). */
void vkt_dist_allreduce_grads(vkt_dist *d, vkt_backend *be, vkt_buf *grads, size_t n,
                              float weight);
/* Sum of x over ranks (losses, token counts). */
double vkt_dist_sum(vkt_dist *d, double x);

#endif
