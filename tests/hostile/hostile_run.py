"""Running archc on hostile input the way a CI job or a web service would: a separate
process with a wall-clock limit and an address-space limit, in a folder of its own, and
the checks every hostile case shares (a clean failure, nothing written elsewhere)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

# torch maps far more address space than it touches (CUDA stubs, its allocator's arenas):
# 4 GiB leaves it room while stopping a runaway allocation long before the machine's limit
MEMORY_LIMIT = 4 << 30


def _limit_memory():  # runs in the child, before exec
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_archc(args, cwd, timeout: float = 60, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """``archc ARGS`` in ``cwd`` under the time and memory limits; text output. A case that
    runs past ``timeout`` fails its test (subprocess.TimeoutExpired)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    env.pop("ARCHC_DEBUG", None)  # a traceback must never be what a user sees
    return subprocess.run([sys.executable, "-m", "archc", *map(os.fsdecode, args)], cwd=cwd, env=env,
                          input=stdin, capture_output=True, timeout=timeout, preexec_fn=_limit_memory)


def text(out: bytes) -> str:
    return out.decode("utf-8", "replace")


def listing(folder: Path) -> set[str]:
    """Every path below ``folder`` (relative), to compare before and after a run."""
    return {os.path.relpath(os.path.join(root, name), folder)
            for root, dirs, files in os.walk(folder) for name in dirs + files}


def assert_clean_failure(result, statuses=(1, 2)) -> str:
    """Exit 1 or 2, a message on stderr, no traceback, no 'internal error'; the stderr."""
    err = text(result.stderr)
    assert result.returncode in statuses, (result.returncode, err[-2000:])
    assert err.strip(), "a failure says why"
    assert "Traceback" not in err and "internal error" not in err, err[-2000:]
    return err
