#!/usr/bin/python3
"""Writes the PyTorch-parity fixture for tests/test_torch_parity.c.

What it writes: a tiny GPT-2 (llm.c's train_gpt2.c / train_gpt2.py model, written out
explicitly in torch and computed in float64, stored as float32) with its initial parameters,
one random batch, the forward logits, the initial loss, the gradient of that loss with respect
to every parameter, and the losses of 10 AdamW steps on that same batch.

Rerun (needs torch and numpy; on Debian the system interpreter has both):

    /usr/bin/python3 tests/make_torch_fixture.py tests/data/gpt2_tiny.bin

The output is deterministic (torch.manual_seed / a seeded torch.Generator), so rerunning it
reproduces the committed file on the same torch version (and near-bit-identical otherwise).

Model: V=65 (vocab), Vp=128 (padded vocab, a multiple of 64), maxT=16 (rows of wpe), L=2
layers, NH=2 heads, C=32 channels; batch B=2, T=8 (T < maxT on purpose, so only wpe[:T] is
used). Parameters are llm.c's 16 tensors in llm.c's order, concatenated flat:

    wte(Vp,C) wpe(maxT,C) ln1w(L,C) ln1b(L,C) qkvw(L,3C,C) qkvb(L,3C) attprojw(L,C,C)
    attprojb(L,C) ln2w(L,C) ln2b(L,C) fcw(L,4C,C) fcb(L,4C) fcprojw(L,C,4C) fcprojb(L,C)
    lnfw(C) lnfb(C)

Initialisation: matrices N(0, 0.02) (attprojw, fcprojw: N(0, 0.02/sqrt(2L))); wte rows
V..Vp-1 are zero; biases N(0, 0.02) (non-zero so that bias gradients are exercised); LayerNorm
weights 1 + N(0, 0.1), LayerNorm biases N(0, 0.02). LayerNorm eps 1e-5, GELU tanh
approximation, logits = lnf_out @ wte.T over all Vp columns, loss = mean cross-entropy over
the B*T positions using only the first V logit columns (padded columns are masked out).
Inputs and targets are independent random tokens in [0, V) (targets are not shifted inputs).

Training: 10 steps of torch.optim.AdamW on the same batch, lr=1e-3, betas=(0.9, 0.95),
eps=1e-8, weight_decay=0.1 for the matrices (wte wpe qkvw attprojw fcw fcprojw) and 0 for
biases and LayerNorm parameters; constant LR, no clipping. losses[i] is the loss before step
i+1 (losses[0] = initial loss). torch's AdamW equals llm.c's form
p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p).

File format (little-endian):
    int32   header[16] = {20261129, 1, V, Vp, maxT, L, NH, C, B, T, nsteps, num_params,
                          0, 0, 0, 0}
    float32 params[num_params]      initial parameters
    int32   inputs[B*T]
    int32   targets[B*T]
    float32 logits[B*T*Vp]          all Vp columns (padded columns are 0: those wte rows are 0)
    float32 loss                    initial mean loss
    float32 grads[num_params]       d loss / d params, same layout (padded wte rows: 0)
    float32 losses[nsteps]
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

MAGIC = 20261129
VERSION = 1
V, Vp, maxT, L, NH, C = 65, 128, 16, 2, 2, 32
B, T = 2, 8
NSTEPS = 10
SEED = 1337
LR, BETAS, EPS, WD = 1e-3, (0.9, 0.95), 1e-8, 0.1

NAMES = ["wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
         "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb"]
SHAPES = [(Vp, C), (maxT, C), (L, C), (L, C), (L, 3 * C, C), (L, 3 * C), (L, C, C), (L, C),
          (L, C), (L, C), (L, 4 * C, C), (L, 4 * C), (L, C, 4 * C), (L, C), (C,), (C,)]
MATRICES = {"wte", "wpe", "qkvw", "attprojw", "fcw", "fcprojw"}  # weight-decayed
LN_WEIGHTS = {"ln1w", "ln2w", "lnfw"}


def init_params(gen):
    """The 16 tensors, drawn in float64 and rounded to float32 (what the file stores), then
    held as float64 leaves so the reference computation starts from exactly the stored values."""
    params = {}
    for name, shape in zip(NAMES, SHAPES):
        z = torch.randn(shape, generator=gen, dtype=torch.float64)
        if name in ("attprojw", "fcprojw"):
            p = z * (0.02 / math.sqrt(2 * L))
        elif name in LN_WEIGHTS:
            p = 1.0 + 0.1 * z
        else:  # other matrices, biases, LayerNorm biases
            p = 0.02 * z
        if name == "wte":
            p[V:] = 0.0
        p = p.to(torch.float32).to(torch.float64)
        params[name] = p.clone().requires_grad_(True)
    return params


def gpt2_forward(p, inputs, targets):
    """llm.c's GPT-2 forward; returns (logits (B,T,Vp), mean loss over the first V columns)."""
    Bb, Tt = inputs.shape
    hs = C // NH
    x = p["wte"][inputs] + p["wpe"][:Tt]  # (B,T,C)
    causal = torch.tril(torch.ones(Tt, Tt, dtype=torch.bool))
    for l in range(L):
        h = F.layer_norm(x, (C,), p["ln1w"][l], p["ln1b"][l], eps=1e-5)
        qkv = h @ p["qkvw"][l].T + p["qkvb"][l]  # (B,T,3C)
        q, k, v = qkv.split(C, dim=2)
        q = q.view(Bb, Tt, NH, hs).transpose(1, 2)  # (B,NH,T,hs)
        k = k.view(Bb, Tt, NH, hs).transpose(1, 2)
        v = v.view(Bb, Tt, NH, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
        att = att.masked_fill(~causal, float("-inf"))
        att = torch.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(Bb, Tt, C)
        x = x + (y @ p["attprojw"][l].T + p["attprojb"][l])
        h = F.layer_norm(x, (C,), p["ln2w"][l], p["ln2b"][l], eps=1e-5)
        f = F.gelu(h @ p["fcw"][l].T + p["fcb"][l], approximate="tanh")
        x = x + (f @ p["fcprojw"][l].T + p["fcprojb"][l])
    x = F.layer_norm(x, (C,), p["lnfw"], p["lnfb"], eps=1e-5)
    logits = x @ p["wte"].T  # (B,T,Vp)
    loss = F.cross_entropy(logits[..., :V].reshape(-1, V), targets.reshape(-1))
    return logits, loss


def flat(tensors):
    return torch.cat([t.detach().reshape(-1) for t in tensors]).to(torch.float32).numpy()


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: /usr/bin/python3 tests/make_torch_fixture.py OUT.bin")
    out_path = sys.argv[1]

    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    params = init_params(gen)
    inputs = torch.randint(0, V, (B, T), generator=gen, dtype=torch.int64)
    targets = torch.randint(0, V, (B, T), generator=gen, dtype=torch.int64)
    num_params = sum(params[n].numel() for n in NAMES)

    params0 = flat(params[n] for n in NAMES)

    logits, loss = gpt2_forward(params, inputs, targets)
    loss.backward()
    grads = flat(params[n].grad for n in NAMES)
    logits_np = logits.detach().to(torch.float32).numpy()
    loss0 = float(loss.item())
    assert np.all(logits_np[..., V:] == 0.0)
    assert np.all(grads[V * C:Vp * C] == 0.0)  # padded wte rows get zero grad

    opt = torch.optim.AdamW(
        [{"params": [params[n] for n in NAMES if n in MATRICES], "weight_decay": WD},
         {"params": [params[n] for n in NAMES if n not in MATRICES], "weight_decay": 0.0}],
        lr=LR, betas=BETAS, eps=EPS)
    losses = []
    for _ in range(NSTEPS):
        opt.zero_grad(set_to_none=False)
        _, l = gpt2_forward(params, inputs, targets)
        losses.append(l.item())
        l.backward()
        opt.step()
    assert losses[0] == loss0

    header = np.array([MAGIC, VERSION, V, Vp, maxT, L, NH, C, B, T, NSTEPS, num_params,
                       0, 0, 0, 0], dtype="<i4")
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "wb") as f:
        f.write(header.tobytes())
        f.write(params0.astype("<f4").tobytes())
        f.write(inputs.numpy().astype("<i4").tobytes())
        f.write(targets.numpy().astype("<i4").tobytes())
        f.write(logits_np.astype("<f4").tobytes())
        f.write(np.array([loss0], dtype="<f4").tobytes())
        f.write(grads.astype("<f4").tobytes())
        f.write(np.array(losses, dtype="<f4").tobytes())

    # Read the file back and check its size and contents.
    expect = 4 * (16 + num_params + 2 * B * T + B * T * Vp + 1 + num_params + NSTEPS)
    size = os.path.getsize(out_path)
    assert size == expect, f"{out_path}: {size} bytes, expected {expect}"
    raw = open(out_path, "rb").read()
    hdr = np.frombuffer(raw, dtype="<i4", count=16)
    assert hdr.tolist() == header.tolist()
    off = 64
    back = np.frombuffer(raw, dtype="<f4", count=num_params, offset=off)
    assert np.array_equal(back, params0)
    off += 4 * num_params + 8 * B * T + 4 * B * T * Vp
    assert np.frombuffer(raw, dtype="<f4", count=1, offset=off)[0] == np.float32(loss0)
    off += 4
    assert np.array_equal(np.frombuffer(raw, dtype="<f4", count=num_params, offset=off), grads)
    off += 4 * num_params
    assert np.array_equal(np.frombuffer(raw, dtype="<f4", count=NSTEPS, offset=off),
                          np.array(losses, dtype=np.float32))

    print(f"wrote {out_path}: {size} bytes")
    print(f"  V={V} Vp={Vp} maxT={maxT} L={L} NH={NH} C={C} B={B} T={T} nsteps={NSTEPS}")
    print(f"  num_params={num_params} logits={B * T * Vp} floats")
    print(f"  initial loss {loss0:.9f} (ln V = {math.log(V):.6f})")
    print("  losses " + " ".join(f"{x:.6f}" for x in losses))


if __name__ == "__main__":
    main()
