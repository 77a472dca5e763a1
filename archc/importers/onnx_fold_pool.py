"""Adaptive average pooling written as GatherND: torch's decomposition, recognised as one
archc ``adaptive_avgpool{1,2,3}d``.

When an output size does not divide the input size (vgg16's 1×1 -> 7×7 at small inputs),
torch's ``adaptive_avg_pool2d`` decomposition, which the dynamo exporter writes, gathers
every window at once: the spatial axes moved to the front (Transpose), one GatherND whose
constant indices hold, for each output position i and offset r, the input position
min(start_i + r, n - 1); the windows shorter than the longest masked to 0 (Where), the
offsets summed (ReduceMean, or Gather + Add per offset, then Div by each window's length).

:func:`recognise` (run after folding) accepts a GatherND only when its indices are exactly
those torch uses for (input size -> output size) on every axis, and the nodes between it and
the first value of shape [B, C, *output] (read by nothing else) compute, on a random probe,
the average over torch's windows (``start_i = floor(i·n/m)``, ``end_i = ceil((i+1)·n/m)``:
torch's AdaptiveAvgPool docs). Anything else stays a GatherND, which the importer reports
as an op archc has not got.
"""

from __future__ import annotations

import math

import numpy as np

from archc.importers.onnx_fold import Node, _live
from archc.importers.onnx_table import Layer, compact, maps

FUSED = "archc.adaptive_avgpool"  # never an ONNX op type
# what the decomposition's tail is made of (masks, per-offset sums, the division, the mean)
TAIL = {"Transpose", "Where", "Gather", "Add", "Div", "Mul", "ReduceMean", "ReduceSum", "Squeeze",
        "Unsqueeze", "Reshape", "Cast"}
PROBE_BATCH = 2


def recognise(g, nodes: list[Node]) -> list[Node]:
    """``nodes`` with each GatherND that is an adaptive average pool (and the nodes around
    it) replaced by one node the op table maps to ``adaptive_avgpool{N}d``."""
    if not any(n.op == "GatherND" for n in nodes):
        return nodes
    producer = {o: n for n in nodes for o in n.outputs}
    readers = {}
    for n in nodes:
        for i in n.inputs:
            readers.setdefault(i, []).append(n)
    replaced, fused = set(), {}
    for at, gather in enumerate(nodes):
        if gather.op != "GatherND":
            continue
        found = _pool(gather, g, nodes[at + 1:], producer, readers)
        if found is not None:
            region, node = found
            replaced |= {id(n) for n in region}
            fused[id(region[-1])] = node
    if not fused:
        return nodes
    kept = [fused.get(id(n), n) for n in nodes if id(n) in fused or id(n) not in replaced]
    return _live(kept, g.outputs)


def _pool(gather: Node, g, after, producer, readers):
    """(the nodes from the gather to the pool's output, the fused node), or None; ``after``:
    the nodes that follow the gather."""
    move = producer.get(gather.inputs[0])
    index = g.consts.get(gather.inputs[1])
    if move is None or move.op != "Transpose" or index is None or gather.attrs.get("batch_dims", 0):
        return None
    x = move.inputs[0]
    shape = g.shapes.get(x)
    if shape is None or len(shape) < 3 or None in shape[1:]:
        return None
    spatial = len(shape) - 2
    if list(move.attrs.get("perm", [])) != list(range(2, 2 + spatial)) + [0, 1]:
        return None  # the decomposition indexes x[..., i, j] with the spatial axes first
    out = _sizes_from_index(index, spatial)
    if out is None or not np.array_equal(index, _torch_index(shape[2:], out)):
        return None
    region = next((tail for tail in _tails(gather, [shape[1], *out], g, after, readers)
                   if _averages([move, gather] + tail, shape, out, g)), None)
    if region is None:
        return None
    fused = Node(FUSED, gather.name, [x], [region[-1].outputs[0]], {"size": out})
    return [gather] + region, fused


def _sizes_from_index(index: np.ndarray, spatial: int):
    """The output sizes an index [m1, k1, m2, k2, ..., spatial] is laid out for."""
    if index.dtype.kind not in "iu" or index.ndim != 2 * spatial + 1 or index.shape[-1] != spatial:
        return None
    return [int(index.shape[2 * a]) for a in range(spatial)]


