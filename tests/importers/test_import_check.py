"""The importers' guard (archc/importers/check.py): the weights about to be written are
exactly the spec's tensors. The reference for "right" is torch's own state_dict of the
built module; each wrong case changes one tensor of it, and the error texts are pinned.
Then both importers, with a mapping made wrong on purpose, stop with that error and
write nothing."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

import archc
from archc.errors import Pos, SpecErrors
from archc.importers import import_onnx, onnx_table
from archc.importers.check import check_weights
from onnx_cases import model, tensor

torch = pytest.importorskip("torch")

SPEC = """archc: 1
input: [3, 8, 8]
layers:
  - conv2d: {out: 4, kernel: 3, id: conv}
  - batchnorm2d: {id: bn}
  - flatten
  - linear: {out: 2, id: fc}
"""
FIX = "this is a bug in archc's importer; please report it with the model"


@pytest.fixture(scope="module")
def graph_and_weights():
    """The analysed spec and its module's state_dict as numpy arrays (what the ONNX importer writes)."""
    module = archc.build(text=SPEC, seed=0)
    return archc.loads(SPEC), {k: v.numpy() for k, v in module.state_dict().items()}


def errors_of(graph, weights) -> list[str]:
    with pytest.raises(SpecErrors) as exc:
        check_weights(graph, weights, Pos("m.onnx"), FIX)
    return [e.render() for e in exc.value.errors]


def test_the_modules_own_tensors_pass_as_numpy_and_as_torch(graph_and_weights):
    graph, weights = graph_and_weights
    check_weights(graph, weights, Pos("m.onnx"), FIX)
    check_weights(graph, archc.build(text=SPEC).state_dict(), Pos("m.onnx"), FIX)
    # ONNX keeps no num_batches_tracked: archc.load_weights keeps the module's own
    check_weights(graph, {k: v for k, v in weights.items() if k != "bn.num_batches_tracked"}, Pos("m.onnx"), FIX)


def test_a_wrong_shaped_and_a_missing_tensor_are_named_with_both_shapes(graph_and_weights):
    graph, weights = graph_and_weights
    wrong = dict(weights, **{"conv.weight": np.zeros((4, 3, 2, 2), np.float32)})
    del wrong["fc.bias"]
    assert errors_of(graph, wrong) == [
        "m.onnx: error: conv: layer conv (conv2d): its weight is written with shape [4, 3, 2, 2] where the "
        "spec's layer holds [4, 3, 3, 3] — " + FIX,
        "m.onnx: error: fc: layer fc (linear): its bias [2] is not written — " + FIX]


def test_an_extra_tensor_and_a_tensor_of_integers_are_errors(graph_and_weights):
    graph, weights = graph_and_weights
    wrong = dict(weights, **{"bn.running_mean": np.zeros(4, np.int64), "fc.scale": np.ones(2, np.float32),
                             "head.weight": np.ones((2, 2), np.float32),
                             "bn.num_batches_tracked": np.zeros((), np.float32)})
    assert errors_of(graph, wrong) == [
        "m.onnx: error: bn: layer bn (batchnorm2d): its running_mean is written as int64, not a floating-point "
        "tensor — " + FIX,
        "m.onnx: error: bn: layer bn (batchnorm2d): its num_batches_tracked is written as float32, not an "
        "integer tensor — " + FIX,
        "m.onnx: error: fc: layer fc (linear): its scale is written ([2]) but the spec's layer has no such "
        "tensor — " + FIX,
        "m.onnx: error: the weights hold head.weight ([2, 2]), which no layer of the spec owns — " + FIX]


def test_onnx_import_with_a_wrong_mapping_stops_and_writes_nothing(tmp_path, monkeypatch):
    gemm = onnx_table.MAPPERS["Gemm"]

    def transposed(node, ctx):  # a mapping that forgot ONNX's transB
        layers = gemm(node, ctx)
        layers[0].tensors["weight"] = layers[0].tensors["weight"].T
        return layers

    monkeypatch.setitem(onnx_table.MAPPERS, "Gemm", transposed)
    m = model([helper.make_node("Gemm", ["x", "fc.weight", "fc.bias"], ["y"], transB=1)], [4], "y",
              [tensor("fc.weight", 3, 4), tensor("fc.bias", 3)])
    onnx.save_model(m, str(tmp_path / "m.onnx"))
    with pytest.raises(SpecErrors) as exc:
        import_onnx(tmp_path / "m.onnx", tmp_path / "m.yaml")
    assert [e.render() for e in exc.value.errors] == [
        f"{tmp_path / 'm.onnx'}: error: fc: layer fc (linear): its weight is written with shape [4, 3] where "
        "the spec's layer holds [3, 4] — " + FIX]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_torch_import_with_a_wrong_mapping_stops(monkeypatch):
    from archc.importers import torch_ops

    # every module's 2-D weight transposed: the counts still agree, the shapes do not; the
    # Sequential's ids 0 and 2 are renamed n0 and n2 in the spec
    monkeypatch.setattr(torch_ops, "tensors", lambda mod: {k: v.detach().t() for k, v in mod.state_dict().items()})
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    with pytest.raises(SpecErrors) as exc:
        archc.from_torch(net, torch.randn(1, 4))
    bug = "this is a bug in archc's torch importer; please report it with the module"
    assert [e.render() for e in exc.value.errors] == [
        "torch module Sequential: error: n0: layer n0 (linear): its weight is written with shape [4, 8] where "
        "the spec's layer holds [8, 4] — " + bug,
        "torch module Sequential: error: n2: layer n2 (linear): its weight is written with shape [8, 2] where "
        "the spec's layer holds [2, 8] — " + bug]
