"""Every zoo network exports to one ONNX file with a dynamic batch, passes the checker and
ONNX shape inference (compared with archc's shapes value by value), and computes what
torch computes under onnxruntime at batch 1 and batch 3.

Inputs and widths are made small through overrides where the spec allows (the numbers a
network computes do not depend on its width; this keeps the suite fast on two cores)."""

from __future__ import annotations

import pytest

import archc
from archc.zoo import zoo_specs
from onnx_checks import export_and_check

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

SMALL = {
    "alexnet": {"input": [3, 64, 64], "classes": 10},
    "conv1d_digits": {},
    "convnext_tiny": {"input": [3, 64, 64], "widths": [8, 16, 32, 64], "depths": [1, 1, 2, 1], "classes": 10},
    "dcgan": {"ngf": 8, "ndf": 8},
    "efficientnet_b0": {"input": [3, 64, 64], "classes": 10},
    "googlenet": {"input": [3, 64, 64], "classes": 10},
    "gpt2": {"input": [16], "layers": 2, "width": 64, "heads": 2},
    "gpt_tiny": {"input": [16], "layers": 2},
    "lenet5": {},
    "lstm_digits": {},
    "mnist_cnn": {},
    "mnist_mlp": {"hidden": 64},
    "mobilenet_v3_large": {"input": [3, 64, 64], "classes": 10},
    "resnet18": {"input": [3, 64, 64], "classes": 10},
    "resnet34": {"input": [3, 64, 64], "classes": 10, "width": 16},
    "resnet50": {"input": [3, 64, 64], "classes": 10, "width": 16},
    "unet": {"input": [1, 188, 188], "width": 8},
    "vgg16": {"input": [3, 32, 32], "classes": 10, "widths": [8, 16, 32, 32, 32]},
    "vgg16_bn": {"input": [3, 32, 32], "classes": 10, "widths": [8, 16, 32, 32, 32]},
    "vgg16_cifar10": {"widths": [8, 16, 32, 32, 32]},
    "vgg19": {"input": [3, 32, 32], "classes": 10, "widths": [8, 16, 32, 32, 32]},
    "vit_b_16": {"input": [3, 32, 32], "patch": 8, "layers": 2, "width": 64, "mlp": 128, "heads": 2, "classes": 10},
}


def zoo_targets():
    out = []
    for path in zoo_specs():
        for graph in archc.load_all(str(path)):
            label = path.stem if graph.name == path.stem else f"{path.stem}:{graph.name}"
            out.append(pytest.param(str(path), path.stem, graph.name, id=label))
    return out


def test_every_zoo_spec_has_small_overrides():
    assert {p.stem for p in zoo_specs()} == set(SMALL)


@pytest.mark.parametrize("path, stem, network", zoo_targets())
def test_zoo_network_exports_and_matches_torch(path, stem, network, tmp_path):
    graph = archc.load(path, network, overrides=SMALL[stem])
    result = export_and_check(graph, tmp_path / f"{stem}.onnx")
    # the outputs and most intermediate values carry the spec's names and were compared
    assert set(graph.outputs) <= set(result.names)
    assert result.check.shapes_compared >= len(graph.outputs)
