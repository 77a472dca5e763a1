"""Benchmark of the torch backend (issue 3): does a spec-built module cost what a
hand-written one costs, and how long does `archc.build` take?

1. ResNet-50, CPU, batch 8, 224×224: the module `archc.build("resnet50")` makes, given
   torchvision's weights through `archc.load_weights`, against torchvision's resnet50 —
   forward (eval, no_grad) and forward+backward (train mode, cross-entropy, zeroed grads).
2. LeNet-5, batch 1 (Python overhead dominates): the spec-built module against a
   hand-written one (the tutorial idiom: conv modules, torch.tanh, F.avg_pool2d), same
   weights; each sample times `--inner` calls in a row.
3. `archc.build("resnet50")` in a fresh process, `import torch` excluded: wall and CPU
   seconds; torchvision's `resnet50()` constructor in the same processes for scale.

Both sides of a comparison are timed alternately (ours, theirs, theirs, ours, ...) in one
process so they see the same machine load; the figure is the median of the per-pair
ratios ours/theirs. torch uses 2 threads (`torch.set_num_threads(2)`); warm-up runs first.
On a machine other processes share, `--clock cpu` times the CPU seconds of the process
instead of wall seconds (time waiting for a core is not counted; with 2 threads, OpenMP's
spinning is), and `--threads 1` avoids two threads waiting for each other.

Usage::

    .venv/bin/python bench/bench_torch.py                 # everything (~1-2 min on 2 idle cores)
    .venv/bin/python bench/bench_torch.py --only lenet5 --reps 5
    .venv/bin/python bench/bench_torch.py --threads 1 --clock cpu --json figures.json

This is a measurement, not a test: nothing fails when a figure is slow.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

import archc

THREADS = 2  # --threads
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}  # cpu: all threads of the process
CLOCK = CLOCKS["wall"]  # --clock
BUILD_CODE = """
import time, torch
torch.set_num_threads({threads})
w, c = time.perf_counter(), time.process_time()
import archc
archc.build("resnet50")
w1, c1 = time.perf_counter(), time.process_time()
import torchvision
w2, c2 = time.perf_counter(), time.process_time()
torchvision.models.resnet50(weights=None)
w3, c3 = time.perf_counter(), time.process_time()
print(w1 - w, c1 - c, w3 - w2, c3 - c2)
"""


class LeNet5(nn.Module):
    """LeNet-5 as a person writes it (specs/lenet5.yaml's layout: tanh, average pools)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.conv3 = nn.Conv2d(16, 120, 5)
        self.fc1 = nn.Linear(120, 84)
        self.fc2 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.avg_pool2d(torch.tanh(self.conv1(x)), 2)
        x = F.avg_pool2d(torch.tanh(self.conv2(x)), 2)
        x = torch.flatten(torch.tanh(self.conv3(x)), 1)
        return self.fc2(torch.tanh(self.fc1(x)))


# --------------------------------------------------------------------------- timing


def forward_step(model, x):
    model.eval()

    def step():
        with torch.no_grad():
            model(x)
    return step


def train_step(model, x):
    model.train()
    target = torch.zeros(x.shape[0], dtype=torch.long)

    def step():
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), target).backward()
    return step


def seconds(step, inner: int) -> float:
    start = CLOCK()
    for _ in range(inner):
        step()
    return (CLOCK() - start) / inner


def alternate(ours, theirs, reps: int, inner: int = 1, warmup: int = 2) -> dict:
    """Time two steps alternately; the order flips every pair so neither always goes first."""
    for _ in range(warmup):
        seconds(ours, inner), seconds(theirs, inner)
    a, b = [], []
    for i in range(reps):
        if i % 2:
            b.append(seconds(theirs, inner))
            a.append(seconds(ours, inner))
        else:
            a.append(seconds(ours, inner))
            b.append(seconds(theirs, inner))
    ratios = [x / y for x, y in zip(a, b)]
    return {"ours_s": statistics.median(a), "theirs_s": statistics.median(b),
            "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
            "reps": reps, "inner": inner}


def check_same(ours, theirs, x) -> float:
    """Both models compute the same thing (max |difference| of the outputs, eval mode)."""
    ours.eval(), theirs.eval()
    with torch.no_grad():
        return (ours(x) - theirs(x)).abs().max().item()


