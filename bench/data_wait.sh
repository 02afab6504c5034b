#!/bin/sh
# How long training waits for data: runs configs/tiny.ini (or CONFIG) with the prefetch
# thread on (4 batches) and off, side by side, and reports from metrics.jsonl the median and
# total share of step time spent in vkt_loader_next.
# usage: bench/data_wait.sh [BUILD_DIR] [STEPS] [CONFIG]
set -eu
BUILD=${1:-build}
STEPS=${2:-100}
CONFIG=${3:-configs/tiny.ini}
T=$(mktemp -d /tmp/vkt_bench_wait_XXXXXX)
trap 'rm -rf "$T"' EXIT
export XDG_CACHE_HOME="$T/cache"
report() { # metrics.jsonl label
    awk -v label="$2" -F'[:,}]' '
        { for (i = 1; i < NF; i++) { if ($i == "\"step_ms\"") s = $(i + 1); if ($i == "\"data_wait_ms\"") w = $(i + 1) }
          n++; share[n] = 100 * w / s; tw += w; ts += s }
        END { # median by insertion sort (n is small)
          for (i = 2; i <= n; i++) { v = share[i]; j = i - 1; while (j > 0 && share[j] > v) { share[j + 1] = share[j]; j-- } share[j + 1] = v }
          med = n % 2 ? share[(n + 1) / 2] : (share[n / 2] + share[n / 2 + 1]) / 2
          printf "%-12s %6d steps | median wait %.4f%% of step time | total %.2f ms of %.0f ms = %.4f%%\n", label, n, med, tw, ts, 100 * tw / ts }' "$1"
}
"$BUILD/vktrain" "$CONFIG" --set train.max_steps="$STEPS" --set optim.warmup_steps=0 --set train.eval_interval=0 \
    --set train.out_dir="$T/warm" >/dev/null 2>&1 # prepares the data cache once
for p in 4 0; do
    "$BUILD/vktrain" "$CONFIG" --set train.max_steps="$STEPS" --set optim.warmup_steps=0 --set train.eval_interval=0 \
        --set data.prefetch=$p --set train.out_dir="$T/p$p" >/dev/null 2>&1
    report "$T/p$p/metrics.jsonl" "prefetch $p"
done
