#!/bin/sh
# Hostile and damaged input on the real binary: a FIFO, a device or a directory for every kind
# of input file of every command is refused at once ("not a regular file", status 2), never
# waited on; crafted checkpoints and llm.c files (each with one bad field, written by
# test_checkpoint_hostile --write) are refused naming the field by --resume, init_from, eval
# and sample; non-finite weights are refused naming the tensor; an empty prompt is handled;
# eval never prints an empty error; a signal before training ends the process at once.
# Every call runs under `timeout`, so a regression fails instead of hanging.
# usage: cli_hostile.sh VKTRAIN SOURCE_DIR TEST_CHECKPOINT_HOSTILE
set -u
BIN=$1
SRC=$2
GEN=$3
T=$(mktemp -d /tmp/vkt_clihostile_XXXXXX)
trap 'rm -rf "$T"' EXIT
export XDG_CACHE_HOME="$T/cache"
. "$SRC/tests/cli_lib.sh"

# texpect STATUS SUBSTRING ARGS...: expect, under a 10 s timeout (a hang exits 124; KILL 5 s
# later, for a process that swallows the TERM)
texpect() {
    want=$1 pattern=$2
    shift 2
    cases=$((cases + 1))
    out=$(timeout -k 5 10 "$BIN" "$@" 2>&1)
    got=$?
    if [ "$got" -ne "$want" ]; then
        fail "vktrain $*: exit $got, want $want$([ "$got" -eq 124 ] || [ "$got" -eq 137 ] && echo ' (it hung)')"
        echo "$out" | tail -3
    elif ! printf '%s' "$out" | grep -qF -- "$pattern"; then
        fail "vktrain $*: output lacks '$pattern':"; echo "$out" | tail -3
    elif printf '%s\n' "$out" | grep -q 'error: *$'; then
        fail "vktrain $*: an empty error message:"; echo "$out" | tail -3
    fi
}

head -c 200000 "$SRC/data/tinyshakespeare.txt" > "$T/text.txt"
tiny_config "$T/good.ini" "$T/text.txt" "$T/out"
mkfifo "$T/fifo" "$T/fifo.bin" "$T/fifo.ini" || { echo "cli_hostile: mkfifo failed"; exit 1; }
mkdir "$T/crafted" && "$GEN" --write "$T/crafted" || { echo "cli_hostile: no crafted files"; exit 1; }
C=$T/crafted

# ---- non-regular files ------------------------------------------------------------------------
NR="not a regular file"
# the config
for f in "$T/fifo.ini" /dev/zero /dev/null; do
    texpect 2 "$f: $NR" "$f"
    texpect 2 "$f: $NR" --print-config "$f"
done
# data named by a config: text, shards, validation
texpect 2 "$T/fifo: $NR" --set data.train="$T/fifo" "$T/good.ini"
texpect 2 "$T/fifo.bin: $NR" --set data.train="$T/fifo.bin" "$T/good.ini"
texpect 2 "/dev/zero: $NR" --set data.train=/dev/zero "$T/good.ini"
texpect 2 "$T/fifo.bin: $NR" --set data.val="$T/fifo.bin" "$T/good.ini"
texpect 2 "$T/fifo: $NR" --set data.val="$T/fifo" "$T/good.ini"
# prepare's inputs
texpect 2 "$T/fifo: $NR" prepare --out "$T/p1" "$T/fifo"
texpect 2 "/dev/zero: $NR" prepare --out "$T/p1" /dev/zero
texpect 2 "$T/fifo: $NR" prepare --out "$T/p1" --val "$T/fifo" "$T/text.txt"
# the files of a prepared directory, each swapped for a FIFO in turn
texpect 0 "wrote $T/prep" prepare --quiet --val-fraction 0.1 --out "$T/prep" "$T/text.txt"
for f in manifest.ini tokenizer.bin train_000000.bin val_000000.bin; do
    rm -rf "$T/prep_$f" && cp -r "$T/prep" "$T/prep_$f" && rm "$T/prep_$f/$f" && mkfifo "$T/prep_$f/$f"
    texpect 2 "$T/prep_$f/$f: $NR" --set data.train="$T/prep_$f" "$T/good.ini"