# --------------------------------------------------------------------------- cases


def resnet50(reps: int) -> dict:
    import torchvision

    torch.manual_seed(0)
    theirs = torchvision.models.resnet50(weights=None)
    ours = archc.build("resnet50")
    archc.load_weights(ours, theirs.state_dict())
    x = torch.randn(8, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    out = {"max_abs_diff": check_same(ours, theirs, x)}
    out["forward"] = alternate(forward_step(ours, x), forward_step(theirs, x), reps)
    out["forward_backward"] = alternate(train_step(ours, x), train_step(theirs, x), max(reps // 2, 3), warmup=1)
    return out


def lenet5(reps: int, inner: int) -> dict:
    torch.manual_seed(0)
    theirs = LeNet5()
    ours = archc.build("lenet5")
    archc.load_weights(ours, theirs.state_dict())
    x = torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    out = {"max_abs_diff": check_same(ours, theirs, x)}
    out["forward"] = alternate(forward_step(ours, x), forward_step(theirs, x), reps * 3, inner, warmup=3)
    out["forward_backward"] = alternate(train_step(ours, x), train_step(theirs, x), reps * 3, inner, warmup=3)
    return out


def build_time(runs: int, threads: int) -> dict:
    """Fresh processes; medians of wall and CPU seconds."""
    rows = []
    for _ in range(runs):
        text = subprocess.run([sys.executable, "-c", BUILD_CODE.format(threads=threads)],
                              capture_output=True, text=True, check=True).stdout
        rows.append([float(v) for v in text.split()])
    med = [statistics.median(col) for col in zip(*rows)]
    return {"build_wall_s": med[0], "build_cpu_s": med[1], "torchvision_wall_s": med[2],
            "torchvision_cpu_s": med[3], "runs": runs}


# --------------------------------------------------------------------------- report


def table(results: dict) -> str:
    lines = ["| case | ours (ms) | reference (ms) | median ratio (min–max) | target |",
             "|---|---:|---:|---:|---|"]
    targets = {"resnet50": "≤ 1.02", "lenet5": "≤ 1.05"}
    for name in ("resnet50", "lenet5"):
        if name not in results:
            continue
        for kind in ("forward", "forward_backward"):
            r = results[name][kind]
            lines.append(f"| {name} {kind.replace('_', '+')} | {r['ours_s'] * 1e3:.3f} | {r['theirs_s'] * 1e3:.3f} "
                         f"| {r['ratio']:.3f} ({r['ratio_min']:.3f}–{r['ratio_max']:.3f}) | {targets[name]} |")
    if "build" in results:
        b = results["build"]
        lines += ["", f"archc.build('resnet50') in a fresh process, import torch excluded (median of "
                  f"{b['runs']}): {b['build_wall_s']:.3f} s wall, {b['build_cpu_s']:.3f} s CPU "
                  f"(target ≤ 0.3 s); torchvision.models.resnet50(): {b['torchvision_wall_s']:.3f} s wall, "
                  f"{b['torchvision_cpu_s']:.3f} s CPU"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=12, help="timed pairs for resnet50 forward")
    parser.add_argument("--inner", type=int, default=200, help="lenet5 calls per sample")
    parser.add_argument("--build-runs", type=int, default=7)
    parser.add_argument("--only", choices=["resnet50", "lenet5", "build"], action="append")
    parser.add_argument("--threads", type=int, default=THREADS, help="torch.set_num_threads")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall seconds, or CPU seconds of the process (steadier on a shared machine)")
    parser.add_argument("--json", help="also write the figures to this file")
    args, _ = parser.parse_known_args()  # run_all.py passes every script the same options
    global CLOCK
    CLOCK = CLOCKS[args.clock]
    torch.set_num_threads(args.threads)
    only = set(args.only or ["resnet50", "lenet5", "build"])
    results = {"torch": torch.__version__, "threads": args.threads, "clock": args.clock}
    if "lenet5" in only:
        results["lenet5"] = lenet5(args.reps, args.inner)
    if "resnet50" in only:
        results["resnet50"] = resnet50(args.reps)
    if "build" in only:
        results["build"] = build_time(args.build_runs, args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {args.clock} clock\n")
    print(table(results))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
