# Shared by the CLI test scripts (sourced after BIN is set): failure counting and expect.
fails=0
cases=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# expect STATUS SUBSTRING ARGS... : runs vktrain ARGS, checks the exit status and that the
# combined output (stdout and stderr) contains SUBSTRING.
expect() {
    want=$1 pattern=$2
    shift 2
    cases=$((cases + 1))
    out=$("$BIN" "$@" 2>&1)
    got=$?
    if [ "$got" -ne "$want" ]; then
        fail "vktrain $*: exit $got, want $want"; echo "$out" | tail -3
    elif ! printf '%s' "$out" | grep -qF -- "$pattern"; then
        fail "vktrain $*: output lacks '$pattern':"; echo "$out" | tail -3
    fi
}

# tiny_config FILE TRAIN OUT_DIR: the smallest config that trains (2 steps of a 1-layer model on
# cpu:0); each script's cases vary it with --set or sed.
tiny_config() {
    cat > "$1" <<INI
[model]
n_layer = 1
n_head = 2
n_embd = 16
block_size = 16
[data]
train = $2
[train]
batch_size = 2
seq_len = 16
max_steps = 2
eval_batches = 1
out_dir = $3
[backend]
device = cpu:0
INI
}
