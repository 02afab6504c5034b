#!/bin/sh
# --dry-run on the real binary: configs/gpt2-124m.ini at its batch of 8 x 1024 prints every
# buffer class and whether it fits (cpu:0; vulkan:0 and opencl:0 where present, judged
# against the device memory the table itself prints), without a run directory or the data;
# under a lowered allocation limit (VKT_VULKAN_MAX_ALLOC) the model still fits in per-tensor
# buffers, and a buffer over the limit is refused by name with exit 1.
# usage: cli_memory.sh VKTRAIN SOURCE_DIR
set -u
BIN=$1
SRC=$2
T=$(mktemp -d /tmp/vkt_climem_XXXXXX)
trap 'rm -rf "$T"' EXIT
export XDG_CACHE_HOME="$T/cache"
. "$SRC/tests/cli_lib.sh"
CFG="$SRC/configs/gpt2-124m.ini"
BENCH="$SRC/configs/bench-ref.ini"

# every class of the table, in one run's output
has_table() {
    for word in parameters gradients optimizer activations scratch backend total "fits: "; do
        printf '%s' "$out" | grep -qF -- "$word" || fail "$1: the table lacks '$word'"
    done
}

# dry DEV ARGS...: the dry run of gpt2-124m on DEV must print the table, and exit 0 with
# "fits: yes" when its total is within the device memory it prints, else 1 with "fits: no"
# and the total named.
dry() {
    dev=$1
    shift
    cases=$((cases + 1))
    out=$("$BIN" --dry-run --device "$dev" --set train.out_dir="$T/out" "$@" "$CFG" 2>&1)
    got=$?
    has_table "$dev"
    # "  total  8.75 GiB  of 23.54 GiB device memory; ..." -> 1 when the total fits
    fits=$(printf '%s\n' "$out" | awk '$1 == "total" {
        t = $2 * ($3 == "GiB" ? 1024 : 1); d = $5 * ($6 == "GiB" ? 1024 : 1);
        print (t <= d) ? 1 : 0 }')
    if [ "$fits" = 1 ]; then
        [ "$got" -eq 0 ] && printf '%s' "$out" | grep -q "^fits: yes" ||
            { fail "$dev $*: fits the device but exit $got"; echo "$out" | tail -3; }
    elif [ "$fits" = 0 ]; then
        [ "$got" -eq 1 ] && printf '%s' "$out" | grep -q "^fits: no" &&
            printf '%s' "$out" | grep -q "the model needs about" ||
            { fail "$dev $*: more than the device but exit $got"; echo "$out" | tail -3; }
    else
        fail "$dev $*: no total line"; echo "$out" | tail -3
    fi
    [ -e "$T/out" ] && fail "$dev $*: the dry run created out_dir"
}

# ---- cpu:0: the whole 124M run at B=8 fits host RAM here (8.7 GiB) -------------------------
expect 0 "fits: yes" --dry-run --device cpu:0 --set train.out_dir="$T/out" "$CFG"
has_table cpu:0
expect 0 "activations: logits" --dry-run --device cpu:0 --set train.out_dir="$T/out" "$CFG"
dry cpu:0
cases=$((cases + 1))
[ -e "$T/out" ] && fail "cpu:0: the dry run created out_dir"
# the data is not read: an empty train file (a run refuses it) does not matter, and nothing
# is tokenized into the cache
: > "$T/empty.txt"
expect 0 "fits: yes" --dry-run --device cpu:0 --set data.train="$T/empty.txt" \
    --set train.out_dir="$T/out" "$CFG"
cases=$((cases + 1))
[ -e "$T/cache/vktrain/data" ] && fail "the dry run prepared data in the cache"
expect 2 "is empty" --set data.train="$T/empty.txt" --set train.out_dir="$T/out2" "$CFG"
# more than the host has: refused before allocating, naming the total and the device
expect 1 "the model needs about" --dry-run --device cpu:0 --set train.batch_size=4096 "$CFG"
expect 1 "fits: no" --dry-run --device cpu:0 --set train.batch_size=4096 "$CFG"

devices=$("$BIN" --list-devices 2>&1)
if printf '%s\n' "$devices" | grep -q '^[0-9][0-9]* *vulkan:0 '; then
    # B=8 on lavapipe: Mesa 26's 23.5 GiB heap holds it; Debian 12's 2 GiB heap does not
    dry vulkan:0
    expect 0 "limit 2.00 GiB" --dry-run --device vulkan:0 --set train.batch_size=1 \
        --set train.seq_len=64 "$CFG"
    # bench-ref's 271 MiB of activations under a 256 MiB limit: per-tensor buffers fit
    cases=$((cases + 1))
    out=$(VKT_VULKAN_MAX_ALLOC=268435456 "$BIN" --dry-run --device vulkan:0 "$BENCH" 2>&1)
    printf '%s' "$out" | grep -q "^fits: yes" && printf '%s' "$out" | grep -q "limit 256.0 MiB" ||
        { fail "bench-ref under a 256 MiB limit does not fit"; echo "$out" | tail -3; }
    # its 196.5 MiB logits over a 128 MiB limit; its 61.4 MiB parameters over 32 MiB
    export VKT_VULKAN_MAX_ALLOC=134217728
    expect 1 "activations: logits: 196.5 MiB (206045184 bytes) in one buffer is more than vulkan:0" \
        --dry-run --device vulkan:0 "$BENCH"
    expect 1 "fits: no" --dry-run --device vulkan:0 "$BENCH"
    export VKT_VULKAN_MAX_ALLOC=33554432
    expect 1 "parameters: 61.4 MiB (64411648 bytes) in one buffer is more than" \
        --dry-run --device vulkan:0 "$BENCH"
    unset VKT_VULKAN_MAX_ALLOC
fi
if printf '%s\n' "$devices" | grep -q '^[0-9][0-9]* *opencl:0 '; then
    dry opencl:0
    dry opencl:0 --set train.batch_size=1 --set train.seq_len=128
fi

echo "cli_memory: $cases cases, $fails failed"
[ "$fails" -eq 0 ]
