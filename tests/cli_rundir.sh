#!/bin/sh
# The run directory on the real binary: a rerun keeps the earlier run (moved aside, said where),
# the README's first command twice, a second run on a busy out_dir refused naming the first's
# pid (and no stale lock after kill -9), and prepare --force over a foreign directory.
# usage: cli_rundir.sh VKTRAIN SOURCE_DIR
set -u
BIN=$1
SRC=$2
T=$(mktemp -d /tmp/vkt_clirundir_XXXXXX)
bg=
trap '[ -n "$bg" ] && kill -9 $bg 2>/dev/null; rm -rf "$T"' EXIT
export XDG_CACHE_HOME="$T/cache"
. "$SRC/tests/cli_lib.sh"

tiny_config "$T/run.ini" "$SRC/data/tinyshakespeare.txt" "$T/out"

# ---- a rerun over an earlier run keeps it ----------------------------------------------------
expect 0 "done at step 2" "$T/run.ini"
cp "$T/out/checkpoint.bin" "$T/ck1" && cp "$T/out/metrics.jsonl" "$T/m1"
expect 0 "moved checkpoint.bin, metrics.jsonl to $T/out/previous/run-1" --set train.seed=7 "$T/run.ini"
cases=$((cases + 1))
cmp -s "$T/ck1" "$T/out/previous/run-1/checkpoint.bin" && cmp -s "$T/m1" "$T/out/previous/run-1/metrics.jsonl" ||
    fail "the earlier run's files are not kept intact in previous/run-1"
cmp -s "$T/ck1" "$T/out/checkpoint.bin" && fail "the rerun (another seed) did not write its own checkpoint"
expect 0 "previous/run-2" "$T/run.ini"
cases=$((cases + 1))
cmp -s "$T/ck1" "$T/out/previous/run-1/checkpoint.bin" || fail "a second rerun overwrote previous/run-1"
# --resume: as before (nothing moved)
expect 0 "nothing left to do" --resume "$T/run.ini"
cases=$((cases + 1))
[ -e "$T/out/previous/run-3" ] && fail "--resume moved the run aside"
# the README's first command (configs/tiny.ini), twice, shortened
expect 0 "done at step 2" --device cpu:0 --set train.max_steps=2 --set optim.warmup_steps=1 --set train.out_dir="$T/tiny" "$SRC/configs/tiny.ini"
expect 0 "done at step 2" --device cpu:0 --set train.max_steps=2 --set optim.warmup_steps=1 --set train.out_dir="$T/tiny" "$SRC/configs/tiny.ini"

# ---- two runs on one out_dir -----------------------------------------------------------------
"$BIN" --set train.max_steps=100000000 --set train.out_dir="$T/busy" "$T/run.ini" >"$T/bg.log" 2>&1 &
bg=$!
i=0 # until the first run holds the lock (its pid in the lock file)
while [ "$(cat "$T/busy/.vktrain.lock" 2>/dev/null)" != "$bg" ] && [ $i -lt 600 ]; do
    sleep 0.1; i=$((i + 1))
done
cases=$((cases + 1))
[ $i -lt 600 ] || fail "the first run never took the lock: $(tail -3 "$T/bg.log")"
expect 2 "$T/busy: in use by another vktrain process (pid $bg). HINT: wait for that run to finish" --set train.out_dir="$T/busy" "$T/run.ini"
expect 2 "(pid $bg)" --resume --set train.out_dir="$T/busy" "$T/run.ini"
cases=$((cases + 1))
[ -e "$T/busy/previous" ] && fail "a refused run moved the first run's files"
kill -0 $bg 2>/dev/null || fail "the first run stopped: $(tail -3 "$T/bg.log")"
kill -9 $bg; wait $bg 2>/dev/null; bg=
# the kernel dropped the killed run's lock: a new run gets it (and keeps what the killed one wrote)
expect 0 "moved metrics.jsonl to $T/busy/previous/run-1" --set train.out_dir="$T/busy" "$T/run.ini"

# ---- prepare --force over a directory prepare did not write ------------------------------------
head -c 20000 "$SRC/data/tinyshakespeare.txt" > "$T/corpus.txt"
mkdir -p "$T/proj/src"
printf '[project]\nname = mine\n' > "$T/proj/manifest.ini"
echo "my notes" > "$T/proj/notes.txt"
echo "int main(void) { return 0; }" > "$T/proj/src/main.c"
(cd "$T/proj" && find . -type f | sort | xargs cat) > "$T/proj.before"
expect 2 "$T/proj: is not a prepared data directory" prepare --quiet --force --out "$T/proj" "$T/corpus.txt"
cases=$((cases + 1))
(cd "$T/proj" && find . -type f | sort | xargs cat) > "$T/proj.after"
cmp -s "$T/proj.before" "$T/proj.after" || fail "prepare --force changed a foreign directory"
ls -d "$T"/proj.* 2>/dev/null | grep -qv 'proj\.\(before\|after\)$' && fail "prepare left a proj.* directory"
# prepare's own output with one foreign file: named, kept; without it --force replaces
expect 0 "wrote" prepare --quiet --out "$T/own" "$T/corpus.txt"
echo "mine" > "$T/own/README"
expect 2 "holds README" prepare --quiet --force --out "$T/own" "$T/corpus.txt"
cases=$((cases + 1))
[ -f "$T/own/README" ] && [ -f "$T/own/train_000000.bin" ] || fail "a refused --force removed files"
rm "$T/own/README"
expect 0 "wrote" prepare --quiet --force --out "$T/own" "$T/corpus.txt"

echo "cli_rundir: $cases cases, $fails failed"
[ "$fails" -eq 0 ]
