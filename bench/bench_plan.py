"""Benchmark of `archc plan` (issue 13): wall and CPU time of whole processes, start included.

`archc plan specs/resnet50.yaml --batch-size 32` (the table) and the same with
`--memory 24GiB --format json` (the largest-batch search), alternating with
`archc validate specs/resnet50.yaml --format json` so that all see the same machine load;
medians. The target: the plan within 0.3 s, torch never imported (checked here too).

Usage::

    .venv/bin/python bench/bench_plan.py            # markdown on stdout
    .venv/bin/python bench/bench_plan.py --runs 15 --spec specs/vit_b_16.yaml

This is a measurement, not a test: nothing fails when a figure is slow.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_validate import CPU, ROOT, archc_command, wall  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--spec", default="specs/resnet50.yaml")
    ap.add_argument("--batch-size", default="32")
    args = ap.parse_args()
    # bytecode compiled first, as pip install does (bench_validate.py says why)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "archc")], check=True,
                   env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})
    spec = str(ROOT / args.spec)
    commands = {
        "validate --format json": ["validate", spec, "--format", "json"],
        f"plan --batch-size {args.batch_size}": ["plan", spec, "--batch-size", args.batch_size],
        "plan --memory 24GiB --format json": ["plan", spec, "--memory", "24GiB", "--format", "json"],
    }
    probe = ("import sys, runpy; sys.argv = ['archc', 'plan', %r, '--batch-size', %r]; "
             "import archc.cli as c\ntry: c.main()\nexcept SystemExit: pass\n"
             "print('torch imported' if 'torch' in sys.modules else 'torch not imported', file=sys.stderr)")
    torch_line = subprocess.run([sys.executable, "-c", probe % (spec, args.batch_size)], capture_output=True,
                                text=True).stderr.strip().splitlines()[-1]
    times = {k: [] for k in commands}
    cpus = {k: [] for k in commands}
    for _ in range(args.runs):
        for label, argv in commands.items():
            times[label].append(wall(archc_command() + argv))
            cpus[label].append(CPU[-1])
    print(f"### `archc plan` on {args.spec} ({args.runs} runs each, alternating; {torch_line})\n")
    print("| command | median wall | median CPU |\n|---|---:|---:|")
    for label in commands:
        print(f"| `archc {label}` | {statistics.median(times[label]):.3f} s | {statistics.median(cpus[label]):.3f} s |")


if __name__ == "__main__":
    main()
