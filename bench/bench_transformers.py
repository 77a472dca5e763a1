"""Benchmark of the zoo's transformers (issue 9): does a spec-built ViT-B/16 or GPT-2 cost
what the same network written by hand in torch costs?

Forward (eval, no_grad) of the module ``archc.build`` makes against the reference holding
the same weights, timed alternately in one process (ours, theirs, theirs, ours, ...); the
figure is the median of the per-pair ratios ours / theirs.

* ``vit_b_16``: batch 8 × 3 × 224 × 224 against torchvision's vit_b_16, its weights loaded
  with ``archc.load_weights`` (every tensor offset at random first: torchvision's head
  starts at zeros). torchvision's nn.MultiheadAttention takes its fused inference path;
  the spec-built module calls F.scaled_dot_product_attention.
* ``gpt2``: batch 8 × 256 tokens against the hand-written GPT-2 of tests/gpt2_reference.py
  (attention written out: scores, mask, softmax).

With ``--torchinfo`` it also prints torchinfo's totals for torchvision's vit_b_16 beside
archc's (the figures, not the time: bench_validate.py times both tools).

Usage::

    .venv/bin/python bench/bench_transformers.py                   # ~3-5 min on 2 cores
    .venv/bin/python bench/bench_transformers.py --models gpt2 --reps 5 --json gpt2.json
    .venv/bin/python bench/bench_transformers.py --device cuda     # on a GPU

The `archc validate` side: ``bench/bench_validate.py --models vit_b_16,gpt2``.
This is a measurement, not a test: nothing fails when a figure is slow.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

import archc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def vit_b_16(device: str, batch: int, length: int):
    """(spec-built, torchvision) ViT-B/16 with the same random weights, and an input."""
    import torchvision

    torch.manual_seed(0)
    theirs = torchvision.models.vit_b_16(weights=None).eval()
    noise = torch.Generator().manual_seed(1)
    with torch.no_grad():  # the head starts at zeros: offset every tensor so the diff means something
        for p in theirs.parameters():
            p.add_(torch.randn(p.shape, generator=noise), alpha=0.02)
    ours = archc.build(str(ROOT / "specs" / "vit_b_16.yaml"), seed=0).eval()
    archc.load_weights(ours, theirs.state_dict())  # strict
    x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    return ours.to(device), theirs.to(device), x.to(device), "torchvision"


def gpt2(device: str, batch: int, length: int):
    """(spec-built, reference) GPT-2 small with the same weights, and token ids."""
    from gpt2_reference import GPT2, to_archc

    ours = archc.build(str(ROOT / "specs" / "gpt2.yaml"), overrides={"input": [length]}, seed=0).eval()
    torch.manual_seed(0)
    theirs = GPT2().eval()
    state = to_archc(theirs.state_dict())
    state["lm_head.weight"] = state["wte.weight"]  # the tied tensor, under both names
    ours.load_state_dict(state)
    x = torch.randint(0, 50257, (batch, length), generator=torch.Generator().manual_seed(0))
    return ours.to(device), theirs.to(device), x.to(device), "tests/gpt2_reference.py"


MODELS = {"vit_b_16": vit_b_16, "gpt2": gpt2}


def seconds(model, x, device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.no_grad():
        model(x)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def forward_ratio(name: str, batch: int, length: int, reps: int, device: str) -> dict:
    ours, theirs, x, reference = MODELS[name](device, batch, length)
    with torch.no_grad():
        diff = float((ours(x) - theirs(x)).abs().max())
    for _ in range(2):  # warm-up
        seconds(ours, x, device), seconds(theirs, x, device)
    a, b = [], []
    for i in range(reps):
        pair = [(a, ours), (b, theirs)] if i % 2 == 0 else [(b, theirs), (a, ours)]
        for times, model in pair:
            times.append(seconds(model, x, device))
    ratios = [x / y for x, y in zip(a, b)]
    return {"model": name, "input": list(x.shape), "reference": reference,
            "ours_s": statistics.median(a), "reference_s": statistics.median(b),
            "ratio": statistics.median(ratios), "ratio_range": [min(ratios), max(ratios)], "max_abs_diff": diff}


def torchinfo_totals() -> str:
    import torchinfo
    import torchvision

    s = torchinfo.summary(torchvision.models.vit_b_16(weights=None), input_size=(1, 3, 224, 224), verbose=0)
    ours = archc.load(str(ROOT / "specs" / "vit_b_16.yaml")).summary
    return (f"vit_b_16 parameters: archc {ours.total_params:,}, torchinfo {s.total_params:,}; "
            f"MACs: archc {ours.macs:,}, torchinfo mult-adds {s.total_mult_adds:,}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="vit_b_16,gpt2", help="any of " + ",".join(MODELS))
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--length", type=int, default=256, help="GPT-2's tokens per sequence")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--torchinfo", action="store_true", help="print torchinfo's ViT totals beside archc's")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.torchinfo:
        print(torchinfo_totals())
    figures = []
    for name in args.models.split(","):
        f = forward_ratio(name, args.batch, args.length, args.reps, args.device)
        figures.append(f)
        print(f"{name} forward {f['input']} on {args.device} ({args.threads} threads): archc {f['ours_s']:.3f} s, "
              f"{f['reference']} {f['reference_s']:.3f} s, ratio {f['ratio']:.3f} "
              f"({f['ratio_range'][0]:.3f}–{f['ratio_range'][1]:.3f}) "
              f"(max |diff| {f['max_abs_diff']:.1e})", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
