/* The MPI implementation of vktrain/dist.h (OpenMPI; any MPI-3 library works). MPI_Init runs
 * only when a launcher started the process (mpirun sets OMPI_COMM_WORLD_SIZE, PMIx and PMI
 * launchers PMIX_RANK / PMI_SIZE): a plain `vktrain` is the one-rank world without MPI, as in
 * a build without it (an MPI singleton would start a daemon and take seconds).
 *
 * Collectives on device buffers go through one host buffer, grown to the largest one so far:
 * download, MPI in place, upload. MPI counts are ints: large buffers go in chunks. Errors of
 * MPI itself keep MPI's default handler (MPI_ERRORS_ARE_FATAL: the job ends, mpirun names the
 * rank), so no rank waits for ever on one that has gone. */
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist_impl.h"
#include "vktrain/dist.h"

struct vkt_dist {
    int mpi; /* MPI_Init was called (and MPI_Finalize is due) */
    int rank, size, local_rank;
    char name[96];
    float *host; /* staging for collectives on device buffers */
    size_t host_n;
};

static int launched_by_mpi(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE",
                                       "PMI_RANK", NULL};
    for (int i = 0; vars[i]; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

vkt_dist *vkt_dist_init(int *argc, char ***argv) {
    static vkt_dist d;
    d = (vkt_dist){.size = 1};
    snprintf(d.name, sizeof d.name, "single process");
    if (!launched_by_mpi()) return &d;
    MPI_Init(argc, argv);
    d.mpi = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &d.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d.size);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d.rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &d.local_rank);
    MPI_Comm_free(&node);
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(lib, &len);
    lib[strcspn(lib, ",\n")] = 0; /* "Open MPI v4.1.4, package: ..." -> its first part */
    snprintf(d.name, sizeof d.name, "MPI (%.80s)", lib);
    return &d;
}

vkt_dist *vkt_dist_local(void) {
    static vkt_dist local = {.size = 1, .name = "single process"};
    return &local;
}

void vkt_dist_finalize(vkt_dist *d) {
    if (!d) return;
    free(d->host);
    d->host = NULL;
    d->host_n = 0;
    int done = 0;
    if (d->mpi && MPI_Finalized(&done) == MPI_SUCCESS && !done) MPI_Finalize();
    d->mpi = 0;
}

int vkt_dist_rank(const vkt_dist *d) { return d->rank; }
int vkt_dist_size(const vkt_dist *d) { return d->size; }
int vkt_dist_local_rank(const vkt_dist *d) { return d->local_rank; }
const char *vkt_dist_name(const vkt_dist *d) { return d->name; }

void vkt_dist_batch_slice(const vkt_dist *d, int global_batch, int *offset, int *count) {
    vkt_dist_even_slice(d->rank, d->size, global_batch, offset, count);
}

/* The host staging buffer for n floats; NULL when there is no memory (the caller aborts). */
static float *staging(vkt_dist *d, size_t n) {
    if (d->host_n >= n) return d->host;
    float *h = realloc(d->host, n * sizeof *h);
    if (!h) return NULL;
    d->host = h;
    d->host_n = n;
    return h;
}

#define CHUNK ((size_t)1 << 28) /* floats per MPI call: within an int count */

static float *stage_or_abort(vkt_dist *d, size_t n) {
    float *h = staging(d, n);
    if (!h) {
        fprintf(stderr, "vktrain: rank %d: out of host memory for %zu floats of MPI staging\n",
                d->rank, n);
        vkt_dist_abort(d, 1);
    }
    return h;
}

int vkt_dist_allreduce_sum(vkt_dist *d, vkt_backend *be, vkt_buf *buf, size_t n) {
    if (d->size == 1) return 0;
    float *h = stage_or_abort(d, n);
    if (vkt_download(be, h, vkt_at(buf, 0), n * sizeof *h)) return -1;
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t c = n - i < CHUNK ? n - i : CHUNK;
        MPI_Allreduce(MPI_IN_PLACE, h + i, (int)c, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
    vkt_upload(be, vkt_at(buf, 0), h, n * sizeof *h);
    return 0;
}

int vkt_dist_broadcast_buf(vkt_dist *d, vkt_backend *be, vkt_buf *buf, size_t n, int root) {
    if (d->size == 1) return 0;
    float *h = stage_or_abort(d, n);
    if (d->rank == root && vkt_download(be, h, vkt_at(buf, 0), n * sizeof *h)) return -1;
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t c = n - i < CHUNK ? n - i : CHUNK;
        MPI_Bcast(h + i, (int)c, MPI_FLOAT, root, MPI_COMM_WORLD);
    }
    if (d->rank != root) vkt_upload(be, vkt_at(buf, 0), h, n * sizeof *h);
    return 0;
}

double vkt_dist_sum(vkt_dist *d, double x) {
    if (d->size == 1) return x;
    double s = 0;
    MPI_Allreduce(&x, &s, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return s;
}

int vkt_dist_max(vkt_dist *d, int x) {
    if (d->size == 1) return x;
    int m = x;
    MPI_Allreduce(&x, &m, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return m;
}

int vkt_dist_first_set(vkt_dist *d, int flag) {
    int mine = flag ? d->rank : INT_MAX, first = mine;
    if (d->size > 1) MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return first == INT_MAX ? -1 : first;
}

void vkt_dist_allgather(vkt_dist *d, const void *mine, void *all, size_t bytes) {
    if (d->size == 1) {
        memmove(all, mine, bytes);
        return;
    }
    MPI_Allgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, MPI_COMM_WORLD);
}

void vkt_dist_barrier(vkt_dist *d) {
    fflush(stdout);
    fflush(stderr);
    if (d->size > 1) MPI_Barrier(MPI_COMM_WORLD);
}

void vkt_dist_abort(vkt_dist *d, int code) {
    if (!d->mpi || d->size == 1) return;
    fflush(stdout);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
}