done
# weights: init_from, a run directory's checkpoint.bin, --resume
texpect 2 "$T/fifo: $NR" --set model.init_from="$T/fifo" "$T/good.ini"
texpect 2 "/dev/zero: $NR" --set model.init_from=/dev/zero "$T/good.ini"
mkdir -p "$T/fiforun" && mkfifo "$T/fiforun/checkpoint.bin"
texpect 2 "$T/fiforun/checkpoint.bin: $NR" --resume --set train.out_dir="$T/fiforun" "$T/good.ini"
# eval and sample
texpect 0 "done at step 2" "$T/good.ini"
for f in "$T/fifo" /dev/null /dev/zero; do
    texpect 2 "$f: $NR" eval --checkpoint "$f" --device cpu:0
    texpect 2 "$f: $NR" sample --checkpoint "$f" --device cpu:0
    texpect 2 "$f: $NR" eval --checkpoint "$T/out" --data "$f" --device cpu:0
    texpect 2 "$f: $NR" eval --checkpoint "$T/out" --tokenizer "$f" --data "$T/text.txt" --device cpu:0
    texpect 2 "$f: $NR" sample --checkpoint "$T/out" --tokenizer "$f" --device cpu:0
done
texpect 2 "$T/fifo.bin: $NR" eval --checkpoint "$T/out" --data "$T/fifo.bin" --device cpu:0
texpect 2 "$T/fiforun/checkpoint.bin: $NR" eval --checkpoint "$T/fiforun" --device cpu:0
# a FIFO as the run's metrics.jsonl: a --resume refuses it (a fresh run moves it aside)
rm -rf "$T/fifometrics" && mkdir "$T/fifometrics" && cp "$T/out/checkpoint.bin" "$T/fifometrics/" &&
    mkfifo "$T/fifometrics/metrics.jsonl"
texpect 2 "$T/fifometrics/metrics.jsonl: exists and is not a regular file" --resume \
    --set train.out_dir="$T/fifometrics" --set train.max_steps=3 "$T/good.ini"

# ---- crafted checkpoints ----------------------------------------------------------------------
# --resume of a run directory holding one: refused naming the field, before anything is sized
resume_bad() { # resume_bad FILE NEEDLE
    rm -rf "$T/r" && mkdir "$T/r" && cp "$C/$1" "$T/r/checkpoint.bin"
    texpect 2 "$2" --resume --set train.out_dir="$T/r" "$T/good.ini"
}
resume_bad padded.ckpt "padded_vocab_size = 1024"
resume_bad heads0.ckpt "n_head = 0"
resume_bad maxT0.ckpt "block_size (max sequence length) = 0"
resume_bad vocab_above_padded.ckpt "vocab_size = 300"
resume_bad step_neg.ckpt "step = -5"
resume_bad batches_huge.ckpt "loader batches drawn = 18446744073709551614"
resume_bad scale_nan.ckpt "loss scale = nan"
resume_bad dup.ckpt "section PARM appears twice"
resume_bad nan.ckpt "tensor qkvw element 5 of the parameters is NaN"
resume_bad step100.ckpt "is at step 100, beyond [train] max_steps = 2"
# a valid crafted file resumes (the generator writes what vkt_checkpoint_save writes), and so
# does the largest loader position a checkpoint may hold: no hang in the loader
for f in good.ckpt batches_max.ckpt; do
    rm -rf "$T/r" && mkdir "$T/r" && cp "$C/$f" "$T/r/checkpoint.bin"
    texpect 0 "done at step 4" --resume --set train.max_steps=4 --set train.out_dir="$T/r" "$T/good.ini"
done
# init_from, eval and sample refuse the same files
for f in heads0.ckpt maxT0.ckpt vocab_above_padded.ckpt padded.ckpt; do
    texpect 2 "$C/$f: section SHPE" --set model.init_from="$C/$f" "$T/good.ini"
    texpect 2 "$C/$f: section SHPE" eval --checkpoint "$C/$f" --data "$T/text.txt" --device cpu:0
    texpect 2 "$C/$f: section SHPE" sample --checkpoint "$C/$f" --device cpu:0
