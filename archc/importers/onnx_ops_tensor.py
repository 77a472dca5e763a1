"""The op table, continued: ONNX ops that move values around (reshape, transpose, slice,
gather, split, pad, resize). Registered like archc/importers/onnx_ops.py's."""

from __future__ import annotations

import math

import numpy as np

from archc.importers.onnx_fold import BATCH
from archc.importers.onnx_table import Layer, Unsupported, maps

INT64_MAX = 2**63 - 1


def _out(node) -> str:
    return node.outputs[0]


def _to_shape(node, ctx, x: str, rest: list) -> list[Layer]:
    """A layer giving each sample of ``x`` the shape ``rest``: none when it has it already,
    flatten when ``rest`` is one flat dimension of a tensor of rank 2 or more, else reshape."""
    shape = ctx.shape(x)[1:]
    if None in shape:
        raise Unsupported(f"the shape of its input {x} is not fully known ({list(shape)})",
                          "a graph whose every value has an inferable shape")
    size = math.prod(shape)
    known = [d for d in rest if d != -1]
    if rest.count(-1) > 1 or (rest.count(-1) == 0 and math.prod(known) != size) \
            or (rest.count(-1) == 1 and size % math.prod(known)):
        raise Unsupported(f"it reshapes {list(shape)} to {rest} per sample", "a reshape that keeps the batch")
    full = [size // math.prod(known) if d == -1 else d for d in rest]
    if full == list(shape):
        ctx.alias[_out(node)] = x
        return []
    if len(full) == 1 and len(shape) > 1:
        return [Layer("flatten", {}, [x], _out(node))]
    return [Layer("reshape", {"shape": full}, [x], _out(node))]


@maps("Reshape")
def reshape(node, ctx):
    x = ctx.data(node)
    target = ctx.const(node.inputs[1])
    if target is None:
        raise Unsupported("its target shape is computed from the data", "a constant target shape")
    target = list(np.ravel(target))
    shape = ctx.shape(x)
    batch = target[0]
    keeps_batch = batch is BATCH or batch == 0 or (shape[0] is not None and batch == shape[0]) or (
        batch == -1 and all(v is not BATCH and v > 0 for v in target[1:]))
    if not keeps_batch or any(v is BATCH for v in target[1:]):
        raise Unsupported(f"it reshapes across the batch (target {target})", "a reshape that keeps the batch")
    rest = [shape[i + 1] if v == 0 and not node.attrs.get("allowzero", 0) else int(v)
            for i, v in enumerate(target[1:])]
    return _to_shape(node, ctx, x, rest)


@maps("Flatten")
def flatten(node, ctx):
    x = ctx.data(node)
    shape = ctx.shape(x)
    axis = node.attrs.get("axis", 1)
    axis = axis + len(shape) if axis < 0 else axis
    if axis == 0:
        raise Unsupported("it flattens the batch into the features", "a flatten that keeps the batch")
    return _to_shape(node, ctx, x, [math.prod(shape[1:axis]), -1] if axis > 1 else [-1])


@maps("Squeeze", "Unsqueeze")
def squeeze(node, ctx):
    x = ctx.data(node)
    axes = node.attrs.get("axes") or ([int(v) for v in np.ravel(ctx.weight(node, 1, "axes"))]
                                      if len(node.inputs) > 1 and node.inputs[1] else [])
    out = ctx.g.shapes.get(_out(node))
    if out is None or not axes:
        raise Unsupported("its output shape is unknown", "a squeeze with known axes")
    rank = len(out) if node.op == "Unsqueeze" else len(ctx.shape(x))
    if 0 in [a + rank if a < 0 else a for a in axes]:
        raise Unsupported("it adds or removes the batch axis", "an op on the batch axis")
    return _to_shape(node, ctx, x, list(out[1:]))


@maps("Transpose")
def transpose(node, ctx):
    x = ctx.data(node)
    perm = list(node.attrs.get("perm", range(len(ctx.shape(x)))[::-1]))
    if perm[0] != 0:
        raise Unsupported(f"it moves the batch axis (perm {perm})", "a transpose that keeps the batch first")
    dims = [p - 1 for p in perm[1:]]
    if dims == sorted(dims):
        ctx.alias[_out(node)] = x
        return []
    moved = [i for i, d in enumerate(dims) if d != i]
    if len(moved) == 2:
        return [Layer("transpose", {"dims": moved}, [x], _out(node))]
    return [Layer("permute", {"dims": dims}, [x], _out(node))]


@maps("Slice")
def slice_(node, ctx):
    x = ctx.data(node)
    starts, ends = ctx.weight(node, 1, "starts"), ctx.weight(node, 2, "ends")
    axes = ctx.optional(node, 3, "axes")
    steps = ctx.optional(node, 4, "steps")
    axes = range(len(starts)) if axes is None else np.ravel(axes)
    steps = [1] * len(starts) if steps is None else np.ravel(steps)
    layers, current = [], x
    for k, (s, e, a, st) in enumerate(zip(np.ravel(starts), np.ravel(ends), axes, steps)):
        if st < 1:
            raise Unsupported(f"it steps by {int(st)}", "a slice with a negative step (a flip)")
        dim = ctx.axis(node, x, int(a))
        a_ = {"dim": dim}
        if s:
            a_["start"] = int(s)
        if not (e >= INT64_MAX // 2 or e >= ctx.shape(x)[dim + 1]):
            a_["end"] = int(e)
        if st != 1:
            a_["step"] = int(st)
        name = _out(node) if k == len(starts) - 1 else f"{_out(node)}/{k}"
        layers.append(Layer("slice", a_, [current], name))
        current = name
    return layers


@maps("Gather")
def gather(node, ctx):
    table = ctx.const(node.inputs[0])
    if table is not None:  # a table looked up by computed ids: an embedding
        ids = ctx.data(node, 1)
        if node.attrs.get("axis", 0) != 0 or table.ndim != 2:
            raise Unsupported("it gathers from a constant along another axis", "an embedding of a 2-D table")
        return [Layer("embedding", {"num": int(table.shape[0]), "dim": int(table.shape[1])}, [ids], _out(node),
                      {"weight": table}, ctx.param_hint(node, 0))]
    x = ctx.data(node)
    index = ctx.weight(node, 1, "indices")
    if index.ndim != 0:
        raise Unsupported("it gathers several indices", "a gather of a list of indices")
    dim = ctx.axis(node, x, node.attrs.get("axis", 0))
    return [Layer("select", {"dim": dim, "index": int(index)}, [x], _out(node))]


@maps("Split")
def split(node, ctx):
    x = ctx.data(node)
    dim = ctx.axis(node, x, node.attrs.get("axis", 0))
    size = ctx.shape(x)[dim + 1]
    given = ctx.optional(node, 1, "split") if len(node.inputs) > 1 else None
    sizes = [int(v) for v in np.ravel(given)] if given is not None else list(node.attrs.get("split", []))
    if not sizes:
        n = len(node.outputs)
        piece = -(-size // n)
        sizes = [min(piece, size - i * piece) for i in range(n)]
    return [Layer("split", {"sizes": sizes, "dim": dim, "index": i}, [x], o)
            for i, o in enumerate(node.outputs) if o]


@maps("Pad")
def pad(node, ctx):
    x = ctx.data(node)
    mode = node.attrs.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    pads = [int(v) for v in np.ravel(ctx.weight(node, 1, "pads"))]
    value = ctx.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    rank = len(ctx.shape(x))
    if len(node.inputs) > 3 and node.inputs[3]:
        raise Unsupported("it pads chosen axes", "a pad over all axes")
    if mode != "constant" or (value is not None and float(value) != 0.0):
        raise Unsupported(f"it pads in {mode} mode" if mode != "constant" else f"it pads with {float(value)}",
                          "a padding op other than zeros (archc has zeropad2d)")
    before, after = pads[:rank], pads[rank:]
    if rank != 4 or any(before[:2]) or any(after[:2]):
        raise Unsupported(f"it pads a rank-{rank} tensor on {pads}", "zero padding of height and width (zeropad2d)")
    return [Layer("zeropad2d", {"padding": [before[2], after[2], before[3], after[3]]}, [x], _out(node))]


def _text(v, default: str) -> str:
    v = v if v is not None else default
    return v.decode() if isinstance(v, bytes) else v


@maps("Resize", "Upsample")
def resize(node, ctx):
    x = ctx.data(node)
    shape, out = ctx.shape(x), ctx.g.shapes.get(_out(node))
    mode = _text(node.attrs.get("mode"), "nearest")
    coords = _text(node.attrs.get("coordinate_transformation_mode"), "half_pixel")
    if len(shape) != 4 or out is None or list(out[:2]) != list(shape[:2]):
        raise Unsupported("it resizes other axes than height and width", "a resize of (C, H, W) maps")
    if node.attrs.get("antialias", 0) or mode == "cubic":
        raise Unsupported(f"it resizes with {'antialiasing' if node.attrs.get('antialias') else 'cubic'}",
                          "bicubic or antialiased upsampling")
    a = {}
    if mode == "linear":
        if coords not in ("half_pixel", "pytorch_half_pixel", "align_corners"):
            raise Unsupported(f"its coordinates are {coords}", "linear resizing with that coordinate rule")
        a = {"mode": "bilinear"} | ({"align_corners": True} if coords == "align_corners" else {})
    sizes = [out[2], out[3]]
    factors = [sizes[0] / shape[2], sizes[1] / shape[3]]
    if mode == "nearest":
        nearest = _text(node.attrs.get("nearest_mode"), "round_prefer_floor")
        exact = all(f.is_integer() for f in factors)
        if not (coords == "asymmetric" and nearest == "floor") and not (exact and coords == "half_pixel"):
            raise Unsupported(f"it picks nearest pixels by {coords}/{nearest}",
                              "nearest resizing with that rule (archc's is torch's: asymmetric, floor)")
    if all(f.is_integer() for f in factors):
        f = [int(v) for v in factors]
        return [Layer("upsample", {"scale": f[0] if f[0] == f[1] else f} | a, [x], _out(node))]
    return [Layer("upsample", {"size": sizes} | a, [x], _out(node))]
