#!/bin/sh
# MPI scaling, measured side by side in one run: configs/tiny.ini (or CONFIG) for STEPS steps
#   1. cpu:0 alone, and mpirun -np 2 on cpu:0 twice, one thread each (OMP_NUM_THREADS=1,
#      OPENBLAS_NUM_THREADS=1), batch_size per rank as in the config: tokens/s, the scaling
#      efficiency (2 ranks' tokens/s / (2 x one rank's)), and each step's share spent in the
#      gradient exchange (metrics.jsonl's exchange_ms, which includes waiting for the slower
#      rank) and in compute;
#   2. where an OpenCL device is present (DEVICE, default opencl:0): cpu:0 + DEVICE with
#      [parallel] balance = even against auto.
# Medians over the steps after the first 5 (compilation, balance = auto's timing). The same
# script runs on a real multi-GPU machine: DEVICES=vulkan:0,vulkan:1 replaces the cpu pair.
# usage: bench/bench_mpi.sh [BUILD_DIR] [STEPS] [CONFIG]
set -eu
BUILD=${1:-build}
STEPS=${2:-40}
CONFIG=${3:-configs/tiny.ini}
PAIR=${DEVICES:-cpu:0,cpu:0}
MIXED=${DEVICE:-opencl:0}
T=$(mktemp -d /tmp/vkt_bench_mpi_XXXXXX)
trap 'rm -rf "$T"' EXIT
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN="mpirun --oversubscribe --bind-to none -np"
COMMON="--set train.max_steps=$STEPS --set optim.warmup_steps=0 --set train.eval_interval=0 --set train.checkpoint_interval=0"

# median of a metrics.jsonl field over the steps after the 5th
med() {
    awk -v key="\"$2\"" -F'[:,}]' '
        { for (i = 1; i < NF; i++) if ($i == key) v = $(i + 1); n++; if (n > 5) x[++m] = v }
        END { if (!m) { print "nan"; exit }
              for (i = 2; i <= m; i++) { t = x[i]; j = i - 1; while (j > 0 && x[j] > t) { x[j + 1] = x[j]; j-- } x[j + 1] = t }
              print (m % 2 ? x[(m + 1) / 2] : (x[m / 2] + x[m / 2 + 1]) / 2) }' "$1"
}
row() { # label metrics.jsonl
    tok=$(med "$2" tokens_per_s) step=$(med "$2" step_ms) ex=$(med "$2" exchange_ms)
    comp=$(med "$2" compute_ms)
    awk -v l="$1" -v t="$tok" -v s="$step" -v e="$ex" -v c="$comp" 'BEGIN {
        if (e == "nan") printf "| %-34s | %9.0f | %8.2f | %15s | %14s |\n", l, t, s, "-", "-";
        else printf "| %-34s | %9.0f | %8.2f | %14.1f%% | %13.1f%% |\n", l, t, s, 100 * c / s, 100 * e / s }'
}
header() {
    echo "| run | tokens/s | ms/step | compute (rank 0) | exchange (rank 0) |"
    echo "|---|---|---|---|---|"
}

"$BUILD/vktrain" "$CONFIG" $COMMON --device cpu:0 --set train.max_steps=1 \
    --set train.out_dir="$T/warm" >/dev/null 2>&1 # the data cache, once
echo "config $CONFIG, $STEPS steps, medians after step 5; one thread per rank"
header
"$BUILD/vktrain" "$CONFIG" $COMMON --device "${PAIR%%,*}" --set train.out_dir="$T/one" >/dev/null 2>&1
row "1 rank (${PAIR%%,*})" "$T/one/metrics.jsonl"
$MPIRUN 2 "$BUILD/vktrain" "$CONFIG" $COMMON --set parallel.devices="$PAIR" \
    --set train.out_dir="$T/two" >/dev/null 2>&1
row "2 ranks ($PAIR)" "$T/two/metrics.jsonl"
a=$(med "$T/one/metrics.jsonl" tokens_per_s) b=$(med "$T/two/metrics.jsonl" tokens_per_s)
awk -v a="$a" -v b="$b" 'BEGIN { printf "scaling efficiency 1 -> 2 ranks: %.0f%% (%.2fx the tokens/s)\n", 100 * b / (2 * a), b / a }'

if "$BUILD/vktrain" --list-devices 2>/dev/null | grep -q " $MIXED "; then
    echo
    header
    "$BUILD/vktrain" "$CONFIG" $COMMON --device "$MIXED" --set train.out_dir="$T/dev" >/dev/null 2>&1
    row "1 rank ($MIXED)" "$T/dev/metrics.jsonl"
    for b in even auto; do
        $MPIRUN 2 "$BUILD/vktrain" "$CONFIG" $COMMON --set parallel.devices=cpu:0,"$MIXED" \
            --set parallel.balance=$b --set train.out_dir="$T/mix_$b" >"$T/mix_$b.log" 2>&1
        row "cpu:0 + $MIXED, balance = $b" "$T/mix_$b/metrics.jsonl"
    done
    grep "balance:" "$T/mix_auto.log" | sed 's/^/  /' || true
else
    echo "no $MIXED here: the mixed-device rows are not run"
fi
