"""Every network of the zoo (specs/) builds with the torch backend and matches its static
analysis at every node (tests/backends/torch_checks.py).

The large networks run at a small input through ``--set``-style overrides (they are fully
convolutional up to a global or adaptive pool, so the weights are the same); ResNet-18
also runs at its full 224×224 input."""

from __future__ import annotations

import pytest

import archc
from archc.zoo import zoo_specs
from torch_checks import check_graph, zoo_networks

def test_the_zoo_is_there():
    assert len(zoo_specs()) >= 5, "specs/ should hold the reference networks"


@pytest.mark.parametrize("path, network, overrides", zoo_networks())
def test_zoo_network_matches_the_analysis(path, network, overrides):
    graph = archc.load(path, network, overrides)
    check_graph(graph, batch=2 if graph.summary.macs < 5e8 else 1)


def test_resnet18_at_full_size():
    graph = archc.load(zoo_specs()[0].parent / "resnet18.yaml")
    model = check_graph(graph, batch=1)
    assert sum(p.numel() for p in model.parameters()) == 11_689_512  # torchvision's resnet18
