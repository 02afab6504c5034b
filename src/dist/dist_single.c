/* The single-process implementation of the dist interface: one rank, reductions are no-ops.
 * The MPI implementation (src/dist/dist_mpi.c) provides the same functions. */
#include <stdlib.h>

#include "vktrain/dist.h"

struct vkt_dist {
    int unused;
};

vkt_dist *vkt_dist_init(int *argc, char ***argv) {
    (void)argc, (void)argv;
    static vkt_dist single;
    return &single;
}
void vkt_dist_finalize(vkt_dist *d) { (void)d; }
int vkt_dist_rank(const vkt_dist *d) { (void)d; return 0; }
int vkt_dist_size(const vkt_dist *d) { (void)d; return 1; }
void vkt_dist_batch_slice(const vkt_dist *d, int global_batch, int *offset, int *count) {
    (void)d;
    *offset = 0;
    *count = global_batch;
}
void vkt_dist_allreduce_grads(vkt_dist *d, vkt_backend *be, vkt_buf *grads, size_t n,
                              float weight) {
    (void)d, (void)be, (void)grads, (void)n, (void)weight;
}
double vkt_dist_sum(vkt_dist *d, double x) { (void)d; return x; }
