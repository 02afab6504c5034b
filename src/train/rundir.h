/* The run directory ([train] out_dir) of a training run: one run at a time holds its lock, and
 * a fresh run keeps an earlier run's files by moving them aside, never over them. */
#ifndef VKTRAIN_RUNDIR_H
#define VKTRAIN_RUNDIR_H

#include <stddef.h>

/* Where a fresh run moves an earlier run's files: out_dir/VKT_RUNDIR_PREVIOUS/run-N, N one
 * more than the highest there (an aside is never reused or overwritten). */
#define VKT_RUNDIR_PREVIOUS "previous"

/* Locks out_dir for this process (util/fs.h vkt_dir_lock) until vkt_dir_unlock(*fd) or its
 * end. create 0: only when out_dir exists (else 0 with *fd -1: nothing to protect yet);
 * create 1: makes it first. 0; 2 when another process holds it, err naming the directory,
 * that process's pid and a HINT; 1 when it cannot be made or locked. */
int vkt_rundir_lock(const char *out_dir, int create, int *fd, char *err, size_t errlen);

/* Under the lock, before the run writes anything: removes the temporary files that killed
 * runs left (checkpoint.bin.tmp.<pid>, metrics.jsonl.tmp.<pid>: incomplete by construction),
 * and for a fresh run (resume 0) moves the files of an earlier run (checkpoint.bin,
 * metrics.jsonl) to a new out_dir/previous/run-N, saying so in one line on stderr. Other
 * entries of out_dir (a cache, the user's files, previous/) stay where they are. 0, or 1 with
 * err naming what could not be moved (what was moved is in the aside: nothing is lost). */
int vkt_rundir_start(const char *out_dir, int resume, char *err, size_t errlen);

#endif
