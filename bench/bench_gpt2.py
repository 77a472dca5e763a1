"""Benchmark of GPT-2 small (issue 9): does the spec-built GPT-2 cost what a hand-written one
costs, and how long does `archc validate specs/gpt2.yaml` take?

1. `archc validate specs/gpt2.yaml` as a user runs it: a fresh process each time (start-up,
   imports, parsing, expansion, analysis, the report), median wall seconds of ``--runs``.
2. Forward (eval, no_grad) at batch 8 × 256 tokens: ``archc.build("specs/gpt2.yaml")``
   (input overridden to 256 tokens; the position table stays 1024) against the reference
   module of tests/gpt2_reference.py holding the same weights. Timed alternately in one
   process (ours, theirs, theirs, ours, ...), the figure is the median of the per-pair
   ratios ours/theirs. The reference writes attention out (scores, mask, softmax), the
   spec-built module calls F.scaled_dot_product_attention (fused kernels where torch has
   them): the ratio says what the generated code costs against plain hand-written torch.

Usage::

    .venv/bin/python bench/bench_gpt2.py                     # ~2-4 min on 2 cores
    .venv/bin/python bench/bench_gpt2.py --reps 5 --runs 5 --threads 2 --json gpt2.json
    .venv/bin/python bench/bench_gpt2.py --device cuda       # the forward part on a GPU

This is a measurement, not a test: nothing fails when a figure is slow.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import archc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from gpt2_reference import GPT2, to_archc  # noqa: E402


def validate_seconds(runs: int) -> list[float]:
    """Wall seconds of `archc validate specs/gpt2.yaml`, each in a new process."""
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "archc", "validate", "specs/gpt2.yaml"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        out.append(time.perf_counter() - start)
    return out


def models(length: int, device: str):
    """(spec-built, reference) GPT-2 with the same weights, eval mode, on ``device``."""
    ours = archc.build(str(ROOT / "specs" / "gpt2.yaml"), overrides={"input": [length]}, seed=0).eval()
    torch.manual_seed(0)
    theirs = GPT2().eval()
    state = to_archc(theirs.state_dict())
    state["lm_head.weight"] = state["wte.weight"]  # the tied tensor, under both names
    ours.load_state_dict(state)
    return ours.to(device), theirs.to(device)


def seconds(model, x, device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.no_grad():
        model(x)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def forward_ratio(batch: int, length: int, reps: int, device: str) -> dict:
    ours, theirs = models(length, device)
    x = torch.randint(0, 50257, (batch, length), device=device)
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
    return {"ours_s": statistics.median(a), "reference_s": statistics.median(b),
            "ratio": statistics.median(ratios), "max_abs_diff": diff}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--runs", type=int, default=7, help="validate processes")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--length", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--skip-validate", action="store_true")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    figures = {"threads": args.threads, "device": args.device, "batch": args.batch, "length": args.length}
    if not args.skip_validate:
        runs = validate_seconds(args.runs)
        figures["validate_s"] = statistics.median(runs)
        print(f"archc validate specs/gpt2.yaml: median {figures['validate_s']:.3f} s "
              f"(runs {', '.join(f'{r:.3f}' for r in runs)})")
    fwd = forward_ratio(args.batch, args.length, args.reps, args.device)
    figures["forward"] = fwd
    print(f"forward batch {args.batch} × {args.length} tokens: archc {fwd['ours_s']:.3f} s, reference "
          f"{fwd['reference_s']:.3f} s, ratio {fwd['ratio']:.3f} (max |diff| {fwd['max_abs_diff']:.1e})")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
