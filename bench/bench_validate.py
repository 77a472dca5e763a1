"""Benchmark of `archc validate` (issue 2): wall time of whole processes, start included.

1. `archc validate specs/NAME.yaml --format json` against torchinfo's summary of the same
   network written in torch (torchvision's resnet50 and vit_b_16; for gpt2 the hand-written
   GPT-2 of tests/gpt2_reference.py, on 1024 token ids), each run as a subprocess,
   alternating (archc, torchinfo, archc, ...) so both see the same machine load; medians
   and their ratio.
2. Generated specs of about 1k, 10k and 50k nodes (written to a temporary folder):
   a residual block repeated in stages, and a flat list with every layer written out.
   Time should grow linearly with the node count.

Usage (torchinfo comes from requirements-bench.txt)::

    .venv/bin/pip install -r requirements-bench.txt
    .venv/bin/python bench/bench_validate.py            # everything, markdown on stdout
    .venv/bin/python bench/bench_validate.py --no-torchinfo --runs 9
    .venv/bin/python bench/bench_validate.py --models vit_b_16,gpt2 --sizes ""   # the zoo's transformers

This is a measurement, not a test: nothing fails when a figure is slow.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the same network summarised by torchinfo, as a user of torch would
TORCHINFO = {
    "resnet50": "import torchvision, torchinfo; "
                "torchinfo.summary(torchvision.models.resnet50(), input_size=(1, 3, 224, 224))",
    "vit_b_16": "import torchvision, torchinfo; "
                "torchinfo.summary(torchvision.models.vit_b_16(), input_size=(1, 3, 224, 224))",
    "gpt2": f"import sys, torch, torchinfo; sys.path.insert(0, {str(ROOT / 'tests')!r}); "
            "from gpt2_reference import GPT2; "
            "torchinfo.summary(GPT2(), input_data=torch.zeros(1, 1024, dtype=torch.long))",
}


def archc_command() -> list[str]:
    """The installed console script beside this Python (as a user runs it)."""
    script = Path(sys.executable).with_name("archc")
    return [str(script)] if script.exists() else [sys.executable, "-m", "archc"]


CPU: list[float] = []  # CPU seconds (user + system) of every run, in order


def wall(cmd: list[str]) -> float:
    """Seconds one subprocess takes, start to exit; its output is discarded. Its CPU time
    is appended to CPU: on a shared machine it varies less than the wall time."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    CPU.append(usage.ru_utime + usage.ru_stime)
    return elapsed


def timed(cmd: list[str], runs: int) -> tuple[list[float], float]:
    """Wall times of `runs` runs and the median CPU time of the same runs."""
    CPU.clear()
    times = [wall(cmd) for _ in range(runs)]
    return times, statistics.median(CPU)


def versus_torchinfo(name: str, runs: int, with_torchinfo: bool) -> dict:
    archc = archc_command() + ["validate", str(ROOT / "specs" / f"{name}.yaml"), "--format", "json"]
    torchinfo = [sys.executable, "-c", TORCHINFO[name]]
    wall(archc)  # warm the file cache (both tools get one untimed run)
    if with_torchinfo:
        wall(torchinfo)
    a, t, a_cpu, t_cpu = [], [], [], []
    for _ in range(runs):  # alternate, so both see the same load
        a.append(wall(archc))
        a_cpu.append(CPU[-1])
        if with_torchinfo:
            t.append(wall(torchinfo))
            t_cpu.append(CPU[-1])
    out = {"name": name, "archc_runs": a, "archc_median": statistics.median(a), "archc_cpu": statistics.median(a_cpu)}
    if t:
        out |= {"torchinfo_runs": t, "torchinfo_median": statistics.median(t),
                "torchinfo_cpu": statistics.median(t_cpu),
                "ratio": statistics.median(t) / statistics.median(a)}
    return out


# -- generated specs ---------------------------------------------------------------------

UNIT = """\
blocks:
  unit:                       # a residual unit: 7 nodes (`short` is skipped)
    args: {out: required}
    layers:
      - conv2d: {out: $out, kernel: 3, padding: 1, bias: false}
      - batchnorm2d
      - relu
      - conv2d: {out: $out, kernel: 3, padding: 1, bias: false}
      - batchnorm2d: {id: main}
      - conv2d: {from: input, out: $out, kernel: 1, id: short, when: "input.channels != $out"}
      - add: {from: [main, short]}
      - relu
"""


