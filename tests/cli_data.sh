#!/bin/sh
# The data commands end to end on the real binary: prepare (byte and BPE) -> train on the
# prepared directory -> sample -> eval -> export -> eval of the export; and each kind of bad
# data input refused with status 2 and a message naming the file.
# usage: cli_data.sh VKTRAIN SOURCE_DIR
set -u
BIN=$1
SRC=$2
T=$(mktemp -d /tmp/vkt_clidata_XXXXXX)
trap 'rm -rf "$T"' EXIT
export XDG_CACHE_HOME="$T/cache"
. "$SRC/tests/cli_lib.sh"

head -c 200000 "$SRC/data/tinyshakespeare.txt" > "$T/corpus.txt"
cat > "$T/run.ini" <<INI
[model]
n_layer = 1
n_head = 2
n_embd = 16
block_size = 32
vocab_size = 512
[data]
train = $T/bpe
[train]
batch_size = 4
seq_len = 32
max_steps = 3
eval_batches = 2
out_dir = $T/out
[backend]
device = cpu:0
INI

# ---- happy path -------------------------------------------------------------------------------
for c in "$SRC"/configs/*.ini; do expect 0 "# parameters" --print-config "$c"; done
expect 0 "usage: vktrain prepare" prepare --help
expect 0 "wrote $T/bpe" prepare --tokenizer bpe --vocab-size 512 --out "$T/bpe" "$T/corpus.txt"
expect 0 "wrote $T/byte" prepare --quiet --val-fraction 0.2 --out "$T/byte" "$T/corpus.txt"
grep -q "^tokenizer = bpe" "$T/bpe/manifest.ini" || fail "bpe manifest lacks its tokenizer"
ls "$T" | grep -q '\.tmp' && fail "prepare left a temporary directory"
expect 0 "tokenizer bpe, vocab 512" "$T/run.ini"
[ -f "$T/out/checkpoint.bin" ] || fail "no checkpoint after training on a prepared directory"
a=$("$BIN" sample --checkpoint "$T/out" --prompt "KING" --tokens 40 --seed 5 --device cpu:0 2>/dev/null)
b=$("$BIN" sample --checkpoint "$T/out" --prompt "KING" --tokens 40 --seed 5 --device cpu:0 2>/dev/null)
cases=$((cases + 1))
[ -n "$a" ] && [ "$a" = "$b" ] || fail "sample: empty, or two runs with one seed differ"
case "$a" in KING*) ;; *) fail "sample output does not start with the prompt: $a" ;; esac
expect 0 "perplexity" eval --checkpoint "$T/out" --device cpu:0
l1=$("$BIN" eval --checkpoint "$T/out" --data "$T/bpe" --device cpu:0 2>&1 | sed -n 's/.*loss \([0-9.]*\).*/\1/p')
expect 0 "llm.c model" export --format llmc --checkpoint "$T/out" --out "$T/model.bin"
l2=$("$BIN" eval --checkpoint "$T/model.bin" --data "$T/bpe" --device cpu:0 2>&1 | sed -n 's/.*loss \([0-9.]*\).*/\1/p')
cases=$((cases + 1))
[ -n "$l1" ] && [ "$l1" = "$l2" ] || fail "eval of the export ($l2) differs from the checkpoint ($l1)"
# an llm.c model has no tokenizer: ids are printed; a prompt needs --tokenizer
expect 0 " " sample --checkpoint "$T/model.bin" --tokens 5 --device cpu:0
expect 2 "needs a tokenizer" sample --checkpoint "$T/model.bin" --prompt "hi" --device cpu:0
expect 0 "KING" sample --checkpoint "$T/model.bin" --tokenizer "$T/bpe/tokenizer.bin" --prompt "KING" --tokens 5 --device cpu:0
expect 2 "names no data" eval --checkpoint "$T/model.bin" --device cpu:0