done
# non-finite weights: a checkpoint, an llm.c file (fp32) and a bf16 one
for f in nan.ckpt nan.llmc inf_bf16.llmc; do
    case $f in
        nan.ckpt) msg="tensor qkvw element 5 of the parameters is NaN" ;;
        nan.llmc) msg="tensor fcw element 11 of the parameters is NaN" ;;
        *) msg="tensor attprojw element 2 of the parameters is +inf" ;;
    esac
    texpect 2 "$C/$f: $msg" --set model.init_from="$C/$f" "$T/good.ini"
    texpect 2 "$C/$f: $msg" eval --checkpoint "$C/$f" --data "$T/text.txt" --device cpu:0
    texpect 2 "$C/$f: $msg" sample --checkpoint "$C/$f" --device cpu:0
done
texpect 0 "shape from the llm.c model" --set model.init_from="$C/good.llmc" --set train.out_dir="$T/ft" "$T/good.ini"

# ---- an empty prompt --------------------------------------------------------------------------
# GPT-2's vocabulary starts from <|endoftext|>: two greedy runs give the same tokens
cases=$((cases + 1))
a=$(timeout -k 5 20 "$BIN" sample --checkpoint "$C/gpt2vocab.llmc" --prompt '' --temperature 0 --tokens 8 --device cpu:0 2>&1)
ra=$?
b=$(timeout -k 5 20 "$BIN" sample --checkpoint "$C/gpt2vocab.llmc" --prompt '' --temperature 0 --tokens 8 --device cpu:0 2>&1)
rb=$?
if [ "$ra" -ne 0 ] || [ "$rb" -ne 0 ] || [ "$a" != "$b" ] || [ -z "$a" ]; then
    fail "sample --prompt '' (GPT-2 vocab): exit $ra/$rb, outputs '$a' / '$b'"
fi
# the byte tokenizer has no end-of-text token: refused, with a hint
texpect 2 "--prompt '' is empty and the tokenizer byte has no end-of-text token" sample --checkpoint "$T/out" --prompt '' --device cpu:0
texpect 0 "" sample --checkpoint "$T/out" --prompt 'x' --tokens 4 --device cpu:0

# ---- eval's error paths: each one says what is wrong ------------------------------------------
texpect 2 "--seq-len 100: the model $T/out has 16 positions" eval --checkpoint "$T/out" --seq-len 100 --device cpu:0
texpect 2 "device '77' does not exist" eval --checkpoint "$T/out" --device 77
texpect 2 "$T/nope: cannot open" eval --checkpoint "$T/nope" --device cpu:0
texpect 2 "names no data" eval --checkpoint "$C/good.llmc" --device cpu:0
texpect 2 "this model has none" eval --checkpoint "$C/good.llmc" --data "$T/text.txt" --device cpu:0
texpect 2 "$T/nope.txt: cannot open" eval --checkpoint "$T/out" --data "$T/nope.txt" --device cpu:0
printf 'ab' > "$T/short.txt"
texpect 2 "hold no sequence" eval --checkpoint "$T/out" --data "$T/short.txt" --device cpu:0
texpect 2 "tokenizer" eval --checkpoint "$T/out" --tokenizer "$T/text.txt" --data "$T/text.txt" --device cpu:0

# ---- a signal before training begins ends the process at once ---------------------------------
# (the first SIGTERM used to set the stop flag only the training loop reads: it was swallowed
# while data was being prepared, or while open() waited on a FIFO)
head -c 64000000 /dev/zero | tr '\0' 'a' > "$T/big.txt"
cases=$((cases + 1))
"$BIN" --set data.train="$T/big.txt" --set train.out_dir="$T/sig" "$T/good.ini" > "$T/sig.log" 2>&1 &
pid=$!
i=0
while ! grep -q "tokenizing" "$T/sig.log" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
kill -TERM $pid
i=0
while kill -0 $pid 2>/dev/null && [ $i -lt 40 ]; do sleep 0.05; i=$((i + 1)); done
if kill -0 $pid 2>/dev/null; then
    fail "SIGTERM while preparing data: still running 2 s later"
    kill -KILL $pid
fi
wait $pid
got=$?
if [ "$got" -ne 143 ] || ! grep -q "interrupted before training began" "$T/sig.log"; then
    fail "SIGTERM before training: exit $got, want 143 and a message"; tail -2 "$T/sig.log"
fi
[ -e "$T/sig/checkpoint.bin" ] && fail "SIGTERM before training wrote a checkpoint"
rm -f "$T/big.txt"

echo "cli_hostile: $((cases - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
