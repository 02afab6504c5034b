#!/bin/sh
# The real binary on bad input: each case must exit with the documented status and print a
# message naming what is wrong; config errors must leave nothing behind in out_dir.
# usage: cli_errors.sh VKTRAIN SOURCE_DIR
set -u
BIN=$1
SRC=$2
T=$(mktemp -d /tmp/vkt_cli_XXXXXX)
trap 'rm -rf "$T"' EXIT
export XDG_CACHE_HOME="$T/cache" # prepared data goes here, not into ~/.cache
. "$SRC/tests/cli_lib.sh"

# A good base config; each bad case is this file with one line changed.
tiny_config "$T/good.ini" "$SRC/data/tinyshakespeare.txt" "$T/out"
bad() { # bad NAME SED-EXPRESSION
    sed "$2" "$T/good.ini" > "$T/$1.ini"
}

expect 0 "vktrain" --version
expect 0 "usage:" --help
expect 0 "cpu:0" --list-devices
expect 0 "# parameters:" --print-config "$T/good.ini"
expect 2 "no config file" --device cpu:0
expect 2 "unknown option '--frobnicate'" --frobnicate "$T/good.ini"
expect 2 "not available in this version" bench
expect 2 "nope.ini" "$T/nope.ini"
# an unknown word is a command gone wrong, not a missing config file; X.ini still means a file
expect 2 "unknown command 'frobnicate'" frobnicate
expect 2 "commands: train, prepare, sample, eval, export" frobnicate
expect 2 "unknown command 'trian' (did you mean 'train'?" trian "$T/good.ini"
expect 2 "'sample' is a command: it must come first" --device cpu:0 sample
expect 2 "nope.ini: cannot read the file" nope.ini
# a control character in --set is refused naming the key, and never echoed raw
expect 2 "[train] out_dir: the value has a control character (\\n)" --set "train.out_dir=a
b" "$T/good.ini"
ESC=$(printf '\033')
expect 2 "[train] out_dir: the value has a control character (\\x1b)" --set "train.out_dir=a${ESC}[2Jb" "$T/good.ini"
cases=$((cases + 1))
if "$BIN" --set "train.out_dir=a${ESC}[2Jb" "$T/good.ini" 2>&1 | grep -q "$ESC"; then
    fail "an escape character in --set was echoed raw"
fi
# binary garbage as the config: named as such, no raw byte on the terminal
printf '\177ELF\002\001\001\000\000\033[2J' > "$T/elf.ini"
expect 2 "not a text INI file" "$T/elf.ini"
cases=$((cases + 1))
if "$BIN" "$T/elf.ini" 2>&1 | LC_ALL=C grep -q '[^[:print:][:space:]]'; then
    fail "binary config: raw bytes in the message"
fi
bad dup 's/^seq_len = 16/seq_len = 16\nbatch_size = 4/';     expect 2 "batch_size is set twice, on line 9 and on line 11" "$T/dup.ini"
bad unknown_key 's/^batch_size = 2/batchsize = 2/';         expect 2 "batchsize" "$T/unknown_key.ini"
bad unknown_section 's/^\[optim\]//; s/^\[backend\]/[trian]/'; expect 2 "trian" "$T/unknown_section.ini"
bad malformed 's/^batch_size = 2/batch_size = 2x/';         expect 2 "batch_size" "$T/malformed.ini"
bad zero_batch 's/^batch_size = 2/batch_size = 0/';         expect 2 "batch_size" "$T/zero_batch.ini"
bad divisible 's/^n_embd = 16/n_embd = 15/';                expect 2 "n_embd" "$T/divisible.ini"
bad long_seq 's/^seq_len = 16/seq_len = 17/';               expect 2 "seq_len" "$T/long_seq.ini"
bad no_data 's|^train = .*|train = /nonexistent/x.txt|';    expect 2 "/nonexistent/x.txt" "$T/no_data.ini"
bad syntax 's/^n_layer = 1/n_layer 1/';                     expect 2 "syntax.ini" "$T/syntax.ini"
expect 2 "lr" --set optim.lr=-1 "$T/good.ini"
expect 2 "schedule" --set optim.schedule=sawtooth "$T/good.ini"
expect 2 "train.batch_size" --set train.batch_size "$T/good.ini"
expect 2 "precision" --set train.precision=fp64 "$T/good.ini"
expect 2 "--list-devices" --device 99 "$T/good.ini"
expect 2 "unknown backend" --device warp:0 "$T/good.ini"
expect 2 "nothing to resume" --resume "$T/good.ini"
expect 1 "HINT: lower [train] batch_size" --set model.n_embd=65536 --set model.n_layer=64 "$T/good.ini"
: > "$T/empty.txt"
expect 2 "empty" --set data.train="$T/empty.txt" "$T/good.ini"
printf 'not a checkpoint' > "$T/fake.bin"
expect 2 "fake.bin" --set model.init_from="$T/fake.bin" "$T/good.ini"
printf 'ab' > "$T/short.txt"
expect 2 "hold no sequence" --set data.train="$T/short.txt" "$T/good.ini"

