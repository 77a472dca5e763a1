"""Attention recognised by evaluation, where its layout cannot be followed step by step.

torch's nn.MultiheadAttention (torchvision's ViT uses it) computes sequence-first: the
batch-first input is transposed to [L, B, D], projected, cut into q, k, v by
Unsqueeze/Transpose/Squeeze/Gather, reshaped to [L, B·H, D/H] by sizes computed from the
batch, and merged back through a 2-D Gemm. :mod:`.onnx_attention`'s index run needs
constant reshapes of batch-first tensors; here instead the region between the input
[B, L, D] and the output [B, L, D] is delimited by data flow (the projections found by
walking back from q·kᵀ and ·v, the output projection by walking forward), its weights read
from the projections, and the region — evaluated with ONNX's reference evaluator on random
inputs of two batch sizes — must equal archc's attention with those weights for exactly one
choice of heads (and causal or not). Anything else keeps :mod:`.onnx_attention`'s error.
"""

from __future__ import annotations

import math

import numpy as np

PASSING = {"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Gather", "Split", "Slice", "Mul", "Div"}


def match(graph, scores, scaled, mask, softmax, av):
    """(Fused node, region) for an attention recognised by evaluation, or None."""
    from archc.importers.onnx_attention import FUSED, Fused, _check_closed, _name, weights

    projs = [_projection(graph, v) for v in (scores.inputs[0], scores.inputs[1], av.inputs[1])]
    if any(p is None for p in projs):
        return None
    weight, bias, nodes = _in_proj(projs)
    if weight is None:
        return None
    width = weight.shape[1]
    xq, xkv = _batch_first(graph, projs[0].x, width), _batch_first(graph, projs[1].x, width)
    end = _output(graph, av.outputs[0], width)
    if xq is None or xkv is None or end is None or projs[1].x != projs[2].x:
        return None
    out, y = end
    region = _region(graph, y, {xq[0], xkv[0]})
    if region is None or not {id(scores), id(av)} <= {id(n) for n in region}:
        return None
    try:
        _check_closed(graph, region, y)
    except Exception:  # noqa: BLE001  (the structural error says why)
        return None
    found = _evaluate(graph, xq, xkv, y, weight, bias, out)
    if found is None:
        return None
    heads, causal = found
    inputs = [xq[0]] if xq[0] == xkv[0] else [xq[0], xkv[0]]
    attrs = {"heads": heads, "causal": causal, "hint": _name(scores)} | weights(weight, bias, out.weight, out.bias)
    return Fused(FUSED, scores.name, inputs, [y], attrs), region


def _linear(graph, n):
    """A MatMul/Gemm by a constant (with the Add after a MatMul): (proj, the Add or None)."""
    from archc.importers.onnx_attention import _linear_at, _Proj

    if n.op == "Gemm" and not n.attrs.get("transA", 0) and graph.const(n.inputs[1]) is not None:
        b = graph.const(n.inputs[1]) * n.attrs.get("alpha", 1.0)
        w = b if n.attrs.get("transB", 0) else b.T
        c = graph.const(n.inputs[2]) if len(n.inputs) > 2 and n.inputs[2] else None
        bias = None if c is None else np.broadcast_to(c * n.attrs.get("beta", 1.0), (w.shape[0],))
        return _Proj(n.inputs[0], np.ascontiguousarray(w), bias, [n])
    return _linear_at(graph, n.outputs[0])


def _projection(graph, value):
    """Back from a q, k or v operand through the ops that cut it out to its projection."""
    for _ in range(32):
        n = graph.producer.get(value)
        if n is None:
            return None
        if n.op in ("MatMul", "Gemm", "Add"):
            return _linear(graph, n)
        if n.op not in PASSING:
            return None
        data = [i for i in n.inputs if i and graph.computed(i) and not shape_only(graph, i)]
        if len(data) != 1:
            return None
        value = data[0]
    return None


def shape_only(graph, value) -> bool:
    """A value computed from shapes and constants only: arithmetic on sizes the folder left
    as nodes (the batch times the heads; a head size read from a shape not known)."""
    n = graph.producer.get(value)
    return n is not None and (n.op == "Shape" or all(not i or not graph.computed(i) or shape_only(graph, i)
                                                    for i in n.inputs))


def _in_proj(projs):
    """The packed [3D, D] weight and [3D] bias of q, k, v (one packed projection, or k/v
    packed, or three), the nodes; (None, None, None) when they do not fit."""
    q, k, v = projs
    if q.nodes[0] is k.nodes[0] is v.nodes[0]:
        return q.weight, q.bias, q.nodes
    parts = [q] + ([k] if k.nodes[0] is v.nodes[0] else [k, v])
    weight = np.concatenate([p.weight for p in parts])
    if weight.shape[0] != 3 * weight.shape[1]:
        return None, None, None
    biases = [p.bias for p in parts]
    bias = None if all(b is None for b in biases) else np.concatenate(
        [b if b is not None else np.zeros(p.weight.shape[0], np.float32) for b, p in zip(biases, parts)])
    return weight, bias, [n for p in parts for n in p.nodes]