def _windows(n: int, m: int) -> tuple[np.ndarray, int]:
    """torch's adaptive pooling of n positions into m: each window's index list padded to
    the longest, clamped to n - 1 (torch's decomposition), and that longest length."""
    starts = [(i * n) // m for i in range(m)]
    longest = n // m + 1
    rest = n % m
    uneven = not (rest == 0 or m % rest == 0)  # windows of two lengths: masked
    if uneven:
        longest += 1
    elif rest == 0:
        longest -= 1
    idx = np.array([[s + r for r in range(longest)] for s in starts], dtype=np.int64)
    return (np.minimum(idx, n - 1) if uneven else idx), longest


def _torch_index(in_sizes, out) -> np.ndarray:
    """GatherND's indices for x[..., idx_1[:, :, None, None], idx_2] (2-D; likewise 1-D, 3-D):
    [m1, k1, m2, k2, ..., spatial], each axis' windows broadcast over the others'."""
    spatial = len(out)
    axes = []
    for a, (n, m) in enumerate(zip(in_sizes, out)):
        idx = _windows(int(n), m)[0]
        axes.append(idx.reshape((1, 1) * a + idx.shape + (1, 1) * (spatial - 1 - a)))
    full = np.broadcast_shapes(*[a.shape for a in axes])
    return np.stack([np.broadcast_to(a, full) for a in axes], axis=-1)


def _tails(gather: Node, want, g, after, readers) -> list:
    """The candidate tails: runs of nodes after the gather, each computing on the gathered
    values and constants only, that end in a value of shape [B, *want] which is the only
    one of the run read outside it (the sum before the division is one; the probe decides)."""
    inside, region, found = {gather.outputs[0]}, [], []
    for node in after:
        if not any(i in inside for i in node.inputs):
            continue
        if node.op not in TAIL or any(i and i not in inside and i not in g.consts for i in node.inputs):
            break
        region.append(node)
        inside.update(node.outputs)
        value, shape = node.outputs[0], g.shapes.get(node.outputs[0])
        members = {id(n) for n in region}
        if shape is not None and list(shape[1:]) == list(want) and all(
                v not in g.outputs and all(id(r) in members for r in readers.get(v, []))
                for v in inside - {value}):
            found.append(list(region))
    return found


def _averages(run, shape, out, g) -> bool:
    """Whether the transpose, gather and tail compute torch's adaptive average on a probe."""
    from archc.importers.onnx_ops_seq import _concrete, _run

    x = np.random.default_rng(0).standard_normal((PROBE_BATCH, *shape[1:])).astype(np.float32)
    values = {run[0].inputs[0]: x}
    for node in run:
        feeds = {i: values[i] if i in values else _concrete(g.consts[i]) for i in node.inputs if i}
        try:
            values.update(zip(node.outputs, _run(node, feeds, g)))
        except Exception:  # noqa: BLE001 - ONNX's reference refusing the node: not this pattern
            return False
    got = values[run[-1].outputs[0]]
    return got.shape == (PROBE_BATCH, shape[1], *out) and bool(np.allclose(got, _reference(x, out), atol=1e-5))


def _reference(x: np.ndarray, out) -> np.ndarray:
    """Adaptive average pooling written from its definition: output i of an axis of n
    averages positions floor(i·n/m) to ceil((i+1)·n/m) - 1."""
    for a, m in enumerate(out):
        axis = 2 + a
        n = x.shape[axis]
        pieces = [x.take(range((i * n) // m, math.ceil((i + 1) * n / m)), axis=axis).mean(axis=axis, keepdims=True)
                  for i in range(m)]
        x = np.concatenate(pieces, axis=axis)
    return x


@maps(FUSED)
def adaptive_avgpool(node, ctx):
    from archc.importers.onnx_ops_seq import module_scope

    size = node.attrs["size"]
    return [Layer(f"adaptive_avgpool{len(size)}d", {"size": compact(size)}, [ctx.data(node)], node.outputs[0],
                  hint=module_scope(node, ctx.g))]

