"""Benchmark of issue 10: `archc import` of a ResNet-50 .onnx and `archc diff` of two
10k-node specs, as whole processes (start included, as a user runs them) and in process.

1. ResNet-50: torchvision's resnet50 (weights=None, 224×224, 25.5 M parameters) written
   once with torch.onnx's TorchScript exporter (dynamic batch; the batch norms folded into
   the convolutions), then ``archc import r50.onnx -o r50.yaml`` timed: reading 102 MB of
   initialisers, folding, mapping 122 nodes, validating the spec and writing the
   safetensors file. Target (issue 10): <= 3 s.
2. diff: bench/bench_validate.py's flat spec of ~10,000 nodes (a residual chain with every
   layer written out) against the same with a conv and a batch norm inserted in the middle
   and the first conv 5×5: ``archc diff a.yaml b.yaml`` (pairing, table, and the checkpoint verdict
   from both networks' static state_dicts, torch-free). Target: <= 2 s.

Usage::

    .venv/bin/python bench/bench_import.py            # markdown on stdout
    .venv/bin/python bench/bench_import.py --runs 7
    .venv/bin/python bench/bench_import.py --runs 3 --only diff   # part 2 only (no torch, no export)

Each figure is the median of --runs runs, with the CPU seconds (user + system) of the same
runs: on a shared machine they vary less than the wall time. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from bench_validate import archc_command, flat_spec  # noqa: E402


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def process(cmd: list[str], runs: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``cmd`` run as a subprocess ``runs`` times."""
    walls, cpus = [], []
    for _ in range(runs):
        cpu, start = children_cpu(), time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
        cpus.append(children_cpu() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def in_process(fn, runs: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``fn()``, after one warm-up call (imports done)."""
    fn()
    walls, cpus = [], []
    for _ in range(runs):
        cpu, start = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def resnet50_onnx(path: Path) -> None:
    import torch
    import torchvision

    model = torchvision.models.resnet50(weights=None).eval()
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(2, 3, 224, 224),), str(path), dynamo=False,
                          input_names=["input"], dynamic_axes={"input": {0: "batch"}})


def diff_specs(folder: Path, nodes: int) -> tuple[Path, Path]:
    """A: the flat spec; B: the same with a conv and a batch norm inserted before the middle
    step (2 nodes added) and the first conv 5x5 instead of 3x3 (1 node changed)."""
    a = flat_spec(nodes)
    middle = f"  - conv2d: {{out: 8, kernel: 3, padding: 1, id: conv{nodes // 8}}}"
    inserted = "  - conv2d: {out: 8, kernel: 3, padding: 1, id: extra_conv}\n  - batchnorm2d: {id: extra_bn}\n"
    b = a.replace(middle + "\n", inserted + middle + "\n")
    b = b.replace("{out: 8, kernel: 3, padding: 1, id: conv0}", "{out: 8, kernel: 5, padding: 2, id: conv0}")
    assert b.count("extra_conv") == 1 and "kernel: 5" in b
    (folder / "a.yaml").write_text(a)
    (folder / "b.yaml").write_text(b)
    return folder / "a.yaml", folder / "b.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--only", choices=["import", "diff"], help="run one part of the benchmark")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        if args.only != "diff":
            bench_import(Path(tmp), args.runs)
        if args.only != "import":
            bench_diff(Path(tmp), args.runs, args.nodes)


def bench_import(folder: Path, runs: int) -> None:
    resnet50_onnx(folder / "r50.onnx")
    size = (folder / "r50.onnx").stat().st_size
    import_cmd = archc_command() + ["import", str(folder / "r50.onnx"), "-o", str(folder / "r50.yaml")]
    w, c = process(import_cmd, runs)
    print(f"| archc import resnet50.onnx ({size / 1e6:.0f} MB), whole process | {w:.2f} s | {c:.2f} s | <= 3 s |")
    from archc.importers import import_onnx

    w, c = in_process(lambda: import_onnx(folder / "r50.onnx", folder / "r50.yaml"), runs)
    print(f"| import_onnx(resnet50.onnx), in process | {w:.2f} s | {c:.2f} s | |")


def bench_diff(folder: Path, runs: int, size: int) -> None:
    a, b = diff_specs(folder, size)
    import archc

    nodes = (len(archc.load(str(a)).nodes), len(archc.load(str(b)).nodes))
    diff_cmd = archc_command() + ["diff", str(a), str(b)]
    w, c = process(diff_cmd, runs)
    print(f"| archc diff, {nodes[0]:,} vs {nodes[1]:,} nodes, whole process | {w:.2f} s | {c:.2f} s | <= 2 s |")
    from archc.report.diff import checkpoint_fit, compare, load_side, render

    def diff_in_process():
        render(compare(load_side(str(a), {}, None), load_side(str(b), {}, None)), "table")

    w, c = in_process(diff_in_process, runs)
    print(f"| the same in process (load both, pair, verdict, table) | {w:.2f} s | {c:.2f} s | |")
    sides = (load_side(str(a), {}, None), load_side(str(b), {}, None))
    w, c = in_process(lambda: (load_side(str(a), {}, None), load_side(str(b), {}, None)), runs)
    print(f"| of which: loading and analysing both specs | {w:.2f} s | {c:.2f} s | |")
    w, c = in_process(lambda: render(compare(*sides, with_checkpoint=False), "table"), runs)
    print(f"| of which: pairing and the table | {w:.2f} s | {c:.2f} s | |")
    w, c = in_process(lambda: checkpoint_fit(*sides), runs)
    print(f"| of which: the checkpoint verdict (both static state_dicts) | {w:.2f} s | {c:.2f} s | |")
    w, c = process(archc_command() + ["validate", str(a)], runs)
    print(f"| for comparison: archc validate of A alone, whole process | {w:.2f} s | {c:.2f} s | |")

if __name__ == "__main__":
    main()
