"""Shared checks of the ONNX backend: export a graph with every check on and assert the
verdict, so a failing test says which check failed and by how much."""

from __future__ import annotations

import archc


def export_and_check(spec, path, **kwargs):
    """Export ``spec`` to ``path`` (dynamic batch unless told), assert every check passed."""
    result = archc.export_onnx(spec, str(path), **kwargs)
    report = result.check
    assert report.checker == "ok", report.checker
    assert not report.shape_mismatches, report.shape_mismatches
    assert report.runs and all(r.ok for r in report.runs), report.lines()
    if kwargs.get("dynamic_batch", True):
        assert [r.batch for r in report.runs] == [1, 3]  # two batch sizes through one file
    assert report.ok
    return result