# ---- bad input --------------------------------------------------------------------------------
expect 2 "already exists" prepare --out "$T/bpe" "$T/corpus.txt"
: > "$T/empty.txt"
expect 2 "$T/empty.txt: is empty" prepare --out "$T/o1" "$T/empty.txt"
expect 2 "$T/missing.txt: cannot open" prepare --out "$T/o1" "$T/missing.txt"
expect 2 "--tokenizer wordpiece" prepare --tokenizer wordpiece --out "$T/o1" "$T/corpus.txt"
expect 2 "--vocab-size 100" prepare --tokenizer bpe --vocab-size 100 --out "$T/o1" "$T/corpus.txt"
expect 2 "--out DIR is required" prepare "$T/corpus.txt"
expect 2 "unknown option '--bogus'" prepare --bogus --out "$T/o1" "$T/corpus.txt"
[ -e "$T/o1" ] && fail "a refused prepare left $T/o1"
# a prepare killed midway leaves no output (only a temporary directory, which the next prepare
# of the same output removes); the output is complete or absent, never half
i=0; while [ $i -lt 40 ]; do cat "$SRC/data/tinyshakespeare.txt"; i=$((i + 1)); done > "$T/big.txt"
"$BIN" prepare --quiet --out "$T/killed" "$T/big.txt" >/dev/null 2>&1 &
pid=$!; sleep 0.3; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
cases=$((cases + 1))
if [ -e "$T/killed" ] && ! grep -q "^val_tokens" "$T/killed/manifest.ini" 2>/dev/null; then
    fail "a killed prepare left a half output"
fi
mkdir -p "$T/killed.tmp.999999" && : > "$T/killed.tmp.999999/train_000000.bin"
expect 0 "wrote" prepare --quiet --force --out "$T/killed" "$T/corpus.txt"
cases=$((cases + 1))
ls -d "$T"/killed.tmp.* >/dev/null 2>&1 && fail "temporary directories of dead prepares remain"
expect 0 "wrote $T/slash" prepare --quiet --out "$T/slash/" "$T/corpus.txt"
# binary input: the byte tokenizer round-trips it, BPE does not crash on it
head -c 30000 /dev/urandom > "$T/random.bin"
expect 0 "wrote" prepare --quiet --out "$T/rb" "$T/random.bin"
expect 0 "wrote" prepare --quiet --tokenizer bpe --vocab-size 300 --out "$T/rbpe" "$T/random.bin"
# shards: wrong magic, wrong version, truncated body, token id >= vocab
cp "$T/byte/train_000000.bin" "$T/good.bin"

cp "$T/good.bin" "$T/magic.bin"
printf '\001\002\003\004' | dd of="$T/magic.bin" conv=notrunc 2>/dev/null
expect 2 "magic.bin: not a token shard: magic 67305985" --set data.train="$T/magic.bin" "$T/run.ini"
cp "$T/good.bin" "$T/version.bin"
printf '\007' | dd of="$T/version.bin" bs=1 seek=4 conv=notrunc 2>/dev/null
expect 2 "version.bin: token shard version 7" --set data.train="$T/version.bin" "$T/run.ini"
head -c 5000 "$T/good.bin" > "$T/cut.bin"
expect 2 "cut.bin: token shard is truncated" --set data.train="$T/cut.bin" "$T/run.ini"
expect 2 "is >= [model] vocab_size = 100" --set data.train="$T/good.bin" --set model.vocab_size=100 "$T/run.ini"
# a prepared directory whose tokenizer is not the one its shards were made with
cp -r "$T/bpe" "$T/mixed"
cp "$T/rbpe/tokenizer.bin" "$T/mixed/tokenizer.bin"
expect 2 "does not match the shards" --set data.train="$T/mixed" "$T/run.ini"
# a damaged tokenizer file
cp -r "$T/bpe" "$T/badtok"
printf 'garbage' | dd of="$T/badtok/tokenizer.bin" bs=1 seek=20 conv=notrunc 2>/dev/null
expect 2 "badtok/tokenizer.bin" --set data.train="$T/badtok" "$T/run.ini"
# the model's vocab is smaller than the tokenizer's
expect 2 "set vocab_size = 512" --set model.vocab_size=300 "$T/run.ini"
# a tokenizer that does not fit the model when sampling
expect 0 "wrote" prepare --quiet --tokenizer bpe --vocab-size 1000 --out "$T/bpe1000" "$T/corpus.txt"
expect 2 "not the model's tokenizer" sample --checkpoint "$T/out" --tokenizer "$T/bpe1000/tokenizer.bin" --device cpu:0
expect 0 "differs from the tokenizer saved" sample --checkpoint "$T/out" --tokenizer "$T/rbpe/tokenizer.bin" --tokens 3 --device cpu:0
# sample / eval / export arguments
expect 2 "--checkpoint DIR|FILE is required" sample
expect 2 "$T/nothing" sample --checkpoint "$T/nothing" --device cpu:0
expect 2 "--temperature -1" sample --checkpoint "$T/out" --temperature -1
expect 2 "--format onnx" export --format onnx --checkpoint "$T/out" --out "$T/x.bin"
expect 2 "neither a vktrain checkpoint nor an llm.c model" eval --checkpoint "$T/corpus.txt" --device cpu:0
expect 2 "--list-devices" sample --checkpoint "$T/out" --device 42

echo "cli_data: $((cases - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
