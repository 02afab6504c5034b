#!/usr/bin/python3
"""The GEMMs of build/bench_matmul through PyTorch (cuBLAS on a GPU, the BLAS torch links on a
CPU), for the ratio a tier reaches against the vendor library on the same device:

  python3 bench/torch_matmul.py [--device cuda|cpu] [--dtype fp32|fp16] [--quick]

Same shapes and method as bench_matmul.c (keep the lists in step): per shape a warm-up, then 5
timed batches of R matmuls (R sized to about 0.2 s at the first batch), the median batch gives
GFLOP/s = 2 M N K R / seconds. fp32 runs with TF32 off (exact fp32, like the fp32 tiers); fp16
multiplies fp16 operands with fp32 accumulation where cuBLAS allows it. --quick: tiny.ini's
shapes and 1024^3, as VKT_BENCH_QUICK=1.
"""
import argparse
import statistics
import time

import torch

# name, M, N, K, trans_a, trans_b: C(M,N) = op(A) op(B), row-major as in bench_matmul.c
SHAPES = [
    ("ref qkv fwd 1024x768x256", 1024, 768, 256, 0, 1),
    ("ref fc fwd 1024x1024x256", 1024, 1024, 256, 0, 1),
    ("ref fcproj fwd 1024x256x1024", 1024, 256, 1024, 0, 1),
    ("ref lm_head fwd 1024x50304x256", 1024, 50304, 256, 0, 1),
    ("ref lm_head dinp 1024x256x50304", 1024, 256, 50304, 0, 0),
    ("ref lm_head dW 50304x256x1024", 50304, 256, 1024, 1, 0),
    ("124M qkv fwd 8192x2304x768", 8192, 2304, 768, 0, 1),
    ("124M fc fwd 8192x3072x768", 8192, 3072, 768, 0, 1),
    ("124M fcproj dinp 8192x3072x768", 8192, 3072, 768, 0, 0),
    ("124M fc dW 3072x768x8192", 3072, 768, 8192, 1, 0),
    ("124M lm_head fwd 8192x50304x768", 8192, 50304, 768, 0, 1),
    ("square 4096", 4096, 4096, 4096, 0, 0),
]
QUICK = [
    ("tiny qkv fwd 1024x384x128", 1024, 384, 128, 0, 1),
    ("tiny fc fwd 1024x512x128", 1024, 512, 128, 0, 1),
    ("tiny fcproj dinp 1024x512x128", 1024, 512, 128, 0, 0),
    ("tiny fc dW 512x128x1024", 512, 128, 1024, 1, 0),
    ("tiny lm_head fwd 1024x256x128", 1024, 256, 128, 0, 1),
    ("square 1024", 1024, 1024, 1024, 0, 0),
]


def measure(dev, dtype, M, N, K, ta, tb):
    a = torch.full((K, M) if ta else (M, K), 0.01, device=dev, dtype=dtype)
    b = torch.full((N, K) if tb else (K, N), 0.02, device=dev, dtype=dtype)
    opa, opb = (a.t() if ta else a), (b.t() if tb else b)
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    reps, times = 1, []
    for batch in range(-1, 5):  # -1: warm-up and sizing
        sync()
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.matmul(opa, opb)
        sync()
        ms = (time.perf_counter() - t0) * 1e3
        if batch < 0:
            reps = max(1, min(1000, int(200.0 / ms))) if ms > 0 else 100
            continue
        times.append(ms)
    return 2.0 * M * N * K * reps / (statistics.median(times) * 1e-3) / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "fp16"])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    dtype = torch.float16 if a.dtype == "fp16" else torch.float32
    name = torch.cuda.get_device_name() if a.device == "cuda" else "cpu"
    results = []
    for label, M, N, K, ta, tb in QUICK if a.quick else SHAPES:
        g = measure(a.device, dtype, M, N, K, ta, tb)
        results.append(g)
        print(f"torch:{a.device} {a.dtype:4s} {label:34s} {g:10.1f} GFLOP/s", flush=True)
    print(f"torch:{a.device} {a.dtype} summary: mean {statistics.mean(results):.1f} GFLOP/s over "
          f"{len(results)} shapes, best {max(results):.1f} ({name}, torch {torch.__version__})")


if __name__ == "__main__":
    main()
