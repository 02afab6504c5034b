/* Data parallelism: how the ranks of one run share a step. main() creates the handle before
 * anything else (vkt_dist_init) and finalizes it on every exit path; the training loop gets
 * it through vkt_train_opts. Two implementations behind this one interface:
 *   src/dist/dist_mpi.c     OpenMPI, when the build found it (-DVKT_MPI=ON, the default) and
 *                           the process was started by mpirun (or another PMI/PMIx launcher);
 *                           a plain `vktrain` run of an MPI build is one rank without MPI_Init
 *   src/dist/dist_single.c  one rank; every collective is the identity
 * so a single process takes the same code path either way. Nothing above this line includes
 * mpi.h. */
#ifndef VKTRAIN_DIST_H
#define VKTRAIN_DIST_H

#include <stddef.h>
#include <stdint.h>
#include "vktrain/backend.h"

typedef struct vkt_dist vkt_dist;

/* Never NULL: without a launcher (or an MPI build), the one-rank world. */
vkt_dist *vkt_dist_init(int *argc, char ***argv);
/* A one-rank world that never touches MPI: what vkt_train_run uses when its caller (a test, a
 * tool) passes none. */
vkt_dist *vkt_dist_local(void);
void vkt_dist_finalize(vkt_dist *d);
int vkt_dist_rank(const vkt_dist *d);
int vkt_dist_size(const vkt_dist *d);
/* This process's index among the ranks on its machine (0 without MPI). */
int vkt_dist_local_rank(const vkt_dist *d);
/* "MPI (Open MPI v4.1.4)" or "single process". */
const char *vkt_dist_name(const vkt_dist *d);

/* This rank's share [offset, offset+count) of a step's global_batch sequences: even shares,
 * rank r the r-th. */
void vkt_dist_batch_slice(const vkt_dist *d, int global_batch, int *offset, int *count);

/* buf(n floats, on be) = its sum over ranks, on every rank bitwise the same. Through host
 * memory (download, MPI_Allreduce, upload). 0, or -1 after a device error on this rank. */
int vkt_dist_allreduce_sum(vkt_dist *d, vkt_backend *be, vkt_buf *buf, size_t n);
/* buf(n floats, on be) = rank root's copy, on every rank. 0, or -1 after a device error. */
int vkt_dist_broadcast_buf(vkt_dist *d, vkt_backend *be, vkt_buf *buf, size_t n, int root);
/* Sum of x over ranks (losses, token counts); the same value on every rank. */
double vkt_dist_sum(vkt_dist *d, double x);
/* The largest x over ranks. */
int vkt_dist_max(vkt_dist *d, int x);
/* The lowest rank whose flag is non-zero, or -1 when none is. */
int vkt_dist_first_set(vkt_dist *d, int flag);
/* all[r * bytes ...] = rank r's mine (bytes each), on every rank. */
void vkt_dist_allgather(vkt_dist *d, const void *mine, void *all, size_t bytes);
/* Waits for every rank. Before a failing exit: mpirun ends the job at the first non-zero
 * exit status, so the rank with the message prints it, and then all meet here. */
void vkt_dist_barrier(vkt_dist *d);
/* Ends every rank of the job now with exit status code (MPI_Abort): for a failure on one rank
 * that the others, waiting in a collective, cannot see. Returns only in a one-rank world. */
void vkt_dist_abort(vkt_dist *d, int code);

#endif