cases=$((cases + 1))
if [ -e "$T/out" ]; then
    echo "FAIL: a rejected run left $T/out behind"; fails=$((fails + 1))
fi

# finally a good run trains, writes its checkpoint, and resume of a finished run is a no-op
expect 0 "done at step 2" "$T/good.ini"
# a smoke run shorter than the warmup: accepted with a note (README's tiny.ini warms up 20 steps)
expect 0 "never finishes warming up" --set optim.warmup_steps=5 --set train.out_dir="$T/warm" \
    "$T/good.ini"
cases=$((cases + 1))
[ -s "$T/out/checkpoint.bin" ] || { echo "FAIL: no checkpoint written"; fails=$((fails + 1)); }
expect 0 "nothing left to do" --resume "$T/good.ini"
expect 2 "differs from the config" --set model.init_from="$T/out/checkpoint.bin" --set model.n_layer=2 "$T/good.ini"
# --profile: the op table on stderr after the run (host timing on cpu:0)
expect 0 "op                                calls     total ms    ms/step   share  workgroups min/median" --profile --device cpu:0 --set train.out_dir="$T/prof" "$T/good.ini"
expect 0 "matmul" --profile --device cpu:0 --set train.out_dir="$T/prof2" "$T/good.ini"

# Ctrl-C: the run stops after its step, saves a checkpoint, exits 130, and resumes from it
cases=$((cases + 1))
"$BIN" --set train.max_steps=1000000 --set train.out_dir="$T/int" "$T/good.ini" > "$T/int.log" 2>&1 &
pid=$!
i=0
while [ ! -s "$T/int/metrics.jsonl" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
kill -INT $pid
wait $pid
got=$?
if [ "$got" -ne 130 ] || ! grep -q "interrupted after step" "$T/int.log" || [ ! -s "$T/int/checkpoint.bin" ]; then
    echo "FAIL: SIGINT: exit $got, want 130 with a checkpoint"; tail -2 "$T/int.log"; fails=$((fails + 1))
fi
n=$(sed -n 's/.*interrupted after step \([0-9]*\).*/\1/p' "$T/int.log")
expect 0 "done at step $((n + 1))" --resume --set train.max_steps=1000000 --set train.stop_step=$((n + 1)) --set train.out_dir="$T/int" "$T/good.ini"

# Vulkan, where compiled in: a device is listed with its details and trains; a missing loader
# is a note, not an error. Machines without Vulkan skip these cases.
devices=$("$BIN" --list-devices 2>&1)
if printf '%s\n' "$devices" | grep -q '^[0-9][0-9]* *vulkan:0 '; then
    expect 0 "subgroup size" --list-devices
    expect 0 "done at step" --device vulkan:0 --set train.out_dir="$T/vk" "$T/good.ini"
    # a device without shaderFloat16 (simulated): precision = fp16 refused naming it
    export VKT_VULKAN_DISABLE_FP16=1
    expect 1 "shaderFloat16" --device vulkan:0 --set train.precision=fp16 \
        --set train.out_dir="$T/vk16" "$T/good.ini"
    unset VKT_VULKAN_DISABLE_FP16
    cases=$((cases + 1))
    if [ -e "$T/vk16" ]; then echo "FAIL: precision = fp16 left $T/vk16"; fails=$((fails + 1)); fi
    # matmul = coopmat where this binary has no coopmat shaders (VKT_COOPMAT_BUILT=0: built with
    # a glslang without GL_KHR_cooperative_matrix) or the device has no cooperative matrices:
    # refused naming what is missing, nothing written
    why=""
    if [ "${VKT_COOPMAT_BUILT:-1}" = 0 ]; then why="not built into this binary"
    elif printf '%s\n' "$devices" | grep -q 'cooperative matrix: none'; then why="cooperative matrix"
    fi
    if [ -n "$why" ]; then
        expect 1 "$why" --device vulkan:0 --set backend.matmul=coopmat \
            --set train.precision=fp16 --set train.out_dir="$T/vkcm" "$T/good.ini"
        cases=$((cases + 1))
        if [ -e "$T/vkcm" ]; then echo "FAIL: matmul = coopmat left $T/vkcm"; fails=$((fails + 1)); fi
    fi
fi
if printf '%s\n' "$devices" | grep -q 'vulkan'; then
    VKT_VULKAN_LOADER=/nonexistent/libvulkan.so.1
    export VKT_VULKAN_LOADER
    expect 0 "no Vulkan loader" --list-devices
    unset VKT_VULKAN_LOADER
fi
# OpenCL, where compiled in: a device is listed and trains; precision = fp16 without
# cl_khr_fp16 is refused naming it, before anything is written; a kernel build failure prints
# the build log and exits 1; a missing ICD loader or CLBlast is a note, not an error.
if printf '%s\n' "$devices" | grep -q '^[0-9][0-9]* *opencl:0 '; then
    expect 0 "compute units" --list-devices
    expect 0 "done at step" --device opencl:0 --set train.out_dir="$T/cl" "$T/good.ini"
    if printf '%s\n' "$devices" | grep -q 'cl_khr_fp16 no'; then
        expect 1 "cl_khr_fp16" --device opencl:0 --set train.precision=fp16 \
            --set train.out_dir="$T/cl16" "$T/good.ini"
        cases=$((cases + 1))
        if [ -e "$T/cl16" ]; then echo "FAIL: precision = fp16 left $T/cl16"; fails=$((fails + 1)); fi
    fi
    VKT_OPENCL_BUILD_OPTIONS=-DVKT_TEST_BUILD_FAILURE
    export VKT_OPENCL_BUILD_OPTIONS
    expect 1 "build log" --device opencl:0 --set train.out_dir="$T/clbuild" "$T/good.ini"
    expect 1 "VKT_TEST_BUILD_FAILURE" --device opencl:0 --set train.out_dir="$T/clbuild" "$T/good.ini"
    unset VKT_OPENCL_BUILD_OPTIONS
fi
if printf '%s\n' "$devices" | grep -q 'opencl'; then
    VKT_OPENCL_LOADER=/nonexistent/libOpenCL.so.1
    export VKT_OPENCL_LOADER
    expect 0 "no OpenCL ICD loader" --list-devices
    unset VKT_OPENCL_LOADER
    VKT_CLBLAST_LIBRARY=/nonexistent/libclblast.so.1
    export VKT_CLBLAST_LIBRARY
    expect 0 "no CLBlast library" --list-devices
    unset VKT_CLBLAST_LIBRARY
    # the ICD loader without any driver registered (ocl-icd's vendor directory emptied)
    OCL_ICD_VENDORS=/nonexistent
    export OCL_ICD_VENDORS
    expect 0 "no OpenCL platform" --list-devices
    unset OCL_ICD_VENDORS
fi
# the documented config reference is the one the binary knows
cases=$((cases + 1))
sed -n '/config-reference:begin/,/config-reference:end/p' "$SRC/configs/README.md" | sed '1d;$d' > "$T/ref_doc.md"
"$BIN" --config-reference > "$T/ref_bin.md"
if ! cmp -s "$T/ref_doc.md" "$T/ref_bin.md"; then
    echo "FAIL: configs/README.md's key table differs from vktrain --config-reference:"
    diff "$T/ref_doc.md" "$T/ref_bin.md" | head -5
    fails=$((fails + 1))
fi

echo "cli_errors: $((cases - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
