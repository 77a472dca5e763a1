"""Fold what an exporter writes that is not part of the architecture.

* ``Identity``, inference ``Dropout``, float-to-float ``Cast`` and a ``Concat`` of one tensor
  (the TorchScript exporter writes torch.cat([x]) so: densenet's first dense layer) pass
  their input on: the readers of their output read the input instead;
* ``Constant`` nodes become constant tensors;
* shape arithmetic is evaluated: ``Shape`` of a value whose shape is known (the batch
  stays a symbol, :data:`BATCH`), then ``Gather``, ``Unsqueeze``, ``Concat``, ``Slice`` ...
  on it, so ``x.flatten(1)``'s ``Shape→Gather→Unsqueeze→Concat→Reshape`` chain ends as a
  Reshape with a constant target ``[BATCH, -1]``;
* any other node whose inputs are all constant (a weight transposed or scaled at export)
  is computed once with ONNX's reference evaluator;
* nodes no output depends on are left out.

What remains is the computation on the input, in order, as :class:`Node` records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from archc.importers.onnx_read import OnnxGraph


class _Batch:
    """The batch size in folded shape arithmetic: unknown, but known to be the batch."""

    def __repr__(self):
        return "BATCH"


BATCH = _Batch()
PASS_THROUGH = {"Identity", "Dropout"}
# evaluated by numpy even when a value holds BATCH (object arrays)
SYMBOLIC = {"Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast", "Reshape", "Equal", "Where"}
NOT_FOLDED = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
              "Bernoulli"}
FLOATS = {1, 10, 11, 16}  # float32, float16, double, bfloat16
STAND_IN = 7919  # the batch in per-node shape inference: a prime no layer size is a multiple of


@dataclass
class Node:
    op: str
    name: str
    inputs: list
    outputs: list
    attrs: dict = field(default_factory=dict)

    def label(self) -> str:
        return f"node {self.name or self.outputs[0]!r} ({self.op})"


def fold(g: OnnxGraph) -> list[Node]:
    """The graph's computing nodes, inputs renamed through the folded pass-throughs;
    constants found on the way are added to ``g.consts``."""
    from onnx import helper

    alias: dict[str, str] = {}
    kept = []
    for proto in g.nodes:
        node = Node(proto.op_type, proto.name, [alias.get(i, i) for i in proto.input], list(proto.output),
                    {a.name: helper.get_attribute_value(a) for a in proto.attribute})
        if proto.domain not in ("", "ai.onnx"):
            kept.append(node)  # a custom domain's op: the op table names it in its error
        elif node.op in PASS_THROUGH or _same_float_cast(node, g) or (node.op == "Concat" and len(node.inputs) == 1):
            alias[node.outputs[0]] = node.inputs[0]
        elif node.op == "Constant":
            g.consts[node.outputs[0]] = _constant(node)
        elif node.op == "Shape" and _known(g.shapes.get(node.inputs[0])):
            g.consts[node.outputs[0]] = _plain(_shape(g.shapes[node.inputs[0]], node.attrs))
        elif not (node.op not in NOT_FOLDED and all(not i or i in g.consts for i in node.inputs)
                  and _evaluate(node, proto, g)):
            kept.append(node)
            _infer_missing(node, proto, g)
    outputs = [alias.get(o, o) for o in g.outputs]
    g.outputs = outputs
    return _live(kept, outputs)


def _infer_missing(node: Node, proto, g: OnnxGraph) -> None:
    """Shapes ONNX's inference of the whole file left unknown, inferred again for this node
    now that the shape arithmetic before it is folded (TorchScript's exports slice and
    reshape by sizes computed from Shape nodes, which the file's inference could not follow).
    The batch goes in as the prime :data:`STAND_IN` and every dimension it divides comes
    back unknown, so a reshape to [B·H, L, D/H] stays batch-dependent."""
    from onnx import defs, helper, numpy_helper, shape_inference

    if all(_known(g.shapes.get(o)) for o in node.outputs if o):
        return
    types, data = {}, {}
    for i in (i for i in node.inputs if i):
        c = g.consts.get(i)
        if c is not None:
            c = np.array([STAND_IN if v is BATCH else v for v in c.flat], dtype=np.int64).reshape(c.shape) \
                if c.dtype == object else c
            data[i] = numpy_helper.from_array(c, i)
            types[i] = helper.make_tensor_type_proto(data[i].data_type, c.shape)
        elif g.shapes.get(i) is not None and g.elem_types.get(i) and None not in g.shapes[i][1:]:
            types[i] = helper.make_tensor_type_proto(g.elem_types[i], [STAND_IN, *g.shapes[i][1:]])
        else:
            return
    renamed = helper.make_node(node.op, node.inputs, node.outputs, name=node.name)
    renamed.attribute.extend(proto.attribute)
    try:
        inferred = shape_inference.infer_node_outputs(defs.get_schema(node.op, g.opset), renamed, types, data)
    except Exception:  # noqa: BLE001  (inference refused: the op table says what it needs)
        return
    for name, t in inferred.items():
        t = t.tensor_type
        if t.HasField("shape") and not _known(g.shapes.get(name)):
            g.shapes[name] = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value % STAND_IN else None
                                   for d in t.shape.dim)
            g.elem_types[name] = t.elem_type


def _same_float_cast(node: Node, g: OnnxGraph) -> bool:
    return (node.op == "Cast" and node.attrs.get("to") == g.elem_types.get(node.inputs[0])
            and node.attrs.get("to") in FLOATS)


def _known(shape) -> bool:
    """A shape whose dimensions are known except the batch."""
    return shape is not None and len(shape) >= 1 and all(d is not None for d in shape[1:])


def _shape(shape, attrs) -> np.ndarray:
    dims = [BATCH if d is None else d for d in shape]
    start, end = attrs.get("start", 0), attrs.get("end", len(dims))
    return np.array(dims[start:end], dtype=object)


def _constant(node: Node) -> np.ndarray:
    from onnx import numpy_helper

    (key, value), = node.attrs.items()
    if key == "value":
        return numpy_helper.to_array(value)
    return np.array(value)  # value_float(s), value_int(s)


def _evaluate(node: Node, proto, g: OnnxGraph) -> bool:
    """Compute a node of constants into ``g.consts``; False when arithmetic on the batch
    symbol is beyond :func:`_symbolic` (the node stays, and the op table explains)."""
    args = [g.consts[i] if i else None for i in node.inputs]
    if any(a is not None and a.dtype == object for a in args):
        if node.op not in SYMBOLIC:
            return False
        values = _symbolic(node, args)
    else:
        from onnx.reference import ReferenceEvaluator

        # keyed by the file's names: an input renamed through a pass-through keeps its name in proto
        feeds = {name: g.consts[i] for name, i in zip(proto.input, node.inputs) if i}
        values = ReferenceEvaluator(proto).run(None, feeds)
    for name, value in zip(node.outputs, values):
        g.consts[name] = _plain(np.asarray(value))
    return True


def _plain(value: np.ndarray) -> np.ndarray:
    """Shape arithmetic that no longer holds the batch as int64, so that the nodes computing
    on it (attention's 1/sqrt(head size), a causal mask's size) fold too."""
    if value.dtype == object and not any(v is BATCH for v in value.flat):
        return value.astype(np.int64)
    return value


def _axes(node: Node, args) -> list:
    if len(args) > 1 and args[1] is not None:
        return [int(a) for a in np.ravel(args[1])]
    return list(node.attrs.get("axes", []))


def _symbolic(node: Node, args) -> list:
    """numpy on object arrays holding BATCH: the few ops a shape chain uses."""
    x = args[0]
    if node.op == "Gather":
        return [np.take(x, args[1].astype(np.int64), axis=node.attrs.get("axis", 0))]
    if node.op == "Unsqueeze":
        for a in sorted(_axes(node, args)):
            x = np.expand_dims(x, a if a >= 0 else a + x.ndim + 1)
        return [x]
    if node.op == "Squeeze":
        axes = _axes(node, args)
        return [np.squeeze(x, axis=tuple(axes)) if axes else np.squeeze(x)]
    if node.op == "Concat":
        return [np.concatenate([np.atleast_1d(a) for a in args], axis=node.attrs.get("axis", 0))]
    if node.op == "Slice":
        return [_slice(x, args)]
    if node.op == "Reshape":
        return [x.reshape([int(v) for v in args[1]])]
    if node.op == "Equal":  # TorchScript's expand(B, -1, -1): which sizes are -1 (the batch never is)
        a, b = np.broadcast_arrays(x, args[1])
        return [np.array([u is not BATCH and v is not BATCH and u == v for u, v in zip(a.flat, b.flat)],
                         dtype=bool).reshape(a.shape)]
    if node.op == "Where":
        return [np.where(x.astype(bool), args[1], args[2])]
    return [x]  # Cast: a shape stays a shape


def _slice(x, args):
    starts, ends = np.ravel(args[1]), np.ravel(args[2])
    axes = np.ravel(args[3]) if len(args) > 3 and args[3] is not None else range(len(starts))
    steps = np.ravel(args[4]) if len(args) > 4 and args[4] is not None else [1] * len(starts)
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[int(a)] = slice(int(s), int(e), int(st))
    return x[tuple(index)]


def _live(nodes: list[Node], outputs: list[str]) -> list[Node]:
    """The nodes some output depends on, in their order."""
    needed, live = set(outputs), []
    for node in reversed(nodes):
        if any(o in needed for o in node.outputs):
            live.append(node)
            needed.update(i for i in node.inputs if i)
    return live[::-1]