def repeated_spec(nodes: int) -> str:
    """About `nodes` nodes: stages of at most 1,000 repeated residual units."""
    units, lines = max(1, nodes // 7), []
    stage = 0
    while units > 0:
        n = min(units, 1000)
        lines.append(f"  - unit: {{id: stage{stage}, out: $width, repeat: {n}}}")
        units, stage = units - n, stage + 1
    return ("archc: 1\nname: repeated\ninput: [8, 16, 16]\nvars: {width: 8}\n" + UNIT
            + "layers:\n" + "\n".join(lines) + "\n")


def flat_spec(nodes: int) -> str:
    """About `nodes` nodes, every layer written out (a residual chain of 4-node steps)."""
    lines = []
    for i in range(max(1, nodes // 4)):
        skip = "input" if i == 0 else f"add{i - 1}"
        lines += [f"  - conv2d: {{out: 8, kernel: 3, padding: 1, id: conv{i}}}",
                  f"  - batchnorm2d: {{id: bn{i}}}", f"  - relu: {{id: relu{i}}}",
                  f"  - add: {{id: add{i}, from: [relu{i}, {skip}]}}"]
    return "archc: 1\nname: flat\ninput: [8, 16, 16]\nlayers:\n" + "\n".join(lines) + "\n"


def count_nodes(cmd: list[str]) -> int:
    report = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return len(report["layers"])


def generated(sizes: list[int], runs: int, folder: Path) -> list[dict]:
    rows = []
    for kind, make in (("repeated blocks", repeated_spec), ("flat list", flat_spec)):
        for size in sizes:
            if kind == "flat list" and size > 20_000:
                continue  # 50k written-out layers exceed the loader's 100,000-value bound
            path = folder / f"{kind.split()[0]}_{size}.yaml"
            path.write_text(make(size))
            cmd = archc_command() + ["validate", str(path), "--format", "json"]
            nodes = count_nodes(cmd)
            times, cpu = timed(cmd, runs)
            rows.append({"kind": kind, "nodes": nodes, "bytes": path.stat().st_size,
                         "median": statistics.median(times), "cpu": cpu, "runs": times})
    return rows


def markdown(heads: list[dict], rows: list[dict]) -> str:
    out = ["| command | median wall (s) | median CPU (s) | runs, wall (s) |", "|---|---:|---:|---|"]
    fmt = lambda xs: ", ".join(f"{x:.3f}" for x in xs)  # noqa: E731
    for head in heads:
        out.append(f"| archc validate specs/{head['name']}.yaml --format json | {head['archc_median']:.3f} "
                   f"| {head['archc_cpu']:.3f} | {fmt(head['archc_runs'])} |")
        if "torchinfo_median" in head:
            out.append(f"| torchinfo.summary({head['name']} in torch) | {head['torchinfo_median']:.3f} "
                       f"| {head['torchinfo_cpu']:.3f} | {fmt(head['torchinfo_runs'])} |")
    out.append("")
    out += [f"{h['name']}: archc is **{h['ratio']:.1f}×** faster (ratio of median walls)."
            for h in heads if "ratio" in h]
    if not rows:
        return "\n".join(out)
    out += ["", "| generated spec | nodes | YAML bytes | median wall (s) | median CPU (s) "
                "| wall ms per 1k nodes |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['kind']} | {r['nodes']:,} | {r['bytes']:,} | {r['median']:.3f} "
                   f"| {r['cpu']:.3f} | {1000 * 1000 * r['median'] / r['nodes']:.0f} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7, help="timed runs of each zoo command")
    ap.add_argument("--models", default="resnet50", help="zoo specs timed against torchinfo: "
                                                        + ",".join(TORCHINFO))
    ap.add_argument("--gen-runs", type=int, default=3, help="timed runs of each generated spec")
    ap.add_argument("--sizes", default="1000,10000,50000", help="node counts of generated specs")
    ap.add_argument("--no-torchinfo", action="store_true", help="skip the torchinfo comparison")
    ap.add_argument("--json", type=Path, help="also write the raw figures here")
    args = ap.parse_args()
    with_torchinfo = not args.no_torchinfo
    if with_torchinfo and subprocess.run([sys.executable, "-c", "import torchinfo, torchvision"],
                                         capture_output=True).returncode:
        sys.exit("torchinfo or torchvision is missing: pip install -r requirements-bench.txt "
                 "(or pass --no-torchinfo)")
    print(f"# {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {sys.executable}", file=sys.stderr)
    # archc's bytecode, as `pip install` writes it: under PYTHONDONTWRITEBYTECODE (set on
    # this project's machines) every process would otherwise compile archc from source,
    # 0.2 s of each run that no installed copy pays
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "archc")], check=True,
                   env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})
    heads = [versus_torchinfo(name, args.runs, with_torchinfo) for name in args.models.split(",") if name]
    folder = Path(tempfile.mkdtemp(prefix="archc-bench-"))
    try:
        rows = generated([int(s) for s in args.sizes.split(",") if s], args.gen_runs, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(markdown(heads, rows) + f"\n\nLoad average at the end (1, 5, 15 min): {load} on "
          f"{os.cpu_count()} CPUs.")
    if args.json:
        args.json.write_text(json.dumps({"zoo": heads, "generated": rows, "load": load}, indent=1))


if __name__ == "__main__":
    main()
