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
