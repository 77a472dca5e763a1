"""Multi-head attention recovered from an exported graph, as one archc ``attention`` layer.

Exporters write attention (torch's ``F.scaled_dot_product_attention``, which archc's op and
nn.MultiheadAttention call) as some twenty nodes: the input projections (MatMul + Add, one
packed [D, 3D] product split three ways, or one per q, k, v), the heads cut out
(Reshape [B, L, H, D/H], Transpose), kᵀ, the scale (a Mul on q and on kᵀ by
sqrt(1/sqrt(D/H)) each, or one Mul/Div of the scores), q·kᵀ (MatMul), a causal mask
(a constant added), Softmax, ·v (MatMul), the heads merged (Transpose, Reshape) and the
output projection (MatMul + Add). :func:`recognise` runs after folding, anchored on each
MatMul of two computed tensors whose product goes through Softmax into another MatMul,
and replaces the whole subgraph by one node that the op table maps to ``attention``, with
the weights in nn.MultiheadAttention's layout (``in_proj_weight`` [3D, D] of q, k, v rows,
``in_proj_bias``, ``out_proj.weight``, ``out_proj.bias``).

Nothing is taken on trust from the exporter's layout: the Reshape/Transpose chains are run
on an index tensor of two samples (numpy), which must come out exactly as the heads are cut
(and merged) — whatever the exporter's route (TorchScript transposes k in one step, dynamo
reshapes to [B·H, L, D/H] and back). The scale must be 1/sqrt(D/H), the mask exactly
causal or absent, every value inside read only inside. A candidate that differs is an
error at its q·kᵀ MatMul saying what differs and what archc would need.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from archc.importers import onnx_attention_eval
from archc.importers.onnx_fold import BATCH, Node
from archc.importers.onnx_table import Layer, Unsupported, maps

FUSED = "archc.attention"  # the op type of a recognised attention: never an ONNX op type
SAMPLES = 2  # the index tensors' batch: a chain that mixes samples cannot pass unnoticed
VIEWS = {"Reshape", "Transpose"}
SCALES = {"Mul", "Div"}
MASKED = -1e4  # a mask value at or below this is "never attend" (exporters write -inf or float32's min)


@dataclass
class Fused(Node):
    """A recognised attention (``attrs``: heads, causal, bias, tensors, hint) or, with
    ``attrs["error"]``, a candidate that differs; ``shown`` is the op type errors name."""

    shown: str = "MatMul"

    def label(self) -> str:
        return f"node {self.name or self.outputs[0]!r} ({self.shown})"


@dataclass
class _Graph:
    """The folded nodes with who defines and who reads each value."""

    g: object
    nodes: list
    producer: dict = field(default_factory=dict)
    readers: dict = field(default_factory=lambda: defaultdict(list))

    def __post_init__(self):
        for n in self.nodes:
            for o in n.outputs:
                self.producer[o] = n
            for i in n.inputs:
                self.readers[i].append(n)

    def const(self, name):
        c = self.g.consts.get(name) if name else None
        return None if c is None or c.dtype == object and any(v is BATCH for v in c.flat) else c

    def only_reader(self, value):
        readers = self.readers.get(value, [])
        return readers[0] if len(readers) == 1 and value not in self.g.outputs else None

    def computed(self, name) -> bool:
        return name not in self.g.consts


def recognise(g, nodes: list[Node]) -> list[Node]:
    """``nodes`` with each attention subgraph replaced by one :class:`Fused` node (at the
    place of its last node, so every input is defined before it)."""
    graph = _Graph(g, nodes)
    replace: dict[int, Node] = {}
    dropped: set[int] = set()
    for node in nodes:
        if id(node) in dropped:
            continue
        if node.op == "Attention":
            found, core = _try(lambda: _onnx_attention(graph, node)), []
        elif node.op == "MatMul" and all(graph.computed(i) for i in node.inputs) and (
                tail := _to_softmax(graph, node)) is not None:
            found, core = _try(lambda: _match(graph, node, *tail), lambda: onnx_attention_eval.match(
                graph, node, *tail)), [*tail[0], *tail[1:]]
        else:
            continue  # not attention: a MatMul of two computed tensors says what it is
        if isinstance(found, Unsupported):  # said once, at q·kᵀ: the scale, mask, softmax and ·v go with it
            replace[id(node)] = Fused(FUSED, node.name, node.inputs, node.outputs,
                                      {"error": (found.message, found.need)}, shown=node.op)
            dropped.update(id(n) for n in core if n is not None)
            continue
        fused, region = found
        last = max(region, key=lambda n: nodes.index(n))
        replace[id(last)] = fused
        dropped.update(id(n) for n in region if n is not last)
    return [replace.get(id(n), n) for n in nodes if id(n) not in dropped]


def _try(match, fallback=None):
    """``match()``'s (Fused, region), else ``fallback()``'s when it finds one (a layout not
    followed step by step, recognised by evaluation), else the first Unsupported."""
    try:
        return match()
    except Unsupported as exc:
        found = fallback() if fallback else None
        return exc if found is None else found


def _to_softmax(graph: _Graph, scores: Node):
    """From q·kᵀ forward: (scale nodes, mask node or None, Softmax, ·v MatMul), or None
    when the product does not reach a Softmax feeding a MatMul."""
    scaled, mask, value = [], None, scores.outputs[0]
    while (n := graph.only_reader(value)) is not None and n.op != "Softmax":
        other = [i for i in n.inputs if i != value]
        if n.op in SCALES and len(other) == 1 and n.inputs[0] == value and _scalar(graph, other[0]) is not None:
            scaled.append(n)
        elif n.op == "Add" and mask is None and len(other) == 1 and (
                graph.const(other[0]) is not None or onnx_attention_eval.shape_only(graph, other[0])):
            mask = n  # constant, or made from the shapes (TorchScript's is_causal): then checked by evaluation
        else:
            return None
        value = n.outputs[0]
    if n is None:
        return None
    av = [r for r in graph.readers.get(n.outputs[0], []) if r.op == "MatMul" and r.inputs[0] == n.outputs[0]
          and graph.computed(r.inputs[1])]  # other readers are the closure check's to name
    return (scaled, mask, n, av[0]) if len(av) == 1 else None


def _scalar(graph: _Graph, name):
    c = graph.const(name)
    return float(c.reshape(-1)[0]) if c is not None and c.size == 1 and c.dtype.kind == "f" else None


def _match(graph: _Graph, scores: Node, scaled, mask, softmax, av):
    """The attention around ``scores`` as (Fused node, the nodes it replaces)."""
    _check_softmax(graph, softmax)
    scale = math.prod(_factor(graph, n) for n in scaled)
    return _around(graph, scores, [scores, *scaled, *([mask] if mask else []), softmax, av],
                   (scores.inputs[0], scores.inputs[1], av.inputs[1]), True, scale, mask, av.outputs[0])


def _onnx_attention(graph: _Graph, node: Node):
    """ONNX's own Attention op (opset 23; the dynamo exporter's form of
    scaled_dot_product_attention there) on q, k, v cut into heads [B, H, L, D/H]."""
    extra = [i for i in node.inputs[3:] if i] + [o for o in node.outputs[1:] if o and graph.readers.get(o)]
    if extra or len(graph.g.shapes.get(node.inputs[0]) or ()) != 4:
        raise Unsupported("it takes a mask or a key/value cache, gives more than its output, or reads "
                          "q, k, v as [B, L, D]", "attention without those (archc's has only `causal`)")
    if node.attrs.get("softcap", 0.0):
        raise Unsupported(f"it caps its scores (softcap {node.attrs['softcap']:g})", "attention with a softcap")
    return _around(graph, node, [node], node.inputs[:3], False, node.attrs.get("scale"), None, node.outputs[0],
                   causal=bool(node.attrs.get("is_causal", 0)))


def _around(graph: _Graph, anchor: Node, region: list, qkv, k_transposed: bool, scale, mask, core: str,
            causal: bool | None = None):
    """The projections, heads, scale, mask and output projection around an attention core
    (q·kᵀ → Softmax → ·v, or ONNX's Attention) whose result is ``core``. ``scale`` None:
    the core's own 1/sqrt(D/H)."""
    (q_src, q_ops, q_scale), (k_src, k_ops, k_scale), (v_src, v_ops, v_scale) = (_back(graph, v) for v in qkv)
    if v_scale != 1.0:
        raise Unsupported(f"its values are scaled by {v_scale:g}", "attention with scaled values")
    heads, rank = _heads(graph, q_src, q_ops, "queries")
    for src, ops, what, kt in ((k_src, k_ops, "keys", k_transposed), (v_src, v_ops, "values", False)):
        if _heads(graph, src, ops, what, kt) != (heads, rank):
            raise Unsupported(f"its {what} are cut into other heads than its queries", "the same heads for q, k and v")
    (lq, width), (lk, _) = _tokens(graph, q_src, "queries"), _tokens(graph, k_src, "keys")
    scale = 1 / math.sqrt(width // heads) if scale is None else scale
    _check_scale(scale * q_scale * k_scale, width // heads)
    if causal is None:
        causal = _causal(graph, mask, lq, lk) if mask else False
    elif causal and lq != lk:
        raise Unsupported("its causal mask is not square", "causal attention of as many queries as keys")
    out_ops, merged = _forward(graph, core, lq, width, heads, rank)
    out_proj, out_nodes = _out_projection(graph, merged, width)
    projections = [_projection(graph, s, width) for s in (q_src, k_src, v_src)]
    region += q_ops + k_ops + v_ops + out_ops + out_nodes + [n for p in projections for n in p.nodes]
    region = list({id(n): n for n in region}.values())
    _check_closed(graph, region, out_nodes[-1].outputs[0])
    return _fused(anchor, projections, out_proj, out_nodes[-1].outputs[0], heads, causal), region


# --------------------------------------------------------------------------- the chains


def _factor(graph: _Graph, n: Node) -> float:
    """What a Mul/Div by a scalar constant multiplies by."""
    c = next(v for v in (_scalar(graph, i) for i in n.inputs) if v is not None)
    return 1.0 / c if n.op == "Div" else c


def _step_back(graph: _Graph, value: str):
    """The view or scalar scale that defines ``value`` and the value it reads, or None."""
    n = graph.producer.get(value)
    if n is None:
        return None
    if n.op == "Transpose" or (n.op == "Reshape" and n.inputs[1] in graph.g.consts):
        return n, n.inputs[0]
    if n.op in SCALES and len(n.inputs) == 2:
        data = [i for i in n.inputs if graph.computed(i)]
        if len(data) == 1 and (n.op == "Mul" or n.inputs[0] == data[0]) and _scalar(
                graph, next(i for i in n.inputs if i != data[0])) is not None:
            return n, data[0]
    return None


def _back(graph: _Graph, value: str):
    """From a MatMul's input back to the projection it reshapes: (that value, the view
    nodes in forward order, the product of the scalar scales on the way)."""
    ops, scale = [], 1.0
    while (step := _step_back(graph, value)) is not None:
        n, value = step
        if n.op in SCALES:
            scale *= _factor(graph, n)
        ops.append(n)
    return value, ops[::-1], scale


def _run(graph: _Graph, ops: list[Node], x: np.ndarray) -> np.ndarray:
    """The views ``ops`` applied to ``x`` (the batch being SAMPLES); scales pass."""
    for n in ops:
        if n.op == "Reshape":
            target = [SAMPLES if v is BATCH else int(v) for v in np.ravel(graph.g.consts[n.inputs[1]])]
            if not n.attrs.get("allowzero", 0):
                target = [x.shape[i] if v == 0 else v for i, v in enumerate(target)]
            x = x.reshape(target)
        elif n.op == "Transpose":
            x = x.transpose(n.attrs.get("perm", list(range(x.ndim))[::-1]))
    return x


def _tokens(graph: _Graph, value: str, what: str) -> tuple[int, int]:
    shape = graph.g.shapes.get(value)
    if shape is None or len(shape) != 3 or None in shape[1:]:
        raise Unsupported(f"its {what} ({value}) are not a sequence [B, L, D] of known size (shape "
                          f"{['?' if d is None else d for d in shape] if shape else 'unknown'})",
                          "attention over a sequence of fixed length and width")
    return shape[1], shape[2]


def _cut(length: int, width: int, heads: int, rank: int) -> np.ndarray:
    """Indices of a [B, L, D] tensor cut into heads: [B, H, L, D/H], or [B·H, L, D/H]."""
    x = np.arange(SAMPLES * length * width).reshape(SAMPLES, length, heads, width // heads).transpose(0, 2, 1, 3)
    return x if rank == 4 else x.reshape(SAMPLES * heads, length, width // heads)


def _heads(graph: _Graph, src: str, ops: list[Node], what: str, transposed: bool = False) -> tuple[int, int]:
    """(heads, rank) of a chain that cuts ``src`` into heads as attention does."""
    length, width = _tokens(graph, src, what)
    try:
        y = _run(graph, ops, np.arange(SAMPLES * length * width).reshape(SAMPLES, length, width))
    except ValueError:
        y = None
    if y is not None and y.ndim in (3, 4) and y.shape[0] % SAMPLES == 0:
        heads = y.shape[1] if y.ndim == 4 else y.shape[0] // SAMPLES
        if heads and width % heads == 0:
            want = _cut(length, width, heads, y.ndim)
            if transposed:
                want = np.swapaxes(want, -1, -2)
            if y.shape == want.shape and (y == want).all():
                return heads, y.ndim
    layout = "[B, H, D/H, L] (kᵀ)" if transposed else "[B, H, L, D/H]"
    raise Unsupported(f"its {what} are not cut into heads as attention's are ({src} [B, L, D] to {layout})",
                      "attention whose heads are consecutive slices of the width")


def _forward(graph: _Graph, value: str, length: int, width: int, heads: int, rank: int):
    """From ·v's output to the heads merged back into [B, L, D]: (view nodes, that value)."""
    ops = []
    while (n := graph.only_reader(value)) is not None and (
            n.op == "Transpose" or n.op == "Reshape" and n.inputs[0] == value and n.inputs[1] in graph.g.consts):
        ops.append(n)
        value = n.outputs[0]
    try:
        y = _run(graph, ops, _cut(length, width, heads, rank))
    except ValueError:
        y = None
    if y is None or y.shape != (SAMPLES, length, width) or not (y == np.arange(y.size).reshape(y.shape)).all():
        raise Unsupported("its heads are not merged back as attention's are ([B, H, L, D/H] to [B, L, D])",
                          "attention whose output concatenates the heads in order")
    return ops, value


# --------------------------------------------------------------------------- checks


def _check_softmax(graph: _Graph, softmax: Node) -> None:
    rank = len(graph.g.shapes.get(softmax.inputs[0]) or (4,))
    if softmax.attrs.get("axis", -1) not in (-1, rank - 1):
        raise Unsupported(f"its softmax runs along axis {softmax.attrs['axis']}, not over the keys",
                          "attention normalised over the keys (the last axis)")


def _check_scale(scale: float, head_size: int) -> None:
    want = 1 / math.sqrt(head_size)
    if not math.isclose(scale, want, rel_tol=1e-5):
        raise Unsupported(f"its scores are scaled by {scale:.6g}, where archc's attention scales by "
                          f"1/sqrt({head_size}) = {want:.6g}", "an attention op with a `scale` attribute")


def _causal(graph: _Graph, mask: Node, lq: int, lk: int) -> bool:
    """True for a constant causal mask (0 on and below the diagonal, -inf or a large
    negative number above), False for one that is all zeros."""
    m = next((graph.const(i) for i in mask.inputs if graph.const(i) is not None), None)
    if m is None:
        raise Unsupported("the mask it adds to the scores is computed in the graph",
                          "a constant causal mask, or a layout archc can evaluate")
    while m.ndim > 2 and m.shape[0] == 1:
        m = m[0]
    if m.shape != (lq, lk):
        raise Unsupported(f"it adds a mask of shape {list(m.shape)} to the {lq}×{lk} scores",
                          "an attention mask input (archc's attention has only `causal`)")
    if not m.any():
        return False
    above = np.triu(np.ones((lq, lk), dtype=bool), 1)
    if lq == lk and (m[~above] == 0).all() and (m[above] <= MASKED).all():
        return True
    raise Unsupported("the mask it adds to the scores is not causal (0 on and below the diagonal, "
                      "-inf above)", "an attention mask input (archc's attention has only `causal`)")


def _check_closed(graph: _Graph, region: list[Node], output: str) -> None:
    inside = {id(n) for n in region}
    for n in region:
        for o in n.outputs:
            if o == output or not o:
                continue
            outside = [r for r in graph.readers.get(o, []) if id(r) not in inside]
            if o in graph.g.outputs or outside:
                by = outside[0].label() if outside else "the graph's outputs"
                raise Unsupported(f"its intermediate value {o!r} is also read outside the attention (by {by})",
                                  "attention whose inner values stay inside it")


# --------------------------------------------------------------------------- projections


@dataclass
class _Proj:
    x: str  # the tensor projected
    weight: np.ndarray  # [out, in], torch's layout
    bias: np.ndarray | None
    nodes: list


def _linear_at(graph: _Graph, value: str):
    """``value`` as x·W (+ b) with constant W and b: a _Proj, or None."""
    n = graph.producer.get(value)
    bias, nodes = None, []
    if n is not None and n.op == "Add":
        consts = [graph.const(i) for i in n.inputs]
        data = [i for i, c in zip(n.inputs, consts) if c is None]
        if len(data) != 1:
            return None
        bias, nodes = next(c for c in consts if c is not None), [n]
        n = graph.producer.get(data[0])
    if n is None or n.op != "MatMul" or not graph.computed(n.inputs[0]):
        return None
    w = graph.const(n.inputs[1])
    if w is None or w.ndim != 2 or bias is not None and bias.size != w.shape[1]:
        return None
    return _Proj(n.inputs[0], np.ascontiguousarray(w.T), None if bias is None else bias.reshape(-1), [n] + nodes)


def _rows(graph: _Graph, n: Node, src: str, full: int):
    """The rows of a packed projection that the Split/Slice ``n`` gives as ``src``."""
    rank = len(graph.g.shapes.get(n.inputs[0]) or (3,))
    if n.op == "Split":
        axis = n.attrs.get("axis", 0)
        given = graph.const(n.inputs[1]) if len(n.inputs) > 1 and n.inputs[1] else None
        sizes = [int(v) for v in np.ravel(given)] if given is not None else list(n.attrs.get("split", []))
        sizes = sizes or [full // len(n.outputs)] * len(n.outputs)
        i = n.outputs.index(src)
        start, end = sum(sizes[:i]), sum(sizes[: i + 1])
    else:  # Slice
        args = [graph.const(i) if i else None for i in n.inputs[1:5]] + [None] * 4
        if any(a is None for a in args[:2]) or np.size(args[0]) != 1:
            return None
        axis = int(np.ravel(args[2])[0]) if args[2] is not None else 0
        if args[3] is not None and int(np.ravel(args[3])[0]) != 1:
            return None
        start, end = int(np.ravel(args[0])[0]), min(int(np.ravel(args[1])[0]), full)
    return slice(start, end) if axis in (-1, rank - 1) else None


def _projection(graph: _Graph, src: str, width: int) -> _Proj:
    """The projection of q, k or v: rows of a packed x·W (+ b) cut by Split/Slice, or its own."""
    n = graph.producer.get(src)
    proj = None
    if n is not None and n.op in ("Split", "Slice"):
        packed = _linear_at(graph, n.inputs[0])
        rows = _rows(graph, n, src, packed.weight.shape[0]) if packed else None
        if rows is not None:
            bias = None if packed.bias is None else packed.bias[rows]
            proj = _Proj(packed.x, packed.weight[rows], bias, packed.nodes + [n])
    else:
        proj = _linear_at(graph, src)
    if proj is None:
        raise Unsupported(f"its {src!r} is not a linear projection (a MatMul by a constant, plus a bias)",
                          "attention computed from those q, k, v")
    if proj.weight.shape != (width, width):
        raise Unsupported(f"its projection {src!r} maps {proj.weight.shape[1]} features to {proj.weight.shape[0]}",
                          f"attention whose input is as wide as its q, k and v ({width})")
    return proj


def _out_projection(graph: _Graph, merged: str, width: int):
    n = graph.only_reader(merged)
    add = graph.only_reader(n.outputs[0]) if n is not None else None
    value = add.outputs[0] if add is not None and add.op == "Add" else (n.outputs[0] if n is not None else "")
    proj = _linear_at(graph, value) if value else None
    if proj is None or proj.x != merged or proj.weight.shape != (width, width):
        raise Unsupported("its merged heads are not projected by a [D, D] MatMul (plus a bias)",
                          "attention without its output projection")
    return proj, proj.nodes


def _name(scores: Node) -> str:
    """A name for the layer: the exporter's module path (``h.0.attn/MatMul_2`` -> ``h.0.attn``)."""
    path = scores.name.rsplit("/", 1)[0].strip("/") if "/" in scores.name else ""
    return path.replace("/", ".") or scores.outputs[0]


def _fused(scores: Node, projections: list[_Proj], out: _Proj, output: str, heads: int, causal: bool) -> Fused:
    q, k, v = projections
    if k.x != v.x:
        raise Unsupported("its keys and values are projected from different tensors",
                          "attention with separate key and value inputs")
    bias = None if all(p.bias is None for p in (q, k, v)) else np.concatenate(
        [p.bias if p.bias is not None else np.zeros(len(p.weight)) for p in (q, k, v)])
    attrs = {"heads": heads, "causal": causal, "hint": _name(scores)} | weights(
        np.concatenate([q.weight, k.weight, v.weight]), bias, out.weight, out.bias)
    inputs = [q.x] if q.x == k.x else [q.x, k.x]
    return Fused(FUSED, scores.name, inputs, [output], attrs)


def weights(in_weight, in_bias, out_weight, out_bias) -> dict:
    """``bias`` and ``tensors`` of the layer. archc's ``bias`` switches all four biases: one
    the file lacks is zeros (the dynamo exporter drops an all-zero bias, such as a fresh
    out_proj.bias), which computes the same and keeps the module's count."""
    bias = in_bias is not None or out_bias is not None
    tensors = {"in_proj_weight": in_weight}
    if bias:
        tensors["in_proj_bias"] = in_bias if in_bias is not None else np.zeros(len(in_weight))
    tensors["out_proj.weight"] = out_weight
    if bias:
        tensors["out_proj.bias"] = out_bias if out_bias is not None else np.zeros(len(out_weight))
    return {"bias": bias, "tensors": {k: np.ascontiguousarray(t, dtype=np.float32) for k, t in tensors.items()}}


@maps(FUSED)
def attention(node, ctx):
    """A recognised attention as archc's ``attention`` layer (or the reason it is not one)."""
    if "error" in node.attrs:
        raise Unsupported(*node.attrs["error"])
    a = node.attrs
    return [Layer("attention", {"heads": a["heads"], "bias": a["bias"], "causal": a["causal"]},
                  list(node.inputs), node.outputs[0], a["tensors"], a["hint"])]
