#!/bin/sh
# Regenerates the seed corpora fuzz/corpus/<target>/ from the project's own files and a built
# vktrain: the shipped configs, a prepare of a few KB of the sample text (shards, tokenizers,
# manifest), a two-step training run of a tiny model (checkpoint) and its llm.c export, plus a
# few hand-made edge cases. Each file stays well under 64 KiB.
#   fuzz/make_corpus.sh [BUILD_DIR]    (default build/; needs BUILD_DIR/vktrain)
set -eu
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$(cd "${1:-$ROOT/build}" && pwd)/vktrain"
[ -x "$BIN" ] || { echo "make_corpus: $BIN not found: build first" >&2; exit 2; }
C="$ROOT/fuzz/corpus"
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
export XDG_CACHE_HOME="$T/cache"
mkdir -p "$C/config" "$C/shard" "$C/tokenizer" "$C/checkpoint" "$C/llmc" "$C/prepared"

# ---- the text, prepared twice (byte and bpe) ----
head -c 3000 "$ROOT/data/tinyshakespeare.txt" > "$T/small.txt"
"$BIN" prepare --quiet --val-fraction 0.2 --out "$T/byte" "$T/small.txt"
"$BIN" prepare --quiet --tokenizer bpe --vocab-size 300 --val-fraction 0.2 --out "$T/bpe" \
    "$T/small.txt"

# ---- config: the shipped ones, and a few edge cases (after a NUL: --set lines) ----
for f in "$ROOT"/configs/*.ini; do cp "$f" "$C/config/$(basename "$f")"; done
printf '' > "$C/config/empty.ini"
printf '[data]\ntrain = ../data/tinyshakespeare.txt\n' > "$C/config/minimal.ini"
printf '[data]\ntrain = ../data/tinyshakespeare.txt\n\000train.out_dir="a b"\nmodel.n_head=2\noptim.schedule=wsd\n' \
    > "$C/config/overrides.ini"
printf '[model]\nn_embd = 130\nn_head = 4\n[data]\ntrain = "../data/tinyshakespeare.txt"\n' \
    > "$C/config/cross-check.ini"
printf '[train]\nprecision = fp16\nout_dir = "x;y"\n[backend]\nmatmul = coopmat\ndevice = cpu:0\n[data]\ntrain = ../data/*.txt\n' \
    > "$C/config/glob-quotes.ini"
printf '[model]\nn_layer = 2\nn_layer = 3\nbogus = 1\n[nosuch]\n' > "$C/config/duplicates.ini"

# ---- shard ----
cp "$T/byte/train_000000.bin" "$C/shard/train.bin"
cp "$T/bpe/val_000000.bin" "$C/shard/bpe-val.bin"
python3 - "$C/shard" <<'PY'
import struct, sys
d = sys.argv[1]
def shard(name, n, body, magic=20240520, version=1):
    h = struct.pack('<3i', magic, version, n) + bytes(1012)
    open(f'{d}/{name}', 'wb').write(h + body)
shard('header-only.bin', 0, b'')
shard('one-token.bin', 1, struct.pack('<H', 65535))
shard('count-too-big.bin', 5, struct.pack('<4H', 1, 2, 3, 4))
shard('negative-count.bin', -1, b'\0\0')
shard('version-2.bin', 2, b'\1\0\2\0', version=2)
shard('llmc-model-magic.bin', 2, b'\1\0\2\0', magic=20240326)
open(f'{d}/short.bin', 'wb').write(struct.pack('<3i', 20240520, 1, 1))
PY

# ---- tokenizer: ours (byte, bpe), llm.c's (hand-made, tiny) ----
cp "$T/byte/tokenizer.bin" "$C/tokenizer/byte.bin"
cp "$T/bpe/tokenizer.bin" "$C/tokenizer/bpe.bin"
python3 - "$C/tokenizer" <<'PY'
import struct, sys
d = sys.argv[1]
toks = [b'a', b'b', b'ab', b'', b'<|endoftext|>']
table = b''.join(bytes([len(t)]) + t for t in toks)
for v in (1, 2):
    h = struct.pack('<4I', 20240328, v, len(toks), len(toks) - 1) + bytes(1008)
    open(f'{d}/llmc-v{v}.bin', 'wb').write(h + table)
open(f'{d}/llmc-truncated.bin', 'wb').write(struct.pack('<4I', 20240328, 2, 3, 2) + bytes(1008) + b'\x05ab')
open(f'{d}/magic-only.bin', 'wb').write(b'VKTTOKEN')
PY

# ---- checkpoint: two steps of a tiny model, byte (no TOKN) and bpe (with TOKN) ----
cat > "$T/tiny.ini" <<INI
[model]
n_layer = 1
n_head = 2
n_embd = 8
vocab_size = 256
block_size = 8
[data]
train = $T/byte
[train]
batch_size = 2
seq_len = 8
max_steps = 2
eval_interval = 0
eval_batches = 1
out_dir = $T/run
[backend]
device = cpu:0
INI
"$BIN" "$T/tiny.ini" > /dev/null
cp "$T/run/checkpoint.bin" "$C/checkpoint/byte.bin"
"$BIN" --set data.train="$T/small.txt" --set model.vocab_size=300 --set data.tokenizer=bpe \
    --set train.out_dir="$T/run-bpe" "$T/tiny.ini" > /dev/null
cp "$T/run-bpe/checkpoint.bin" "$C/checkpoint/bpe.bin"
printf 'VKTCKPT\000\001\000\000\000\000\000\000\000' > "$C/checkpoint/no-sections.bin"

# ---- llm.c model file: the export of the tiny checkpoint ----
"$BIN" export --format llmc --checkpoint "$T/run" --out "$C/llmc/tiny.bin" > /dev/null
python3 - "$C/llmc" <<'PY'
import struct, sys
d = sys.argv[1]
# bf16 (version 5) of the smallest shape: maxT 1, V 1, L 1, NH 1, C 1, Vp 1
def layout(T, V, L, C):
    return V*C + T*C + L*(C + C + 3*C*C + 3*C + C*C + C + C + C + 4*C*C + 4*C + 4*C*C + C) + C + C
n = layout(1, 1, 1, 1)
h = struct.pack('<8i', 20240326, 5, 1, 1, 1, 1, 1, 1) + bytes(1024 - 32)
open(f'{d}/bf16-min.bin', 'wb').write(h + b'\x80\x3f' * n)
open(f'{d}/header-only.bin', 'wb').write(struct.pack('<8i', 20240326, 3, 8, 256, 1, 2, 8, 256) + bytes(992))
PY

# ---- prepared manifest ----
cp "$T/byte/manifest.ini" "$C/prepared/byte.ini"
cp "$T/bpe/manifest.ini" "$C/prepared/bpe.ini"
printf '[prepared]\nformat = 2\n' > "$C/prepared/format-2.ini"
printf '[prepared]\nformat = 1\ntokenizer = bpe\nvocab_size = 99999999999\ntokenizer_fingerprint = zz\ntrain_shards = -1\nval_shards = 0\ntrain_tokens = 18446744073709551616\nval_tokens = 1\n' \
    > "$C/prepared/bad-values.ini"

find "$C" -type f -size +64k -exec echo "make_corpus: warning: over 64 KiB:" {} \;
du -sh "$C"
