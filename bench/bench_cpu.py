#!/usr/bin/python3
"""vktrain's cpu backend against PyTorch eager on the CPU, side by side in one run, on
configs/bench-ref.ini (GPT-2 shape: vocab 50257, 4 layers, 4 heads, width 256, 4 x 256 tokens
per step, about 100.5 GFLOP per step).

  /usr/bin/python3 bench/bench_cpu.py [--steps N] [--vktrain build/vktrain]

Each side is a child process of its own (so its peak RSS is its own, from wait4): vktrain
trains N steps (its per-step times from metrics.jsonl, its per-op breakdown from --profile);
PyTorch trains the same model shape (learned positions, pre-LayerNorm blocks, tanh GELU, tied
output layer, AdamW) for N steps on the same byte tokens. Steps 1-2 are warm-up; the median of
the rest is reported, as tokens/s and as a share of the CPU's fp32 peak (cores x clock x 32
FLOP/cycle, as --list-devices estimates it).

Debian's python3-torch links whatever libblas.so.3 the alternatives system points at: with
libopenblas0-pthread installed that is OpenBLAS (the fair anchor); the script prints which
BLAS torch's process mapped. Not a test: run it by hand.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "configs", "bench-ref.ini")
CORPUS = os.path.join(ROOT, "data", "tinyshakespeare.txt")
V, L, NH, C, T, B = 50257, 4, 4, 256, 256, 4


def step_flop():
    """6 x parameters x tokens for the matmuls (embeddings excluded but the tied output layer
    included), plus attention's two T x T products (x3 for forward and backward)."""
    per_layer = 12 * C * C
    params_mm = L * per_layer + V * C
    attn = L * 2 * 2 * T * T * C * B * 3 / 2  # causal: half the matrix
    return 6 * params_mm * B * T + attn


def peak_flops():
    cores = os.cpu_count() or 1
    mhz = 2000.0
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("cpu MHz"):
                mhz = float(line.split(":")[1])
                break
    return cores * mhz * 1e6 * 32


def run_child(cmd, env=None):
    """Runs cmd; returns (exit status, stdout+stderr text, peak RSS in MiB)."""
    out = tempfile.TemporaryFile()
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    return p.returncode, out.read().decode(errors="replace"), usage.ru_maxrss / 1024.0


def bench_vktrain(binary, steps):
    d = tempfile.mkdtemp(prefix="vkt_bench_cpu_")
    cmd = [binary, "--device", "cpu:0", "--profile", "--set", f"train.max_steps={steps}",
           "--set", "optim.warmup_steps=1", "--set", f"train.out_dir={d}",
           "--set", "train.checkpoint_interval=0", CONFIG]
    rc, text, rss = run_child(cmd)
    if rc != 0:
        sys.exit(f"vktrain failed ({rc}):\n{text}")
    with open(os.path.join(d, "metrics.jsonl")) as f:
        ms = [json.loads(l)["step_ms"] for l in f if '"step_ms"' in l]
    profile = text[text.find("profile:"):] if "profile:" in text else ""
    return ms, rss, profile


def torch_child(steps):
    """The PyTorch side (run in its own process by main)."""
    import torch

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from torch_gpt import make_gpt

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(1337)

    data = torch.tensor(list(open(CORPUS, "rb").read()), dtype=torch.long)
    model = make_gpt(V, L, NH, C, T)
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, weight_decay=0.1)
    times = []
    for s in range(steps):
        i = torch.randint(0, len(data) - T - 1, (B,))
        x = torch.stack([data[j:j + T] for j in i])
        y = torch.stack([data[j + 1:j + T + 1] for j in i])
        t0 = time.perf_counter()
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append((time.perf_counter() - t0) * 1e3)
    blas = [l.split()[-1] for l in open("/proc/self/maps") if re.search(r"blas|lapack", l)]
    print(json.dumps({"step_ms": times, "blas": sorted(set(blas)),
                      "threads": torch.get_num_threads(), "torch": torch.__version__}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--vktrain", default=os.path.join(ROOT, "build", "vktrain"))
    ap.add_argument("--torch-child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.torch_child:
        torch_child(a.steps)
        return
    tokens, flop, peak = B * T, step_flop(), peak_flops()
    rows = []
    vk_ms, vk_rss, profile = bench_vktrain(a.vktrain, a.steps)
    rc, text, th_rss = run_child([sys.executable, os.path.abspath(__file__), "--torch-child",
                                  "--steps", str(a.steps)])
    if rc != 0:
        sys.exit(f"the PyTorch side failed ({rc}):\n{text}")
    th = json.loads(text.strip().splitlines()[-1])
    print(f"bench-ref: {B} x {T} tokens/step, {flop / 1e9:.1f} GFLOP/step, CPU fp32 peak "
          f"{peak / 1e9:.0f} GFLOP/s ({os.cpu_count()} cores); median of steps 3..{a.steps}")
    print(f"PyTorch {th['torch']}, {th['threads']} threads, BLAS: {', '.join(th['blas']) or '?'}")
    res = {}
    for name, ms, rss in (("vktrain cpu", vk_ms, vk_rss), ("PyTorch eager", th["step_ms"], th_rss)):
        med = statistics.median(ms[2:]) if len(ms) > 2 else statistics.median(ms)
        tps = tokens / (med / 1e3)
        res[name] = tps
        print(f"  {name:14s} {tps:8.1f} tokens/s  {med:8.1f} ms/step  "
              f"{flop / (med / 1e3) / peak * 100:5.1f}% of peak  peak RSS {rss:7.1f} MiB")
    print(f"  vktrain / PyTorch: {res['vktrain cpu'] / res['PyTorch eager']:.2f}x tokens/s")
    print("vktrain per-op breakdown (--profile, whole run):")
    print("\n".join("  " + l for l in profile.splitlines()))


if __name__ == "__main__":
    main()
