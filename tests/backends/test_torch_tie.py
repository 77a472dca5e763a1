"""Weight tying (`tie:`): one tensor shared by two layers, counted once, exported once."""

from __future__ import annotations

import pytest
import torch

import archc
from torch_checks import check_graph

SPEC = """archc: 1
name: tied
input: [3, 6]
layers:
  - linear: {out: 6, id: a}
  - relu
  - linear: {out: 6, bias: false, tie: a, id: b}
"""


def test_tied_weight_is_counted_once_and_shared():
    graph = archc.loads(SPEC)
    assert graph.node("a").meta["params"] == 42
    assert graph.node("b").meta["params"] == 0  # its only tensor is a's weight
    assert graph.node("b").meta["macs"] == 3 * 36  # MACs at every use
    assert graph.summary.total_params == 42
    model = check_graph(graph)  # parameters() == the static totals, per node too
    assert model.b.weight is model.a.weight


def test_a_tied_weight_trains_as_one_tensor():
    model = archc.build(text=SPEC, seed=0)
    model(torch.randn(2, 3, 6)).sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert len(grads) == 2  # a.weight (shared) and a.bias
    assert model.b.weight.grad is model.a.weight.grad


def test_a_tied_network_exports_to_onnx(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from onnx_checks import export_and_check

    export_and_check(archc.loads(SPEC), tmp_path / "tied.onnx")


def test_init_of_the_tied_tensor_is_left_to_its_owner():
    spec = SPEC.replace("tie: a, id: b}", "tie: a, id: b, init: zeros}")
    model = archc.build(text=spec, seed=0)
    assert model.a.weight.abs().sum() > 0
