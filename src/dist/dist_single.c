/* The one-rank implementation of vktrain/dist.h, for builds without MPI (-DVKT_MPI=OFF, or no
 * OpenMPI found): every collective is the identity. dist_mpi.c behaves the same when the
 * process was not started by mpirun. */
#include <stdlib.h>
#include <string.h>

#include "dist/dist_impl.h"
#include "vktrain/dist.h"

struct vkt_dist {
    int unused;
};

vkt_dist *vkt_dist_init(int *argc, char ***argv) {
    (void)argc, (void)argv;
    static vkt_dist single;
    return &single;
}
vkt_dist *vkt_dist_local(void) { return vkt_dist_init(NULL, NULL); }
void vkt_dist_finalize(vkt_dist *d) { (void)d; }
int vkt_dist_rank(const vkt_dist *d) { (void)d; return 0; }
int vkt_dist_size(const vkt_dist *d) { (void)d; return 1; }
int vkt_dist_local_rank(const vkt_dist *d) { (void)d; return 0; }
const char *vkt_dist_name(const vkt_dist *d) { (void)d; return "single process (built without MPI)"; }
void vkt_dist_batch_slice(const vkt_dist *d, int global_batch, int *offset, int *count) {
    (void)d;
    vkt_dist_even_slice(0, 1, global_batch, offset, count);
}
int vkt_dist_allreduce_sum(vkt_dist *d, vkt_backend *be, vkt_buf *buf, size_t n) {
    (void)d, (void)be, (void)buf, (void)n;
    return 0;
}
int vkt_dist_broadcast_buf(vkt_dist *d, vkt_backend *be, vkt_buf *buf, size_t n, int root) {
    (void)d, (void)be, (void)buf, (void)n, (void)root;
    return 0;
}
double vkt_dist_sum(vkt_dist *d, double x) { (void)d; return x; }
int vkt_dist_max(vkt_dist *d, int x) { (void)d; return x; }
int vkt_dist_first_set(vkt_dist *d, int flag) { (void)d; return flag ? 0 : -1; }
void vkt_dist_allgather(vkt_dist *d, const void *mine, void *all, size_t bytes) {
    (void)d;
    memmove(all, mine, bytes);
}
void vkt_dist_barrier(vkt_dist *d) { (void)d; }
void vkt_dist_abort(vkt_dist *d, int code) { (void)d, (void)code; }
