#!/bin/sh
# MPI data parallelism on the real binary (ctest label mpi): mpirun -np 2 with batch_size B
# trains on exactly the data of one process with 2B, so the losses of every step (and the
# validation losses) agree to 1e-5 relative: cpu + cpu, with gradient accumulation, across a
# checkpoint and --resume; cpu + vulkan (lavapipe) and cpu + opencl (PoCL) within their
# tolerance. Faults: a rank killed with SIGKILL mid-run fails the job within 30 s naming it; a
# rank whose parameters diverge is named by [parallel] check_every; a device error on one rank
# only is reported once and ends every rank; a config error is printed once.
# usage: cli_mpi.sh VKTRAIN SOURCE_DIR        (skips, 77, without mpirun)
set -u
BIN=$1
SRC=$2
command -v mpirun >/dev/null 2>&1 || { echo "SKIP: no mpirun (apt-get install openmpi-bin)"; exit 77; }
T=$(mktemp -d /tmp/vkt_climpi_XXXXXX)
bg=
trap '[ -n "$bg" ] && kill -9 $bg 2>/dev/null; rm -rf "$T"' EXIT
export XDG_CACHE_HOME="$T/cache" OMP_NUM_THREADS=1
# root (CI) needs both; 2 ranks on 2 cores need --oversubscribe when a core is busy
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN="mpirun --oversubscribe --bind-to none -np"
. "$SRC/tests/cli_lib.sh"

cat > "$T/run.ini" <<INI
[model]
n_layer = 2
n_head = 2
n_embd = 32
block_size = 32
[data]
train = $SRC/data/tinyshakespeare.txt
[train]
batch_size = 4
seq_len = 32
max_steps = 6
eval_interval = 3
eval_batches = 2
[backend]
device = cpu:0
INI

# same_losses A B TOL: every step's loss, and val_loss where both evaluated (a stop_step
# evaluates too), in A's metrics.jsonl within TOL relative of B's (plus the 1e-6 the file
# rounds to), and as many steps.
same_losses() {
    cases=$((cases + 1))
    if ! awk -v tol="$3" '
        function field(line, key,   i) {
            i = index(line, "\"" key "\":"); if (!i) return "";
            return substr(line, i + length(key) + 3) + 0
        }
        FNR == NR { l[FNR] = field($0, "loss"); v[FNR] = field($0, "val_loss"); n = FNR; next }
        { m = FNR; a = field($0, "loss"); b = l[FNR];
          d = a - b; if (d < 0) d = -d; if (d > tol * (b < 0 ? -b : b) + 1e-6) { bad = FNR }
          a = field($0, "val_loss"); b = v[FNR];
          if (a != "" && b != "") { d = a - b; if (d < 0) d = -d;
              if (d > tol * (b < 0 ? -b : b) + 1e-6) bad = FNR } }
        END { if (bad || m != n || n == 0) { print "step " bad ": differs (or " m " vs " n " steps)"; exit 1 } }
    ' "$2" "$1"; then
        fail "$4: losses of $1 differ from $2 beyond $3"
        paste -d'\n' "$1" "$2" | head -12
    fi
}

# ---- 2 ranks x B equal 1 rank x 2B -------------------------------------------------------
"$BIN" --set train.batch_size=8 --set train.out_dir="$T/one" "$T/run.ini" >"$T/one.log" 2>&1 ||
    fail "the single-process reference run failed: $(tail -2 "$T/one.log")"
expect_mpi() { # STATUS SUBSTRING NP ARGS...
    want=$1 pattern=$2 np=$3
    shift 3
    cases=$((cases + 1))
    out=$($MPIRUN "$np" "$BIN" "$@" 2>&1)
    got=$?
    if [ "$got" -ne "$want" ]; then
        fail "mpirun -np $np vktrain $*: exit $got, want $want"; echo "$out" | tail -5
    elif ! printf '%s' "$out" | grep -qF -- "$pattern"; then
        fail "mpirun -np $np vktrain $*: output lacks '$pattern':"; echo "$out" | tail -5
    fi
    last_out=$out
}
expect_mpi 0 "2 ranks, 4 sequences each" 2 --set train.out_dir="$T/two" "$T/run.ini"
same_losses "$T/two/metrics.jsonl" "$T/one/metrics.jsonl" 1e-5 "cpu + cpu"
cases=$((cases + 1))
n=$(printf '%s\n' "$last_out" | grep -c "^step ")
[ "$n" -eq 6 ] || fail "rank 0 alone should print the 6 progress lines, saw $n"

