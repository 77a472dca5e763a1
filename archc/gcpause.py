"""Pause the cyclic garbage collector around bulk work (a speed measure, nothing else).

Loading and reporting build many small acyclic objects (located YAML values, nodes,
shapes, report dicts). Every few hundred allocations CPython's collector runs, and its
older generations walk the whole growing heap, so time grew faster than the spec: a
50,000-node spec took 3× longer than 5 × 10,000 (docs/benchmarks.md). Reference counting
still frees everything as usual while the collector is paused; it resumes afterwards.
"""

from __future__ import annotations

import functools
import gc


def gc_paused(fn):
    """Decorator: run ``fn`` with ``gc`` disabled, restoring the previous state."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()

    return wrapper
