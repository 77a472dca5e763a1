"""Round trip (issue 10.3): every zoo network -> archc export -> archc import -> archc
validate keeps the counts and computes the same outputs with the exported weights.

torch.onnx's optimiser folds each batch norm that follows a convolution into that
convolution (its scale into the weights; its shift, zero at initialisation, vanishes), so
the imported spec has no such batch norm, and it drops biases that are all zeros: the
expected counts are the original's minus those batch norms' parameters and buffers and
those biases. MACs (batch norm counts none) and the output
shape are unchanged. Networks archc cannot import yet assert the error that says why.

Sizes come from tests/backends/test_onnx_zoo.py's SMALL overrides (an export takes seconds
per network on two cores; the structure does not depend on the widths)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import archc
from archc.errors import SpecErrors
from archc.importers import import_onnx
from archc.zoo import zoo_specs

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backends"))
from test_onnx_zoo import SMALL  # noqa: E402

FOLDED_INTO = {"conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"}
BATCHNORMS = {"batchnorm1d", "batchnorm2d", "batchnorm3d"}
# what archc cannot import yet, and the error that says so
NOT_YET = {
    "vgg16": "(GatherND): archc has no op for ONNX's GatherND",  # adaptive pool 1×1 -> 7×7
    "gpt_tiny": "it multiplies two computed tensors (as attention's q·kᵀ does)",
    "lstm_digits": "(LSTM): archc has no op for ONNX's LSTM",
}
# not exported again here: they stop at the same error as the network named (which keeps
# the file's time down: each export takes seconds)
SAME_AS = {"alexnet": "vgg16", "vgg19": "vgg16", "gpt2": "gpt_tiny", "vit_b_16": "gpt_tiny"}


def zoo_networks() -> list:
    out = []
    for path in zoo_specs():
        for graph in archc.load_all(str(path)):
            label = path.stem if graph.name == path.stem else f"{path.stem}:{graph.name}"
            if path.stem not in SAME_AS:
                out.append(pytest.param(str(path), path.stem, graph.name, id=label))
    return out


def test_every_zoo_spec_is_round_tripped_or_named():
    assert {p.stem for p in zoo_specs()} == {p.values[1] for p in zoo_networks()} | set(SAME_AS)


def expected_counts(graph) -> tuple[int, int]:
    """(params, buffers) once every batch norm right after a convolution is folded into it."""
    params, buffers = graph.summary.total_params, graph.summary.buffers
    for node in graph.nodes:
        source = node.inputs[0]
        if node.op in BATCHNORMS and source != "input" and graph.node(source).op in FOLDED_INTO:
            params -= node.meta["params"]
            buffers -= node.meta["buffers"]
    return params, buffers


@pytest.mark.parametrize("path, stem, network", zoo_networks())
def test_zoo_round_trip(path, stem, network, tmp_path):
    import torch

    graph = archc.load(path, network, overrides=SMALL[stem])
    archc.export_onnx(graph, tmp_path / "model.onnx", check=False, seed=0)
    if stem in NOT_YET:
        with pytest.raises(SpecErrors) as info:
            import_onnx(tmp_path / "model.onnx", tmp_path / "model.yaml")
        assert NOT_YET[stem] in str(info.value)
        assert not (tmp_path / "model.yaml").exists()
        return
    r = import_onnx(tmp_path / "model.onnx", tmp_path / "model.yaml")
    again = archc.load(str(tmp_path / "model.yaml"))  # what `archc validate` reads
    s = again.summary
    original = archc.build(graph, seed=0).eval()  # the weights the export wrote
    params, buffers = expected_counts(graph)
    params -= sum(p.numel() for n, p in original.named_parameters() if n.endswith(".bias") and not p.any()
                  and graph.node(n[: -len(".bias")]).op in FOLDED_INTO | {"linear"})
    assert (s.total_params, s.buffers) == (params, buffers)
    assert s.macs == graph.summary.macs
    assert s.output_shapes == graph.summary.output_shapes
    imported = archc.build(again, seed=1).eval()
    assert archc.load_weights(imported, str(r.weights_path)).ok
    from onnx_cases import random_input

    from onnx_cases import run_onnx

    for batch in (1, 3):
        x = random_input(graph, batch, seed=batch)
        with torch.no_grad():
            ours, theirs = imported(torch.from_numpy(x)), original(torch.from_numpy(x))
        # the spec computes the file's values; the file differs from the original module by
        # the float32 rounding of the folded batch norms
        assert np.abs(run_onnx(tmp_path / "model.onnx", x)[0] - ours.numpy()).max() <= 1e-5
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
