"""Random valid specs (tests/strategies.py, shared with the torch backend's tests) export
to ONNX, pass every check and match torch under onnxruntime at two batch sizes."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

import archc
from onnx_checks import export_and_check
from strategies import specs

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=specs())
def test_random_specs_export_and_match_torch(text):
    with tempfile.TemporaryDirectory() as folder:
        export_and_check(archc.loads(text), Path(folder) / "random.onnx")
