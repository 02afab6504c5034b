#!/usr/bin/python3
"""vktrain on a GPU against PyTorch eager on the same GPU, side by side in one run: training
tokens/s of the same model on configs/bench-ref.ini and configs/gpt2-124m.ini (their shapes
and batches read from the files), in fp32 and in mixed precision (vktrain precision = fp16
against PyTorch's fp16 autocast), with vktrain's per-op profile and the share of its step
spent in GEMMs (the matmul_* shaders).

  python3 bench/bench_gpu.py [--vktrain build/vktrain] [--device vulkan:0] [--steps N]
                             [--configs configs/bench-ref.ini,configs/gpt2-124m.ini]
                             [--precisions fp32,fp16] [--torch-device cuda] [--out DIR]

Each side runs in a child process of its own. vktrain trains N steps (per-step times from
metrics.jsonl; one more run of 3 steps with --profile gives the per-op table, so profiling's
serialization does not slow the timed run); PyTorch trains the same shape (bench/torch_gpt.py,
with AdamW) for N steps on the same byte tokens, timed with CUDA synchronization. Steps 1-2
are warm-up; the median of the rest is reported. Where PyTorch or its device is missing the
vktrain side still runs. tools/gpu-check.sh runs it on the lent GPU; `--quick` (configs/tiny.ini,
3 steps) is the dry run on a CPU driver. Not a test: run it by hand.
"""
import argparse
import configparser
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "data", "tinyshakespeare.txt")


def shape_of(config):
    """The model and batch of a config: V, L, NH, C, T, B, accumulation."""
    p = configparser.ConfigParser(inline_comment_prefixes=(";", "#"))
    p.read(config)
    m, t = p["model"], p["train"]
    return dict(V=int(m["vocab_size"]), L=int(m["n_layer"]), NH=int(m["n_head"]),
                C=int(m["n_embd"]), T=int(t["seq_len"]), B=int(t["batch_size"]),
                accum=int(t.get("grad_accum_steps", "1")))


def step_flop(s):
    """6 x matmul parameters x tokens (the tied output layer included) plus attention's two
    T x T products, causal (half), forward and backward (x3)."""
    params_mm = s["L"] * 12 * s["C"] * s["C"] + s["V"] * s["C"]
    tokens = s["B"] * s["T"] * s["accum"]
    attn = s["L"] * 2 * 2 * s["T"] * s["T"] * s["C"] * s["B"] * s["accum"] * 3 / 2
    return 6 * params_mm * tokens + attn


def run_child(cmd, env=None):
    out = tempfile.TemporaryFile()
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    p.wait()
    out.seek(0)
    return p.returncode, out.read().decode(errors="replace")


def vktrain_run(binary, device, config, precision, steps, profile):
    d = tempfile.mkdtemp(prefix="vkt_bench_gpu_")
    cmd = [binary, "--device", device, "--set", f"train.max_steps={steps}",
           "--set", "optim.warmup_steps=1", "--set", f"train.out_dir={d}",
           "--set", "train.checkpoint_interval=0", "--set", f"train.eval_interval={steps + 1}",
           "--set", f"train.precision={precision}", config]
    if profile:
        cmd.insert(1, "--profile")
    rc, text = run_child(cmd)
    if rc != 0:
        return None, text
    with open(os.path.join(d, "metrics.jsonl")) as f:
        ms = [json.loads(l)["step_ms"] for l in f if '"step_ms"' in l]
    return ms, text


def gemm_share(profile):
    """The share of the profiled time in matmul_* shaders, from --profile's table."""
    total = gemm = 0.0
    for line in profile.splitlines():
        f = line.split()
        if len(f) >= 3 and re.match(r"^[0-9.]+$", f[2]):
            if f[0] == "total":
                total = float(f[2])
            elif f[0].startswith("matmul_"):
                gemm += float(f[2])
    return gemm / total if total else float("nan")


