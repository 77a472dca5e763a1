"""Benchmark of ViT-B/16: how long does `archc validate specs/vit_b_16.yaml` take next to
torchinfo's summary of torchvision's vit_b_16, and does the spec-built ViT cost what
torchvision's costs?

1. `archc validate specs/vit_b_16.yaml` as a user runs it: a fresh process each time
   (start-up, imports, parsing, expansion, analysis, the report), median wall seconds of
   ``--runs``. Beside it, the same for torchinfo's ``summary`` of torchvision's vit_b_16
   (a fresh process: import torch and torchvision, build the model, one traced forward at
   batch 1) — the usual way to get the same table from torch. Skipped, and said so, when
   torchinfo is not installed. torchinfo's own totals are printed with archc's.
2. Forward (eval, no_grad) at batch 8 × 3 × 224 × 224: ``archc.build("specs/vit_b_16.yaml")``
   holding torchvision's weights (``archc.load_weights``) against torchvision's vit_b_16.
   Timed alternately in one process (ours, theirs, theirs, ours, ...), the figure is the
   median of the per-pair ratios ours/theirs. torchvision's nn.MultiheadAttention takes
   its fused inference fast path; the spec-built module calls F.scaled_dot_product_attention.

Usage::

    .venv/bin/python bench/bench_vit.py                      # ~3-5 min on 2 cores
    .venv/bin/python bench/bench_vit.py --reps 3 --runs 3 --threads 2 --json vit.json
    .venv/bin/python bench/bench_vit.py --device cuda        # the forward part on a GPU

This is a measurement, not a test: nothing fails when a figure is slow.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import archc

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "vit_b_16.yaml"
# torchvision's bare parameters, which archc's ops hold as `weight` (the rest pairs by
# name or by order and shape; tests/backends/test_torchvision_transformers.py pins it)
MAPPING = {"class_token.weight": "class_token", "encoder.pos_embedding.weight": "encoder.pos_embedding"}
# One torchinfo summary in a fresh process; prints its totals as JSON on the last line.
TORCHINFO = """
import json, torchinfo, torchvision
s = torchinfo.summary(torchvision.models.vit_b_16(weights=None), input_size=(1, 3, 224, 224), verbose=0)
print(json.dumps({"params": s.total_params, "mult_adds": s.total_mult_adds}))
"""


def wall(command: list[str], runs: int) -> tuple[list[float], str]:
    """Wall seconds of ``command`` run ``runs`` times, each in a new process; its last output."""
    out, text = [], ""
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
        out.append(time.perf_counter() - start)
        text = done.stdout
    return out, text


def summaries(runs: int) -> dict:
    ours, _ = wall([sys.executable, "-m", "archc", "validate", str(SPEC)], runs)
    summary = archc.load(str(SPEC)).summary
    figures = {"validate_s": statistics.median(ours), "validate_runs": ours,
               "archc_params": summary.total_params, "archc_macs": summary.macs}
    if importlib.util.find_spec("torchinfo") is None:
        figures["torchinfo"] = "not installed"
        return figures
    theirs, text = wall([sys.executable, "-c", TORCHINFO], runs)
    figures |= {"torchinfo_s": statistics.median(theirs), "torchinfo_runs": theirs,
                "torchinfo": json.loads(text.strip().splitlines()[-1])}
    return figures


def models(device: str):
    """(spec-built, torchvision) ViT-B/16 with the same (random) weights, eval mode, on ``device``."""
    import torchvision

    torch.manual_seed(0)
    theirs = torchvision.models.vit_b_16(weights=None).eval()
    noise = torch.Generator().manual_seed(1)
    with torch.no_grad():  # the head starts at zeros: offset every tensor so the diff means something
        for p in theirs.parameters():
            p.add_(torch.randn(p.shape, generator=noise), alpha=0.02)
    ours = archc.build(str(SPEC), seed=0).eval()
    archc.load_weights(ours, theirs.state_dict(), mapping=MAPPING)  # strict
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


def forward_ratio(batch: int, reps: int, device: str) -> dict:
    ours, theirs = models(device)
    x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(device)
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
    return {"ours_s": statistics.median(a), "torchvision_s": statistics.median(b),
            "ratio": statistics.median(ratios), "max_abs_diff": diff}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--runs", type=int, default=7, help="validate / torchinfo processes")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--skip-validate", action="store_true")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    figures = {"threads": args.threads, "device": args.device, "batch": args.batch}
    if not args.skip_validate:
        s = summaries(args.runs)
        figures["summary"] = s
        print(f"archc validate specs/vit_b_16.yaml: median {s['validate_s']:.3f} s "
              f"(runs {', '.join(f'{r:.3f}' for r in s['validate_runs'])}); "
              f"{s['archc_params']:,} parameters, {s['archc_macs']:,} MACs")
        if "torchinfo_s" in s:
            t = s["torchinfo"]
            print(f"torchinfo.summary(torchvision vit_b_16): median {s['torchinfo_s']:.3f} s "
                  f"(runs {', '.join(f'{r:.3f}' for r in s['torchinfo_runs'])}); "
                  f"{t['params']:,} parameters, {t['mult_adds']:,} mult-adds")
        else:
            print("torchinfo is not installed: no side-by-side summary (pip install torchinfo)")
    fwd = forward_ratio(args.batch, args.reps, args.device)
    figures["forward"] = fwd
    print(f"forward batch {args.batch} × 3 × 224 × 224: archc {fwd['ours_s']:.3f} s, torchvision "
          f"{fwd['torchvision_s']:.3f} s, ratio {fwd['ratio']:.3f} (max |diff| {fwd['max_abs_diff']:.1e})")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
