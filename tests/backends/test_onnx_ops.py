"""Every registered op exports to ONNX and computes what torch computes under onnxruntime
(the op table of tests/backends/test_torch_ops.py: every attribute case of every op)."""

from __future__ import annotations

import pytest

import archc

onnx = pytest.importorskip("onnx")
from onnx_checks import export_and_check
from test_torch_ops import OP_CASES, spec

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

CASES = [pytest.param(op, shape, layers, id=f"{op}-{i}")
         for op, cases in sorted(OP_CASES.items()) for i, (shape, layers) in enumerate(cases)]


@pytest.mark.parametrize("op, shape, layers", CASES)
def test_op_exports_and_matches_torch(op, shape, layers, tmp_path):
    graph = archc.loads(spec(op, shape, layers))
    result = export_and_check(graph, tmp_path / "m.onnx")
    # the file's outputs are the spec's output nodes, by name
    model = onnx.load(str(result.path))
    assert [o.name for o in model.graph.output] == list(graph.outputs)
