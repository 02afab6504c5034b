#!/bin/sh
# The GPU check, on the device machine (prepared by tools/gpu-bundle.sh here; see there how it
# is started): the device list, every op of vulkan:0 against the cpu reference (every matmul
# tier that runs there, coopmat and coopmat2 included), then the GEMM throughput of the fp32,
# fp16, coopmat and coopmat2 tiers beside PyTorch's (cuBLAS) on the same shapes, fp32 and
# fp16, in this one run, and the ratio table (bench/gemm_ratios.py); then training tokens/s on
# bench-ref and GPT-2-124M against PyTorch eager with vktrain's per-op profile
# (bench/bench_gpu.py). Everything is written to
# $OUT (the device tool brings it back). VKT_GPU_CHECK_QUICK=1: the small shapes only (a dry
# run of the script on lavapipe).
set -u
OUT="${OUT:-/tmp/vkt-gpu-check}"
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
start=$(date +%s)
log() { echo "gpu-check [$(( $(date +%s) - start )) s]: $*"; }
# the Vulkan loader, where the image lacks it (the device tool's README)
if [ -d .gl ] && ! ldconfig -p 2>/dev/null | grep -q libvulkan.so.1; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
export LD_LIBRARY_PATH="$PWD/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
BIN=.gpu/bin
"$BIN/vktrain" --list-devices > "$OUT/devices.txt" 2>&1
if ! grep -q ' vulkan:0 ' "$OUT/devices.txt" && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    "$BIN/vktrain" --list-devices > "$OUT/devices.txt" 2>&1
fi
cat "$OUT/devices.txt"
grep -q ' vulkan:0 ' "$OUT/devices.txt" || { log "no Vulkan device"; exit 1; }
log "ops against the reference (test_backend_ops, vulkan:0)"
VKT_TEST_DEVICES=vulkan:0 "$BIN/test_backend_ops" > "$OUT/ops.txt" 2>&1
echo "test_backend_ops: exit $? ($(grep -c 'worst' "$OUT/ops.txt") comparisons; $(grep -c FAIL "$OUT/ops.txt") FAIL lines)"
quick=""
[ "${VKT_GPU_CHECK_QUICK:-0}" = 1 ] && quick=--quick && export VKT_BENCH_QUICK=1
log "bench_matmul vulkan:0"
"$BIN/bench_matmul" vulkan:0 fp32 fp16 coopmat coopmat2 > "$OUT/bench_vulkan.txt" 2>&1
tail -n 8 "$OUT/bench_vulkan.txt"
if python3 -c 'import torch' 2>/dev/null; then
    dev=cpu
    python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' && dev=cuda
    for dt in fp16 fp32; do
        log "torch_matmul $dev $dt"
        PYTHONUNBUFFERED=1 python3 bench/torch_matmul.py --device "$dev" --dtype "$dt" $quick \
            > "$OUT/bench_torch_$dt.txt" 2>&1
    done
    python3 bench/gemm_ratios.py "$OUT/bench_vulkan.txt" "$OUT"/bench_torch_*.txt | tee "$OUT/ratios.txt"
else
    log "no PyTorch here: no ratios"
fi
log "training tokens/s: vktrain vulkan:0 against PyTorch eager (bench/bench_gpu.py)"
dev=cuda
python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null || dev=cpu
PYTHONUNBUFFERED=1 python3 bench/bench_gpu.py --vktrain "$BIN/vktrain" --device vulkan:0 \
    --torch-device "$dev" --steps 8 $quick --out "$OUT" 2>&1 | tee "$OUT/train_tokens.txt"
log "done"
