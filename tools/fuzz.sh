#!/bin/sh
# Fuzzes vktrain's file readers with libFuzzer (targets fuzz/fuzz_<target>.c, fuzz/README.md):
# configures a clang build with ASan + UBSan in build-fuzz/, builds the fuzz_<target>
# executables and runs each in turn for SECONDS on its seed corpus fuzz/corpus/<target>/ (read
# only) and dictionary. New inputs go to a scratch corpus and crashing inputs to a crash
# directory, both outside the repository (it prints them); each run ends with a line of
# executions, coverage and findings, and one line per crash with its sanitizer summary.
#
#   tools/fuzz.sh [TARGET|all] [SECONDS]    TARGET: config shard tokenizer checkpoint llmc
#                                           prepared; default all, 60 s each
# Environment:
#   VKT_FUZZ_OUT      scratch corpora and crashes (default /tmp/vktrain-fuzz); crashes of
#                     target T in $VKT_FUZZ_OUT/crashes/T/
#   VKT_FUZZ_BUILD    the build directory (default build-fuzz in the repository)
#   VKT_FUZZ_ARGS     more libFuzzer flags (e.g. -max_len=8192)
#   VKT_FUZZ_LENIENT  msg: a bad error message (empty, raw control bytes) is printed, not a
#                     crash; 1: every invariant violation (fuzz/fuzz_util.h) likewise
# One fuzzing process at a time (fork mode, one job), so crashes do not stop the run: each is
# kept and fuzzing goes on. Exit status 0 when no target crashed, 1 when one did, 2 on errors.
set -eu
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ALL="config shard tokenizer checkpoint llmc prepared"
WHICH="${1:-all}"
SECS="${2:-60}"
case "$WHICH" in
all) TARGETS="$ALL" ;;
*) case " $ALL " in
   *" $WHICH "*) TARGETS="$WHICH" ;;
   *) echo "fuzz.sh: unknown target '$WHICH' (known: $ALL, all)" >&2; exit 2 ;;
   esac ;;
esac
case "$SECS" in
''|*[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, not '$SECS'" >&2; exit 2 ;;
esac
CC_FUZZ="${CC_FUZZ:-clang}"
if ! command -v "$CC_FUZZ" > /dev/null 2>&1; then
    echo "fuzz.sh: $CC_FUZZ not found. HINT: apt-get install clang libclang-rt-dev" >&2
    exit 2
fi
BUILD="${VKT_FUZZ_BUILD:-$ROOT/build-fuzz}"
OUT="${VKT_FUZZ_OUT:-/tmp/vktrain-fuzz}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

echo "fuzz.sh: configuring and building $BUILD (clang, ASan + UBSan, libFuzzer)"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_C_COMPILER="$CC_FUZZ" -DVKT_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$OUT/configure.log" 2>&1 ||
    { cat "$OUT/configure.log" >&2; exit 2; }
tgts=""
for t in $TARGETS; do tgts="$tgts fuzz_$t"; done
# shellcheck disable=SC2086
cmake --build "$BUILD" -j"${VKT_FUZZ_BUILD_JOBS:-2}" --target $tgts > "$OUT/build.log" 2>&1 ||
    { tail -40 "$OUT/build.log" >&2; exit 2; }

# The sanitizers' reports (a leak is a finding too) and the scratch files of the targets.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$ROOT/tests/lsan.supp:print_suppressions=0}"
# per-input files in memory when there is a /dev/shm
if [ -d /dev/shm ] && [ -w /dev/shm ]; then VKT_FUZZ_TMP="/dev/shm/vktrain-fuzz.$$"
else VKT_FUZZ_TMP="$OUT/tmp.$$"; fi
export VKT_FUZZ_TMP
trap 'rm -rf "$VKT_FUZZ_TMP"' EXIT
status=0
summary=""
for t in $TARGETS; do
    exe="$BUILD/fuzz_$t"
    corpus="$OUT/corpus/$t"
    crashes="$OUT/crashes/$t"
    log="$OUT/$t.log"
    mkdir -p "$corpus" "$crashes" "$VKT_FUZZ_TMP"
    before=$(ls "$crashes" | wc -l)
    echo "fuzz.sh: $t for ${SECS}s: new inputs in $corpus, crashes in $crashes, log $log"
    dict=""
    [ -f "$ROOT/fuzz/$t.dict" ] && dict="-dict=$ROOT/fuzz/$t.dict"
    # shellcheck disable=SC2086
    "$exe" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
        -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$crashes/" $dict ${VKT_FUZZ_ARGS:-} \
        "$corpus" "$ROOT/fuzz/corpus/$t" > "$log" 2>&1 || true
    rm -rf "${VKT_FUZZ_TMP:?}"/vkt-fuzz-* # left by children that crashed
    # the last progress line: "#N: cov: C ft: F corp: ... exec/s E oom/timeout/crash: a/b/c ..."
    last=$(grep -E '^#[0-9]+: cov: ' "$log" | tail -1)
    execs=$(echo "$last" | sed -nE 's/^#([0-9]+):.*/\1/p')
    cov=$(echo "$last" | sed -nE 's/.* cov: ([0-9]+).*/\1/p')
    ft=$(echo "$last" | sed -nE 's/.* ft: ([0-9]+).*/\1/p')
    corp=$(echo "$last" | sed -nE 's/.* corp: ([0-9]+).*/\1/p')
    eps=$(( ${execs:-0} / (SECS > 0 ? SECS : 1) ))
    after=$(ls "$crashes" | wc -l)
    new=$((after - before))
    line="$t: ${execs:-?} executions in ${SECS}s (${eps:-?}/s), cov ${cov:-?} ft ${ft:-?}, corpus ${corp:-?}, $new new crash input(s) ($after in $crashes)"
    echo "fuzz.sh: $line"
    summary="$summary
$line"
    if [ -z "$last" ]; then
        echo "fuzz.sh: $t: no progress line in $log:" >&2
        tail -20 "$log" >&2
        status=2
    fi
    # what the crash inputs do, each replayed once without fork mode, grouped by place
    for f in "$crashes"/*; do
        [ -f "$f" ] || continue
        rep=$(timeout 60 "$exe" "$f" 2>&1 || true)
        key=$(echo "$rep" | grep -a -m1 -E "^SUMMARY: " | sed "s|$ROOT/||g; s/ in *$//")
        what=$(echo "$rep" | grep -a -m1 -E "runtime error|ERROR: (Address|Leak)Sanitizer|fuzz invariant|ERROR: libFuzzer" |
            sed "s|$ROOT/||g" | cut -c1-200)
        case "$what" in *"fuzz invariant"*) key="" ;; esac
        [ -n "$key" ] || key=$(echo "$what" | sed 's/0x[0-9a-f]*/0xNN/g' | cut -c1-60)
        printf '%s\t%s\t%s\n' "${key:-does not crash alone}" "$(basename "$f")" "$what"
    done | sort | awk -F'\t' '{ if (!($1 in n)) { order[++k] = $1; ex[$1] = $2; det[$1] = $3 } n[$1]++ }
        END { for (i = 1; i <= k; i++) printf "fuzz.sh:   %d x %s\n             e.g. %s: %s\n", n[order[i]], order[i], ex[order[i]], det[order[i]] }'
    [ "$after" -gt 0 ] && [ $status -eq 0 ] && status=1
done
echo "fuzz.sh: summary:$summary"
exit $status
