"""Benchmark of `archc train` (issue 5): LeNet-5 on the digits, archc vs a plain loop.

Runs, as subprocesses, alternating so both see the same machine load (after one untimed
run of each):

* `archc train specs/lenet5.yaml --quiet --json --out TMP` (the console script, as a user
  types it: start-up, imports, data, 8 epochs, checkpoints, curves.png, the test pass);
* `python bench/plain_lenet5.py`, a minimal hand-written PyTorch loop with the same
  recipe (hand-written LeNet-5 module, no archc).

Reports the median wall time of each, their ratio, and each one's test accuracy.

Usage::

    .venv/bin/python bench/bench_train.py --runs 5
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_train.py --runs 5   # on a busy machine

This is a measurement, not a test: nothing fails when a figure is slow.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def archc_command() -> list[str]:
    script = Path(sys.executable).with_name("archc")
    return [str(script)] if script.exists() else [sys.executable, "-m", "archc"]


def timed(cmd: list[str]) -> tuple[float, float, dict]:
    """(wall seconds, CPU seconds (user + system, from wait4), the JSON the command printed)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err}")
    return elapsed, usage.ru_utime + usage.ru_stime, json.loads(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ours = archc_command() + ["train", "specs/lenet5.yaml", "--quiet", "--json", "--out", f"{tmp}/run", "--overwrite"]
        plain = [sys.executable, "bench/plain_lenet5.py"]
        timed(ours), timed(plain)  # warm the file cache
        results = {"archc": [], "plain": []}
        for _ in range(args.runs):
            for name, cmd in (("archc", ours), ("plain", plain)):
                results[name].append(timed(cmd))
    med = {k: statistics.median(t for t, _, _ in v) for k, v in results.items()}
    cpu = {k: statistics.median(c for _, c, _ in v) for k, v in results.items()}
    acc = {k: statistics.median(m["test_accuracy"] for _, _, m in v) for k, v in results.items()}
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    print(f"machine: {os.cpu_count()} CPUs, OMP_NUM_THREADS={threads}, {args.runs} alternating runs each\n")
    print("| command | median wall (s) | median CPU (s) | test accuracy |")
    print("| --- | ---: | ---: | ---: |")
    for name, label in (("archc", "`archc train specs/lenet5.yaml`"),
                        ("plain", "`python bench/plain_lenet5.py` (hand-written loop)")):
        print(f"| {label} | {med[name]:.2f} | {cpu[name]:.2f} | {acc[name]:.4f} |")
    print(f"\nratio archc / plain: wall {med['archc'] / med['plain']:.3f}, CPU {cpu['archc'] / cpu['plain']:.3f}")
    print("all runs, wall (s): " + json.dumps({k: [round(t, 2) for t, _, _ in v] for k, v in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
