/* Progress of a long byte-processing job on stderr: a bar with MB/s and ETA rewritten in place
 * on a terminal; on a pipe or file, a plain line every few seconds and one at the end. */
#ifndef VKTRAIN_PROGRESS_H
#define VKTRAIN_PROGRESS_H

#include <stddef.h>

typedef struct vkt_progress {
    char what[64];
    double total, t0, last_print;
    int enabled, tty;
} vkt_progress;

void vkt_progress_start(vkt_progress *p, const char *what, double total_bytes, int enabled);
void vkt_progress_update(vkt_progress *p, double done_bytes);
/* The final line (always printed when enabled); returns the seconds since start. */
double vkt_progress_end(vkt_progress *p, double done_bytes);

#endif
