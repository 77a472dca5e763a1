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

import torch

from archc.backends.torch.build import build


def run(model, x):
    with torch.no_grad():
        return model(x)


def check_graph(graph, batch: int = 2, seed: int = 0):
    """Assert a built module matches ``graph``'s analysis; returns the normal module."""
    probe = build(graph, seed=seed, return_all=True).eval()
    model = build(graph, seed=seed).eval()
    x = torch.randn(batch, *graph.input_shape, generator=torch.Generator().manual_seed(seed))
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
        assert sum(p.numel() for p in sub.parameters()) == node.meta["params"], node.name
        assert sum(b.numel() for b in sub.buffers()) == node.meta["buffers"], node.name