# gradient accumulation: 2 micro-batches of 2 per rank = 1 process with micro-batches of 4
"$BIN" --set train.batch_size=4 --set train.grad_accum_steps=2 --set train.out_dir="$T/one_acc" \
    "$T/run.ini" >"$T/one_acc.log" 2>&1 || fail "the accumulation reference failed"
expect_mpi 0 "done at step 6" 2 --set train.batch_size=2 --set train.grad_accum_steps=2 \
    --set train.out_dir="$T/two_acc" "$T/run.ini"
same_losses "$T/two_acc/metrics.jsonl" "$T/one_acc/metrics.jsonl" 1e-5 "accumulation"

# a checkpoint and --resume with the same 2 ranks continue the run exactly
expect_mpi 0 "done at step 3" 2 --set train.stop_step=3 --set train.out_dir="$T/res" "$T/run.ini"
expect_mpi 0 "done at step 6" 2 --resume --set train.out_dir="$T/res" "$T/run.ini"
same_losses "$T/res/metrics.jsonl" "$T/one/metrics.jsonl" 1e-5 "checkpoint and resume"

# balance = auto with rank 1 slowed to ~50 sequences/s: after step 4 it keeps 1 of the 8
# sequences, rank 0 takes 7 (in passes of batch_size 4), the data and losses unchanged; the
# split is saved in the checkpoint and a --resume starts from it
"$BIN" --set train.batch_size=8 --set train.max_steps=16 --set train.out_dir="$T/one16" \
    "$T/run.ini" >"$T/one16.log" 2>&1 || fail "the 16-step reference failed"
VKT_TEST_SLOW_RANK=1:20 expect_mpi 0 "by rank: 7 (" 2 --set parallel.balance=auto \
    --set train.max_steps=16 --set train.stop_step=8 --set train.out_dir="$T/bal" "$T/run.ini"
VKT_TEST_SLOW_RANK=1:20 expect_mpi 0 "balance: shares by rank from $T/bal/checkpoint.bin: 7, 1" 2 \
    --resume --set parallel.balance=auto --set train.max_steps=16 --set train.out_dir="$T/bal" \
    "$T/run.ini"
same_losses "$T/bal/metrics.jsonl" "$T/one16/metrics.jsonl" 1e-5 "balance = auto"

# mixed backends: each device's own kernels, one model (rank 0's parameters broadcast)
for dev in vulkan:0 opencl:0; do
    if "$BIN" --list-devices 2>/dev/null | grep -q " $dev "; then
        expect_mpi 0 "rank 1 $dev" 2 --set parallel.devices=cpu:0,$dev \
            --set train.out_dir="$T/mix_${dev%%:*}" "$T/run.ini"
        same_losses "$T/mix_${dev%%:*}/metrics.jsonl" "$T/one/metrics.jsonl" 1e-4 "cpu + $dev"
    else
        echo "not tested: cpu + $dev (no such device here)"
    fi
done

# ---- faults -------------------------------------------------------------------------------
# a config error every rank meets: said once
expect_mpi 2 "unknown key" 2 --set train.bogus=1 "$T/run.ini"
cases=$((cases + 1))
n=$(printf '%s\n' "$last_out" | grep -c "config error")
[ "$n" -eq 1 ] || fail "a config error should be printed once, saw $n times"
# one rank's device that does not exist: that rank named, once, every rank exits 2
expect_mpi 2 "error: rank 1: [parallel] devices: device 'cpu:7'" 2 --set parallel.devices=cpu:0,cpu:7 \
    --set train.out_dir="$T/baddev" "$T/run.ini"
