/* Progress line and metrics.jsonl. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fs.h"
#include "vktrain/log.h"

static int pending_cr = 0; /* an in-place line is on the terminal */

static void fmt_duration(char *buf, size_t len, double s) {
    if (s < 0 || s != s) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, len, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60) snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, len, "%lds", t);
}

void vkt_log_progress(const vkt_step_stats *s) {
    int tty = isatty(fileno(stderr));
    char eta[32];
    fmt_duration(eta, sizeof eta, s->eta_s);
    fprintf(stderr, "%sstep %*d/%d | loss %.4f | lr %.2e | norm %.3f | %.0f tok/s | ETA %s",
            tty ? "\r" : "", (int)snprintf(NULL, 0, "%d", s->total_steps), s->step,
            s->total_steps, s->loss, s->lr, s->grad_norm, s->tokens_per_s, eta);
    if (s->loss_scale > 0) fprintf(stderr, " | scale %.0f%s", s->loss_scale,
                                   s->skipped ? " (skipped)" : "");
    if (s->outlier_guard && s->outlier_skips)
        fprintf(stderr, " | outliers skipped %d%s", s->outlier_skips,
                s->outlier_skipped ? " (this step)" : "");
    if (s->has_val) fprintf(stderr, " | val %.4f", s->val_loss);
    if (tty && !s->has_val) {
        fprintf(stderr, "\033[K"); /* clear what a longer previous line left */
        pending_cr = 1;
    } else {
        fprintf(stderr, "\n");
        pending_cr = 0;
    }
    fflush(stderr);
}

void vkt_log_newline(void) {
    if (pending_cr) fprintf(stderr, "\n");
    pending_cr = 0;
}

/* Keeps the lines of path whose "step" is <= keep; rewrites the file atomically through this
 * process's own temp name (util/fs.h), which every failure removes again: a full disk leaves
 * the old file as it was and nothing beside it. */
static int truncate_after(const char *path, int keep, char *err, size_t errlen) {
    FILE *in = fopen(path, "r");
    if (!in) return 0; /* nothing logged yet */
    char tmp[1200]; /* vkt_metrics.path and ".tmp.<pid>" */
    vkt_temp_path(tmp, sizeof tmp, path);
    FILE *out = fopen(tmp, "w");
    if (!out) {
        snprintf(err, errlen, "%s: cannot write: %s", tmp, strerror(errno));
        fclose(in);
        return 1;
    }
    char line[4096];
    int ok = 1;
    while (ok && fgets(line, sizeof line, in)) {
        const char *p = strstr(line, "\"step\":");
        if (p && atoi(p + 7) <= keep) ok = fputs(line, out) >= 0;
    }
    int read_bad = ferror(in);
    fclose(in);
    ok = ok && !read_bad && fflush(out) == 0 && fsync(fileno(out)) == 0;
    int saved = errno;
    if (fclose(out) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (ok && rename(tmp, path) == 0) return 0;
    if (ok) saved = errno;
    remove(tmp);
    snprintf(err, errlen, "%s: cannot rewrite%s: %s", path, read_bad ? " (read error)" : "",
             strerror(saved));
    return 1;
}

int vkt_metrics_open(vkt_metrics *m, const char *out_dir, int keep_until_step, char *err,
                     size_t errlen) {
    snprintf(m->path, sizeof m->path, "%s/%s", out_dir, VKT_METRICS_FILE);
    /* a FIFO or device in its place would block fopen() (or take the log): refused */
    struct stat st;
    if (lstat(m->path, &st) == 0 && !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: exists and is not a regular file. HINT: move it away", m->path);
        return 2;
    }
    if (keep_until_step >= 0 && truncate_after(m->path, keep_until_step, err, errlen)) return 1;
    m->f = fopen(m->path, keep_until_step >= 0 ? "a" : "w");
    if (!m->f) {
        snprintf(err, errlen, "%s: cannot write: %s", m->path, strerror(errno));
        return 1;
    }
    return 0;
}

void vkt_metrics_write(vkt_metrics *m, const vkt_step_stats *s) {
    if (!m->f) return;
    char norm[32] = "null"; /* JSON has no inf: an fp16 overflow's norm */
    if (isfinite(s->grad_norm)) snprintf(norm, sizeof norm, "%.6f", s->grad_norm);
    fprintf(m->f,
            "{\"step\":%d,\"loss\":%.6f,\"lr\":%.6g,\"grad_norm\":%s,\"tokens_per_s\":%.1f,"
            "\"step_ms\":%.2f,\"data_wait_ms\":%.3f",
            s->step, s->loss, s->lr, norm, s->tokens_per_s, s->step_ms, s->data_wait_ms);
    if (s->ranks > 1)
        fprintf(m->f, ",\"ranks\":%d,\"compute_ms\":%.2f,\"exchange_ms\":%.2f", s->ranks,
                s->compute_ms, s->exchange_ms);
    if (s->has_val) fprintf(m->f, ",\"val_loss\":%.6f", s->val_loss);
    if (s->loss_scale > 0)
        fprintf(m->f, ",\"loss_scale\":%.0f,\"skipped\":%s", s->loss_scale,
                s->skipped ? "true" : "false");
    if (s->outlier_guard)
        fprintf(m->f, ",\"outlier_skipped\":%s,\"outlier_skips\":%d",
                s->outlier_skipped ? "true" : "false", s->outlier_skips);
    fprintf(m->f, "}\n");
    fflush(m->f);
}

void vkt_metrics_close(vkt_metrics *m) {
    if (m->f) fclose(m->f);
    m->f = NULL;
}

void vkt_log_profile(FILE *f, const vkt_profile_entry *e, int n, int steps, const char *source) {
    double total = 0;
    uint64_t calls = 0;
    for (int i = 0; i < n; i++) {
        total += e[i].total_ms;
        calls += e[i].calls;
    }
    int per = steps > 0 ? steps : 1;
    fprintf(f, "profile: %s, %d step%s (evaluation and checkpoint transfers included)\n", source,
            steps, steps == 1 ? "" : "s");
    fprintf(f, "%-28s %10s %12s %10s %7s  %s\n", "op", "calls", "total ms", "ms/step", "share",
            "workgroups min/median");
    for (int i = 0; i < n; i++) {
        char wg[48] = "-";
        if (e[i].median_groups)
            snprintf(wg, sizeof wg, "%llu/%llu", (unsigned long long)e[i].min_groups,
                     (unsigned long long)e[i].median_groups);
        fprintf(f, "%-28s %10llu %12.3f %10.3f %6.1f%%  %s\n", e[i].name,
                (unsigned long long)e[i].calls, e[i].total_ms, e[i].total_ms / per,
                total > 0 ? 100 * e[i].total_ms / total : 0.0, wg);
    }
    fprintf(f, "%-28s %10llu %12.3f %10.3f %6.1f%%\n", "total", (unsigned long long)calls, total,
            total / per, total > 0 ? 100.0 : 0.0);
}
