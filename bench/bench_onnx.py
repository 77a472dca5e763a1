"""Benchmark of the ONNX backend (issue 4): is the exported file fast and small?

1. Latency, CPU: onnxruntime running the file `archc.export_onnx` writes against torch
   eager running the module it was exported from (same weights, eval, no_grad): ResNet-50
   at 224×224 batch 1 and batch 8, LeNet-5 batch 1. Both sides are timed alternately in
   one process (ort, torch, torch, ort, ...) so they see the same machine load; figures are
   medians in milliseconds and the ratio of the medians ort/torch (target: ≤ 0.7 on
   ResNet-50). Both use the same number of threads (``--threads``, default 2); the
   onnxruntime session uses its default optimisation level (all).
2. Graph size: ONNX node counts by op type of archc's resnet50 export against torch.onnx's
   export of torchvision's resnet50 (same exporter, same settings: dynamo, dynamic batch).

Usage::

    .venv/bin/python bench/bench_onnx.py                  # everything (~2-3 min on 2 cores)
    .venv/bin/python bench/bench_onnx.py --rounds 9 --only lenet5 --threads 1

This is a measurement, not a test: nothing fails when a figure is slow.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import archc
from archc.zoo import resolve

CASES = [("resnet50", 1), ("resnet50", 8), ("lenet5", 1)]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def latency(name: str, batch: int, folder: Path, rounds: int, threads: int) -> dict:
    """Median milliseconds of onnxruntime and torch on one network and batch size."""
    path = folder / f"{name}.onnx"
    if not path.exists():
        result = archc.export_onnx(name, path, seed=0)
        assert result.check.ok, result.check.lines()
    model = archc.build(name, seed=0).eval()  # the weights the file holds (same seed)
    session = archc.OnnxModel(path, provider="cpu", threads=threads)
    graph = archc.load(resolve(name))  # "resnet50" names the zoo spec
    x = np.random.default_rng(0).standard_normal((batch, *graph.input_shape)).astype(np.float32)
    xt = torch.from_numpy(x)
    with torch.no_grad():
        diff = float(np.abs(session.run(x) - model(xt).numpy()).max())
        ort_run, torch_run = (lambda: session.run(x)), (lambda: model(xt))
        for _ in range(3):  # warm-up
            ort_run(), torch_run()
        ort, eager = [], []
        for i in range(rounds):
            pair = [(ort, ort_run), (eager, torch_run)]
            for times, fn in (pair if i % 2 == 0 else pair[::-1]):
                times.append(timed(fn))
    o, t = statistics.median(ort), statistics.median(eager)
    return {"name": name, "batch": batch, "ort": o, "torch": t, "ratio": o / t, "diff": diff}


def op_counts(proto) -> dict:
    counts = {}
    for node in proto.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def graph_sizes(folder: Path) -> tuple[dict, dict]:
    """(archc's resnet50 export, torch.onnx's export of torchvision's resnet50): op counts."""
    import onnx
    import torchvision

    path = folder / "resnet50.onnx"
    if not path.exists():
        archc.export_onnx("resnet50", path, seed=0, check=False)
    ours = op_counts(onnx.load(str(path), load_external_data=False))
    ref = torchvision.models.resnet50(weights=None).eval()
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(ref, (torch.randn(2, 3, 224, 224),), dynamo=True, verbose=False,
                                    dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
    return ours, op_counts(program.model_proto)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="timed runs of each side")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=["resnet50", "lenet5", "size"], default=None)
    args, _ = parser.parse_known_args()  # run_all.py passes every script the same flags
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, onnxruntime {__import__('onnxruntime').__version__}, "
          f"{args.threads} threads, {args.rounds} rounds\n")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.only in (None, "resnet50", "lenet5"):
            print("| network | batch | onnxruntime ms | torch eager ms | ratio ort/torch | max abs diff |")
            print("|---|---|---|---|---|---|")
            for name, batch in CASES:
                if args.only in (None, name):
                    r = latency(name, batch, folder, args.rounds, args.threads)
                    print(f"| {name} | {batch} | {r['ort']:.2f} | {r['torch']:.2f} | {r['ratio']:.2f} "
                          f"| {r['diff']:.1e} |", flush=True)
        if args.only in (None, "size"):
            ours, theirs = graph_sizes(folder)
            print("\n| op type | archc resnet50 | torch.onnx(torchvision resnet50) |\n|---|---|---|")
            for op in sorted(set(ours) | set(theirs), key=lambda k: -max(ours.get(k, 0), theirs.get(k, 0))):
                print(f"| {op} | {ours.get(op, 0)} | {theirs.get(op, 0)} |")
            print(f"| **total** | **{sum(ours.values())}** | **{sum(theirs.values())}** |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