cases=$((cases + 1))
n=$(printf '%s\n' "$last_out" | grep -c "error:")
[ "$n" -eq 1 ] || fail "one rank's bad device should be reported once, saw $n"
expect_mpi 2 "names fewer devices than the 2 ranks" 2 --set parallel.devices=cpu:0 \
    --set train.out_dir="$T/short" "$T/run.ini"
# diverged parameters: found at the check and the rank named
VKT_TEST_PERTURB_RANK=1 expect_mpi 1 "rank 1, cpu:0" 2 --set parallel.check_every=1 \
    --set train.out_dir="$T/div" "$T/run.ini"
# a device error on rank 1 only (its 5th download fails, as a lost device would): reported
# naming rank 1 and its device, and the job ends
cat >"$T/fault.sh" <<SH
#!/bin/sh
[ "\$OMPI_COMM_WORLD_RANK" = 1 ] && export VKT_FAULT_INJECT=download:5
exec "$BIN" "\$@"
SH
chmod +x "$T/fault.sh"
cases=$((cases + 1))
out=$($MPIRUN 2 "$T/fault.sh" --set train.out_dir="$T/fault" --set train.max_steps=1000 \
      "$T/run.ini" 2>&1)
st=$?
[ "$st" -ne 0 ] || fail "a device error on rank 1 left the job's status 0"
printf '%s' "$out" | grep -qF "rank 1 (cpu:0" || { fail "the device error does not name rank 1:"; printf '%s\n' "$out" | tail -5; }

# Ctrl-C to mpirun: every rank stops after the same step, rank 0 saves the checkpoint, and
# --resume goes on from it
$MPIRUN 2 "$BIN" --set train.max_steps=100000 --set train.out_dir="$T/int" "$T/run.ini" \
    >"$T/int.log" 2>&1 &
bg=$!
i=0
while [ $i -lt 300 ] && ! grep -q "^step " "$T/int.log" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
kill -INT "$bg"
i=0
while [ $i -lt 300 ] && kill -0 "$bg" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
cases=$((cases + 1))
if kill -0 "$bg" 2>/dev/null; then
    fail "the job still runs 30 s after Ctrl-C"
else
    wait "$bg"
    grep -q "interrupted after step" "$T/int.log" && [ -f "$T/int/checkpoint.bin" ] ||
        { fail "Ctrl-C did not stop the ranks with a checkpoint"; tail -5 "$T/int.log"; }
    at=$(sed -n 's/.*interrupted after step \([0-9]*\);.*/\1/p' "$T/int.log" | head -1)
    [ -n "$at" ] && expect_mpi 0 "done at step $((at + 1))" 2 --resume \
        --set train.max_steps=100000 --set train.stop_step=$((at + 1)) \
        --set train.out_dir="$T/int" "$T/run.ini"
fi
bg=

# a rank killed mid-run: mpirun ends the job, non-zero, naming it, within 30 s
$MPIRUN 2 "$BIN" --set train.max_steps=100000 --set train.checkpoint_interval=0 \
    --set train.out_dir="$T/kill" "$T/run.ini" >"$T/kill.log" 2>&1 &
bg=$!
i=0
while [ $i -lt 300 ] && ! grep -q "^step " "$T/kill.log" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
victim=
for p in $(pgrep -f "$T/kill"); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1" && victim=$p
done
cases=$((cases + 1))
if [ -z "$victim" ]; then
    fail "no rank 1 process found to kill"; tail -3 "$T/kill.log"
else
    t0=$(date +%s)
    kill -9 "$victim"
    i=0
    while [ $i -lt 300 ] && kill -0 "$bg" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
    if kill -0 "$bg" 2>/dev/null; then
        fail "the job still runs 30 s after rank 1 was killed"
    else
        wait "$bg"
        st=$?
        [ "$st" -ne 0 ] || fail "the job exited 0 after rank 1 was killed"
        grep -qi "rank 1" "$T/kill.log" || { fail "the job's output does not name rank 1"; tail -5 "$T/kill.log"; }
        echo "killed rank 1: the job ended in $(( $(date +%s) - t0 )) s with status $st"
    fi
    bg=
fi

echo "cli_mpi: $cases cases, $fails failures"
[ "$fails" -eq 0 ]
