"""Shared checks of the torch backend: a built module agrees with the static analysis.

``check_graph`` builds a graph twice from one seed — once with every node's value
returned by name, once as the normal straight-line module whose variables are reused —
runs both on one random batch and asserts

* every node's tensor has the statically inferred shape (batch first);
* parameters, trainable parameters and buffers equal the static totals, and each node's
  submodule holds exactly the node's predicted counts;
* the normal module's outputs equal the return-all module's bit for bit (the variable
  reuse of the code generator changes nothing).
"""

from __future__ import annotations

import pytest
import torch

import archc
from archc.backends.torch.build import build, example_input
from archc.zoo import zoo_specs

# zoo spec stem -> overrides that keep tests fast (the large networks are fully
# convolutional up to a global or adaptive pool, so their parameters stay the same)
SMALL = {
    "alexnet": {"input": [3, 64, 64]},
    "convnext_tiny": {"input": [3, 64, 64], "widths": [8, 16, 32, 64], "depths": [1, 1, 2, 1]},
    "efficientnet_b0": {"input": [3, 64, 64]},
    "googlenet": {"input": [3, 64, 64]},
    "mobilenet_v3_large": {"input": [3, 64, 64]},
    "gpt2": {"input": [32], "layers": 2, "width": 64, "heads": 2},
    "resnet18": {"input": [3, 64, 64]},
    "resnet34": {"input": [3, 64, 64]},
    "resnet50": {"input": [3, 64, 64]},
    "unet": {"input": [1, 188, 188], "width": 8},
    "vgg16": {"input": [3, 32, 32]},
    "vgg19": {"input": [3, 32, 32]},
    "vit_b_16": {"input": [3, 32, 32], "patch": 8, "layers": 2, "width": 64, "mlp": 128, "heads": 2},
}


def zoo_networks():
    """pytest params (path, network, overrides) for every network of every zoo spec."""
    out = []
    for path in zoo_specs():
        overrides = SMALL.get(path.stem)
        for graph in archc.load_all(str(path), overrides=overrides):
            label = path.stem if graph.name == path.stem else f"{path.stem}:{graph.name}"
            out.append(pytest.param(str(path), graph.name, overrides, id=label))
    return out


def run(model, x):
    with torch.no_grad():
        return model(x)


def check_graph(graph, batch: int = 2, seed: int = 0):
    """Assert a built module matches ``graph``'s analysis; returns the normal module."""
    probe = build(graph, seed=seed, return_all=True).eval()
    model = build(graph, seed=seed).eval()
    x = example_input(graph, batch, seed)
    values = run(probe, x)
    for node in graph.nodes:
        got = tuple(values[node.name].shape)
        assert got == (batch, *node.meta["shape"]), f"{node.name}: torch {got}, static {node.meta['shape']}"
    _check_counts(graph, probe)
    outs = run(model, x)
    outs = outs if isinstance(outs, tuple) else (outs,)
    assert len(outs) == len(graph.outputs)
    for name, out in zip(graph.outputs, outs):
        assert torch.equal(out, values[name]), f"output {name} differs from the return-all module"
    return model


def _check_counts(graph, model) -> None:
    s = graph.summary
    assert sum(p.numel() for p in model.parameters()) == s.total_params
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == s.trainable_params
    assert sum(b.numel() for b in model.buffers()) == s.buffers
    for node in graph.nodes:
        try:
            sub = model.get_submodule(node.name)
        except AttributeError:  # an op without a module (add, flatten, ...) owns nothing
            assert node.meta["params"] == node.meta["buffers"] == 0, node.name
            continue
        tied = 0
        if "tie" in node.meta:  # the shared tensor is counted at the layer that owns it
            tied = getattr(sub, node.meta["tie"][1]).numel()
        assert sum(p.numel() for p in sub.parameters()) == node.meta["params"] + tied, node.name
        assert sum(b.numel() for b in sub.buffers()) == node.meta["buffers"], node.name
