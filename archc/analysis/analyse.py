"""Static analysis of a graph IR: parameters, MACs, receptive field and memory per node.

Shapes were inferred while the graph was built (archc/spec/expand.py); this pass adds the
counts to ``node.meta`` and the totals to a :class:`Summary`. A count that depends on an
unknown shape stays ``None`` ("unknown"), never 0.

Conventions (docs/spec.md, "What is counted"):

* params — elements of ``model.parameters()``; trainable unless the layer is frozen;
* buffers — elements of ``model.buffers()`` (batch norm's running statistics and counter),
  reported as non-trainable;
* MACs — multiply-accumulates of convolutions and linear layers, bias excluded: the
  convention of torchvision's published GFLOPS (resnet50: 4.09 G);
* memory — float32: weight bytes = 4 × (params + buffers), activation bytes = 4 × the
  output elements of every node for one sample.
"""

from __future__ import annotations

from dataclasses import dataclass

from archc.analysis.receptive_field import GLOBAL, RF, apply_window, identity_rf, merge
from archc.ir.graph import INPUT, Graph
from archc.ops.registry import get_op, numel

BYTES_PER_VALUE = 4


@dataclass
class Summary:
    name: str
    input_shape: tuple
    output_shapes: list
    total_params: int | None
    trainable_params: int | None
    non_trainable: int | None
    buffers: int | None
    frozen_params: int | None
    macs: int | None
    weight_bytes: int | None
    activation_bytes: int | None
    nodes: int


def _sum(values):
    values = list(values)
    return None if any(v is None for v in values) else sum(values)


def analyse(graph: Graph) -> Summary:
    """Fill ``meta`` of every node with params, buffers, macs, rf, activation bytes."""
    spatial = len(graph.input_shape) - 1  # (C, L), (C, H, W), (C, D, H, W); token ids have none
    rfs: dict[str, RF] = {INPUT: identity_rf(spatial) if spatial >= 1 and graph.input_dtype == "float32"
                          else GLOBAL}
    # the shapes seen so far, by name: graph.shape_of's index lookup, without a method call
    # per input (a 10,000-node graph reads ~12,500 inputs); a name not seen yet asks the graph
    shapes = {INPUT: graph.input_shape}
    for node in graph.nodes:
        op = get_op(node.op)
        ins = [shapes[i] if i in shapes else graph.shape_of(i) for i in node.inputs]
        out = shapes[node.name] = node.meta.get("shape")
        known = out is not None and all(s is not None for s in ins)
        m = node.meta
        if known:
            m["params"], m["buffers"] = op.params(node.attrs, ins, out)
            if "tie" in m:  # a shared tensor is counted once, at the layer that owns it
                m["params"] -= numel(op.tied_weight(node.attrs, ins)[1])
            m["macs"] = op.macs(node.attrs, ins, out)
            m["activation_bytes"] = numel(out) * BYTES_PER_VALUE
        else:
            m["params"] = m["buffers"] = m["macs"] = m["activation_bytes"] = None
        rfs[node.name] = m["rf"] = _rf(op, node, ins, out, rfs) if known else None
    nodes = graph.nodes
    params = _sum(n.meta["params"] for n in nodes)
    buffers = _sum(n.meta["buffers"] for n in nodes)
    frozen = _sum(n.meta["params"] if not n.meta.get("trainable", True) else 0 for n in nodes)
    trainable = None if params is None or frozen is None else params - frozen
    non_trainable = None if buffers is None or frozen is None else buffers + frozen
    weights = None if params is None or buffers is None else (params + buffers) * BYTES_PER_VALUE
    return Summary(graph.name, graph.input_shape, [graph.shape_of(o) for o in graph.outputs],
                   params, trainable, non_trainable, buffers, frozen,
                   _sum(n.meta["macs"] for n in nodes), weights,
                   _sum(n.meta["activation_bytes"] for n in nodes), len(nodes))


def _rf(op, node, ins, out, rfs) -> RF | None:
    parents = [rfs.get(i) for i in node.inputs]
    if any(p is None for p in parents):
        return None
    if getattr(op, "rf_first_input_only", False):
        parents = parents[:1]
    base = merge(parents) if len(parents) > 1 else parents[0]
    effect = op.rf(node.attrs, ins, out)
    if effect == "global" or base.is_global:
        return GLOBAL
    if effect is None:
        return base
    if len(base.size) != len(effect):
        return GLOBAL
    return apply_window(base, effect)
