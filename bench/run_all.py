"""Run every benchmark in bench/ (each bench_*.py script) one after the other.

`make bench` calls this; each script prints its own markdown table, the figures that
docs/benchmarks.md records. Extra arguments are passed to every script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main() -> int:
    status = 0
    for script in sorted(Path(__file__).resolve().parent.glob("bench_*.py")):
        print(f"\n## {script.name}\n", flush=True)
        status |= subprocess.run([sys.executable, str(script), *sys.argv[1:]]).returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
