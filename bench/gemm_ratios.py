#!/usr/bin/python3
"""The ratio table of a GPU check (tools/gpu-check.sh): each vktrain tier's GFLOP/s over
PyTorch's on the same shape, from bench_matmul's and torch_matmul.py's outputs.

  python3 bench/gemm_ratios.py BENCH_MATMUL.txt TORCH_fp16.txt [TORCH_fp32.txt]

fp32 tiers are compared with torch fp32 (TF32 off), the fp16 ones (fp16, coopmat, coopmat2)
with torch fp16; per tier the median ratio over the shapes. Lines it does not know are skipped.
"""
import re
import statistics
import sys

LINE = re.compile(r"^(\S+)\s+(\S+)\s+(.+?)\s+([0-9.]+) GFLOP/s$")


def read(path):
    out = {}
    with open(path) as f:
        for line in f:
            m = LINE.match(line.strip())
            if m and "summary" not in line:
                out.setdefault(m.group(2), {})[m.group(3).strip()] = float(m.group(4))
    return out


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    ours = read(sys.argv[1])
    torch = {}
    for path in sys.argv[2:]:
        torch.update(read(path))  # keyed by dtype: fp16, fp32
    for tier, shapes in ours.items():
        ref = torch.get("fp32" if tier.startswith("fp32") else "fp16")
        if not ref:
            continue
        ratios = []
        print(f"{tier} / torch {'fp32' if tier.startswith('fp32') else 'fp16'}:")
        for shape, g in shapes.items():
            if shape in ref and ref[shape] > 0:
                ratios.append(g / ref[shape])
                print(f"  {shape:34s} {g:10.1f} / {ref[shape]:10.1f} GFLOP/s = {g / ref[shape]:.2f}")
        if ratios:
            print(f"  median {statistics.median(ratios):.2f} over {len(ratios)} shapes")


if __name__ == "__main__":
    main()
