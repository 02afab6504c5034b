/* Progress lines for prepare (see progress.h). */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "util/progress.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void vkt_progress_start(vkt_progress *p, const char *what, double total_bytes, int enabled) {
    snprintf(p->what, sizeof p->what, "%s", what);
    p->total = total_bytes;
    p->t0 = p->last_print = now_s();
    p->enabled = enabled;
    p->tty = enabled && isatty(fileno(stderr));
}

static void print_line(vkt_progress *p, double done, double now, int final) {
    double el = now - p->t0, frac = p->total > 0 ? done / p->total : 1;
    double rate = el > 0 ? done / el : 0, eta = rate > 0 ? (p->total - done) / rate : 0;
    if (p->tty) {
        char bar[31];
        int fill = (int)(frac * 30 + 0.5);
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = 0;
        fprintf(stderr, "\r%s [%s] %5.1f%% %8.1f MB %7.1f MB/s ETA %4.0fs\033[K", p->what, bar,
                100 * frac, done / 1e6, rate / 1e6, final ? 0 : eta);
        if (final) fprintf(stderr, "\n");
    } else {
        fprintf(stderr, "%s: %.1f%% of %.1f MB, %.1f MB/s, %s %.0fs\n", p->what, 100 * frac,
                p->total / 1e6, rate / 1e6, final ? "took" : "ETA", final ? el : eta);
    }
    fflush(stderr);
    p->last_print = now;
}

void vkt_progress_update(vkt_progress *p, double done_bytes) {
    if (!p->enabled) return;
    double now = now_s();
    if (now - p->last_print >= (p->tty ? 0.2 : 5.0)) print_line(p, done_bytes, now, 0);
}

double vkt_progress_end(vkt_progress *p, double done_bytes) {
    double now = now_s();
    if (p->enabled) print_line(p, done_bytes, now, 1);
    return now - p->t0;
}