def torch_child(a):
    import torch

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from torch_gpt import make_gpt

    s = shape_of(a.config)
    V, L, NH, C, T, B = s["V"], s["L"], s["NH"], s["C"], s["T"], s["B"]
    dev = torch.device(a.torch_device)
    torch.manual_seed(1337)

    data = torch.tensor(list(open(CORPUS, "rb").read()), dtype=torch.long)
    model = make_gpt(V, L, NH, C, T).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, weight_decay=0.1)
    fp16 = a.precision == "fp16"
    scaler = torch.cuda.amp.GradScaler(enabled=fp16 and dev.type == "cuda")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        for _ in range(s["accum"]):
            i = torch.randint(0, len(data) - T - 1, (B,))
            x = torch.stack([data[j:j + T] for j in i]).to(dev)
            y = torch.stack([data[j + 1:j + T + 1] for j in i]).to(dev)
            with torch.autocast(dev.type, dtype=torch.float16, enabled=fp16):
                loss = model(x, y) / s["accum"]
            scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(opt)
        scaler.update()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(json.dumps({"step_ms": times, "torch": torch.__version__, "device": name}))


def median_rest(ms):
    return statistics.median(ms[2:]) if len(ms) > 2 else statistics.median(ms)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vktrain", default=os.path.join(ROOT, "build", "vktrain"))
    ap.add_argument("--device", default="vulkan:0")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--configs", default="configs/bench-ref.ini,configs/gpt2-124m.ini")
    ap.add_argument("--precisions", default="fp32,fp16")
    ap.add_argument("--torch-device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="configs/tiny.ini, 3 steps (a dry run)")
    ap.add_argument("--out", default=None, help="also write each run's output here")
    ap.add_argument("--torch-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--config", help=argparse.SUPPRESS)
    ap.add_argument("--precision", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.torch_child:
        torch_child(a)
        return
    if a.quick:
        a.configs, a.steps = "configs/tiny.ini", 3
    have_torch = run_child([sys.executable, "-c", "import torch"])[0] == 0
    print(f"vktrain {a.device} against PyTorch eager ({a.torch_device}); median of steps "
          f"3..{a.steps}" + ("" if have_torch else "; no PyTorch here: vktrain only"))
    for config in a.configs.split(","):
        config = os.path.join(ROOT, config) if not os.path.isabs(config) else config
        s = shape_of(config)
        tokens, flop = s["B"] * s["T"] * s["accum"], step_flop(s)
        name = os.path.basename(config)
        print(f"{name}: {s['L']} layers, width {s['C']}, {s['NH']} heads, vocab {s['V']}, "
              f"{s['B']} x {s['T']} x {s['accum']} tokens/step, {flop / 1e9:.1f} GFLOP/step")
        for prec in a.precisions.split(","):
            res = {}
            ms, text = vktrain_run(a.vktrain, a.device, config, prec, a.steps, False)
            if a.out:
                open(os.path.join(a.out, f"vktrain_{name}_{prec}.txt"), "w").write(text)
            if ms is None:
                print(f"  {prec}: vktrain failed:\n" + text[-2000:])
            else:
                res["vktrain"] = median_rest(ms)
            if have_torch:
                rc, text = run_child([sys.executable, os.path.abspath(__file__), "--torch-child",
                                      "--steps", str(a.steps), "--config", config,
                                      "--precision", prec, "--torch-device", a.torch_device])
                if rc == 0:
                    th = json.loads(text.strip().splitlines()[-1])
                    res[f"PyTorch {th['torch']} ({th['device']})"] = median_rest(th["step_ms"])
                else:
                    print(f"  {prec}: the PyTorch side failed:\n" + text[-2000:])
            for who, med in res.items():
                print(f"  {prec:5s} {who:40s} {tokens / (med / 1e3):10.0f} tokens/s "
                      f"{med:9.1f} ms/step {flop / (med / 1e3) / 1e12:7.2f} TFLOP/s")
            if len(res) == 2:
                v, t = list(res.values())
                print(f"  {prec:5s} vktrain / PyTorch eager: {t / v:.2f}x tokens/s")
            _, prof = vktrain_run(a.vktrain, a.device, config, prec, 3, True)
            prof = prof[prof.find("profile:"):] if "profile:" in prof else ""
            if prof:
                print(f"  {prec:5s} vktrain GEMM share of the profiled steps: "
                      f"{gemm_share(prof) * 100:.0f}%")
                print("\n".join("    " + l for l in prof.splitlines()[:30]))


if __name__ == "__main__":
    main()
