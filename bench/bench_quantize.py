"""Benchmark of `archc export --quantize int8` (issue 14): smaller, faster, how much less accurate?

1. Size: ResNet-18 and ResNet-50 (224×224, 1000 classes, the spec's initialisation) in
   fp32 and in int8 (onnxruntime's static QDQ quantisation, per-channel weights, exactly
   what `--quantize int8` writes); the ratio of the file sizes (target ≤ 0.3).
2. Latency, CPU: ResNet-50 int8 against its fp32 file at batch 1, both under onnxruntime
   with the same number of intra-op threads (``--threads``, default 2), timed alternately
   in one process (``archc.backends.onnx.quantize.side_by_side``: each pair's ratio, then
   the median) for ``--seconds`` (target ≤ 0.6).
3. Accuracy: LeNet-5 trained with its own recipe on the digits (`archc train lenet5`,
   15 epochs), then `export_quantized(..., "int8")` calibrated on 300 training examples:
   test accuracy before and after (target: at most 0.5 points lost).

Sizes and latency do not depend on trained weights or real images, so the ResNets keep
their initialisation and are calibrated on 32 random normal images (ImageNet is not here).

Usage::

    .venv/bin/python bench/bench_quantize.py              # everything (~10 min on 2 busy cores)
    .venv/bin/python bench/bench_quantize.py --only lenet5 --threads 1

This is a measurement, not a test: nothing fails when a figure misses its target.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import archc
from archc.backends.onnx import quantize as q
from archc.backends.onnx.runtime import OnnxModel


def size_case(name: str, folder: Path) -> dict:
    """fp32 and int8 files of a zoo ResNet; their sizes (bytes) and the time each step took."""
    start = time.perf_counter()
    ref = archc.export_onnx(name, folder / f"{name}.fp32.onnx", seed=0, check=False).path
    exported = time.perf_counter()
    x = np.random.default_rng(0).standard_normal((32, 3, 224, 224)).astype(np.float32)
    q.to_int8(ref, folder / f"{name}.onnx", x)
    return {"fp32_bytes": ref.stat().st_size, "int8_bytes": (folder / f"{name}.onnx").stat().st_size,
            "ratio": (folder / f"{name}.onnx").stat().st_size / ref.stat().st_size,
            "export_s": exported - start, "quantise_s": time.perf_counter() - exported}


def latency_case(name: str, folder: Path, threads: int, seconds: float) -> dict:
    """Batch-1 latency of the int8 file against the fp32 file, paired runs in one process."""
    fp32 = OnnxModel(folder / f"{name}.fp32.onnx", provider="cpu", threads=threads)
    int8 = OnnxModel(folder / f"{name}.onnx", provider="cpu", threads=threads)
    x = np.random.default_rng(1).standard_normal((1, 3, 224, 224)).astype(np.float32)
    fp32_s, int8_s, ratio, pairs = q.side_by_side(fp32, int8, x, budget_s=seconds, runs=(10, 10_000))
    return {"fp32_ms": 1e3 * fp32_s, "int8_ms": 1e3 * int8_s, "ratio": ratio, "pairs": pairs, "threads": threads}


def accuracy_case(folder: Path, threads: int) -> dict:
    """LeNet-5 trained by its recipe, then quantised as `archc export --quantize int8` does."""
    from archc.train import train

    start = time.perf_counter()
    metrics, run_dir = train("lenet5", out=str(folder / "run"), progress="quiet", overwrite=True)
    trained = time.perf_counter()
    _, report = q.export_quantized(archc.load("lenet5"), folder / "lenet5.onnx", "int8",
                                   weights=str(run_dir / "best.pt"), threads=threads)
    return {"torch_test_accuracy": metrics["test_accuracy"], "fp32": report.before, "int8": report.after,
            "drop_points": report.drop, "agreement": report.agreement, "size_ratio": report.size_ratio,
            "latency_ratio": report.latency[2], "verdict": report.lines()[-1], "train_s": trained - start}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=60.0, help="time spent on paired ResNet-50 runs")
    parser.add_argument("--only", choices=["resnet18", "resnet50", "lenet5"], action="append")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    only = args.only or ["resnet18", "resnet50", "lenet5"]
    import onnxruntime

    out = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
           "onnxruntime": onnxruntime.__version__, "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in ("resnet18", "resnet50"):
            if name in only:
                out["cases"][f"{name} size"] = size_case(name, folder)
                print(name, "size", json.dumps(out["cases"][f"{name} size"]), flush=True)
        if "resnet50" in only:
            out["cases"]["resnet50 latency"] = latency_case("resnet50", folder, args.threads, args.seconds)
            print("resnet50 latency", json.dumps(out["cases"]["resnet50 latency"]), flush=True)
        if "lenet5" in only:
            out["cases"]["lenet5 accuracy"] = accuracy_case(folder, args.threads)
            print("lenet5 accuracy", json.dumps(out["cases"]["lenet5 accuracy"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