def _batch_first(graph, value, width):
    """Back through transposes to the [B, L, D] tensor the projection reads: (name, L)."""
    for _ in range(4):
        shape = graph.g.shapes.get(value)
        if shape is not None and len(shape) == 3 and shape[0] is None and shape[2] == width and shape[1]:
            return value, shape[1]
        n = graph.producer.get(value)
        if n is None or n.op != "Transpose":
            return None
        value = n.inputs[0]
    return None


def _output(graph, value, width):
    """Forward from ·v to the output projection and on to the [B, L, D] result: (proj, name)."""
    out = None
    for _ in range(32):
        shape = graph.g.shapes.get(value)
        if out is not None and shape is not None and len(shape) == 3 and shape[0] is None and shape[2] == width:
            return out, value
        n = graph.only_reader(value)
        if n is None:
            return None
        if out is None and n.op in ("MatMul", "Gemm"):
            out = _linear(graph, n)
            if out is None or out.weight.shape != (width, width):
                return None
            value = out.nodes[-1].outputs[0]
        elif n.op in ("Reshape", "Transpose", "Squeeze", "Unsqueeze") and n.inputs[0] == value:
            value = n.outputs[0]
        else:
            return None
    return None


def _region(graph, y, inputs):
    """The folded nodes that compute ``y`` from ``inputs`` (and constants)."""
    seen, todo = {}, [y]
    while todo:
        v = todo.pop()
        n = graph.producer.get(v)
        if v in inputs or n is None or id(n) in seen:
            continue
        seen[id(n)] = n
        todo += [i for i in n.inputs if i and graph.computed(i)]
    nodes = list(seen.values())
    return nodes if all(i in inputs or not graph.computed(i) or graph.producer.get(i) is not None
                        for n in nodes for i in n.inputs if i) else None


def _evaluate(graph, xq, xkv, y, weight, bias, out):
    """The one (heads, causal) for which archc's attention computes the region's values."""
    width = weight.shape[1]
    rng = np.random.default_rng(0)
    runs = []
    for batch in (2, 3):
        feeds = {xq[0]: rng.standard_normal((batch, xq[1], width)).astype(np.float32)}
        feeds[xkv[0]] = feeds.get(xkv[0], rng.standard_normal((batch, xkv[1], width)).astype(np.float32))
        got = _run_region(graph, feeds, y)
        if got is None:
            return None
        runs.append((feeds[xq[0]], feeds[xkv[0]], got))
    choices = [(h, c) for h in range(1, width + 1) if width % h == 0
               for c in ((False, True) if xq[1] == xkv[1] else (False,))]
    fits = [(h, c) for h, c in choices if all(
        np.abs(_reference(a, b, weight, bias, out, h, c) - got).max() <= 1e-4 * max(1.0, np.abs(got).max())
        for a, b, got in runs)]
    return fits[0] if len(fits) == 1 else None


def _run_region(graph, feeds, y):
    """``y`` computed by ONNX's reference evaluator from ``feeds`` over the file's own nodes
    (shape arithmetic included, so that the batch sizes are really those of the feeds)."""
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    made = {o: p for p in graph.g.nodes for o in p.output}
    needed, picked, todo = set(), {}, [y]
    while todo:
        v = todo.pop()
        if v in needed or v in feeds:
            continue
        needed.add(v)
        p = made.get(v)
        if p is not None:
            picked[id(p)] = p
            todo += [i for i in p.input if i]
        elif v not in graph.g.consts or graph.g.consts[v].dtype == object:
            return None
    protos = [p for p in graph.g.nodes if id(p) in picked]
    inits = [numpy_helper.from_array(graph.g.consts[v], v) for v in needed if v not in made and v not in feeds]
    inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in feeds]
    model = helper.make_model(helper.make_graph(protos, "region", inputs,
                                                [helper.make_tensor_value_info(y, TensorProto.FLOAT, None)], inits),
                              opset_imports=[helper.make_opsetid("", graph.g.opset)])
    try:
        return ReferenceEvaluator(model).run(None, feeds)[0]
    except Exception:  # noqa: BLE001  (not evaluable: not recognised)
        return None


def _reference(xq, xkv, w, b, out, heads, causal):
    """archc's attention (nn.MultiheadAttention's arithmetic) in float64."""
    d = w.shape[1]
    b = np.zeros(3 * d) if b is None else b
    proj = [x.astype(np.float64) @ w[i * d:(i + 1) * d].T + b[i * d:(i + 1) * d]
            for i, x in enumerate((xq, xkv, xkv))]
    q, k, v = (t.reshape(t.shape[0], t.shape[1], heads, d // heads).transpose(0, 2, 1, 3) for t in proj)
    s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d // heads)
    if causal:
        s = s + np.triu(np.full(s.shape[-2:], -np.inf), 1)
    p = np.exp(s - s.max(-1, keepdims=True))
    o = (p / p.sum(-1, keepdims=True)) @ v
    o = o.transpose(0, 2, 1, 3).reshape(xq.shape[0], xq.shape[1], d)
    return o @ out.weight.T + (0 if out.bias is None else out.bias)

