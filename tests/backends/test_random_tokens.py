"""Random configurations of the token and tensor-manipulation ops (archc/ops/tokens.py,
archc/ops/tensor.py):

* chains of them — token ids or floats in, an embedding (sometimes tied to a final
  linear), positional tables, a class token, then permutes, slices, selects, chunks,
  splits and means — build in torch with the statically inferred shape at every node,
  the predicted parameters and buffers (tests/backends/torch_checks.py), and the MACs
  torch's flop counter sees (tests/macs_reference.py);
* one moving op on a random float input computes what numpy computes with Python's own
  slice rules, ``np.transpose``, ``np.take``, ``np.mean`` — an independent oracle of the
  generated indexing code, not the shape rules restated.

The strategy tracks shapes with its own short rules only to stay valid; sizes stay small
so that ~100 examples run in well under a minute on one core.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archc
from archc.backends.torch.build import build, example_input
from macs_reference import torch_macs
from torch_checks import check_graph

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _dim(draw, rank: int) -> tuple[int, int]:
    """(the dim as written — sometimes negative — , the dim it names)."""
    d = draw(st.integers(0, rank - 1))
    return (d - rank if draw(st.booleans()) else d), d


def _replace(shape, d, size):
    return shape[:d] + [size] + shape[d + 1:]


@st.composite
def move_op(draw, shape: list) -> tuple[str, list]:
    """One moving op valid for ``shape`` (rank ≥ 1): (layer text, new shape); it keeps
    rank ≥ 1 so another op can follow."""
    rank = len(shape)
    kinds = ["permute", "transpose", "slice", "chunk", "split"] + ["select"] * (rank >= 2)
    kind = draw(st.sampled_from(kinds))
    written, d = _dim(draw, rank)
    n = shape[d]
    if kind == "permute":
        order = draw(st.permutations(range(rank)))
        return f"permute: {{dims: {list(order)}}}", [shape[i] for i in order]
    if kind == "transpose":
        other = draw(st.integers(0, rank - 1))
        swapped = list(shape)
        swapped[d], swapped[other] = shape[other], shape[d]
        return f"transpose: {{dims: [{written}, {other}]}}", swapped
    if kind == "slice":
        start = draw(st.integers(-n, n - 1))
        step = draw(st.integers(1, 3))
        end = draw(st.none() | st.integers(-n, n + 2))
        kept = len(range(n)[start:end:step])
        if not kept:  # an empty slice is an error; keep from start to the end instead
            end, kept = None, len(range(n)[start::step])
        end_text = "null" if end is None else end
        return (f"slice: {{dim: {written}, start: {start}, end: {end_text}, step: {step}}}",
                _replace(shape, d, kept))
    if kind == "select":
        index = draw(st.integers(-n, n - 1))
        return f"select: {{dim: {written}, index: {index}}}", shape[:d] + shape[d + 1:]
    if kind == "chunk":
        chunks = draw(st.integers(1, n + 1))
        width = math.ceil(n / chunks)  # torch.chunk's piece size; it may make fewer pieces
        index = draw(st.integers(0, math.ceil(n / width) - 1))
        return (f"chunk: {{chunks: {chunks}, dim: {written}, index: {index}}}",
                _replace(shape, d, min(width, n - index * width)))
    cuts = sorted(draw(st.sets(st.integers(1, n - 1), max_size=3))) if n > 1 else []
    sizes = [b - a for a, b in zip([0] + cuts, cuts + [n])]
    index = draw(st.integers(0, len(sizes) - 1))
    return f"split: {{sizes: {sizes}, dim: {written}, index: {index}}}", _replace(shape, d, sizes[index])


@st.composite
def sequence_ops(draw, shape: list) -> tuple[list[str], list]:
    """Class token and positional tables on a float sequence [L, D]."""
    layers = []
    if draw(st.booleans()):
        layers.append("class_token")
        shape = [shape[0] + 1, shape[1]]
    if draw(st.booleans()):
        max_len = draw(st.none() | st.integers(shape[0], shape[0] + 4))
        layers.append(f"pos_embedding: {{max_len: {'null' if max_len is None else max_len}}}")
    if shape[1] % 2 == 0 and draw(st.booleans()):
        base = draw(st.sampled_from([10000, 100, 7.5]))
        layers.append(f"sinusoidal_encoding: {{max_len: {shape[0] + draw(st.integers(0, 3))}, base: {base}}}")
    return layers, shape


@st.composite
def token_specs(draw) -> str:
    """The YAML text of a random chain of the token and tensor ops."""
    kind = draw(st.sampled_from(["ids", "ids", "tokens", "image"]))
    layers, width = [], None
    if kind == "ids":
        shape = draw(st.lists(st.integers(1, 6), min_size=1, max_size=2))
        vocab = draw(st.integers(2, 20))
        source = f"{{shape: {shape}, dtype: int64, vocab: {vocab}}}"
        if draw(st.booleans()):  # ids move too
            layer, shape = draw(move_op(shape))
            layers.append(layer)
        num, width = draw(st.integers(vocab, vocab + 4)), draw(st.integers(1, 5))
        pad = draw(st.none() | st.integers(-num, num - 1))
        layers.append(f"embedding: {{num: {num}, dim: {width}, padding_idx: "
                      f"{'null' if pad is None else pad}, id: wte}}")
        shape = shape + [width]
    else:
        shape = draw(st.lists(st.integers(1, 6), min_size=2 if kind == "tokens" else 3,
                              max_size=2 if kind == "tokens" else 3))
        source = str(shape)
    if len(shape) == 2:
        more, shape = draw(sequence_ops(shape))
        layers += more
    for _ in range(draw(st.integers(0 if layers else 1, 3))):
        layer, shape = draw(move_op(shape))
        layers.append(layer)
    if draw(st.booleans()):
        dims = sorted(draw(st.sets(st.integers(0, len(shape) - 1), min_size=1)))
        keep = len(dims) == len(shape) or draw(st.booleans())
        layers.append(f"mean: {{dims: {dims}, keepdims: {str(keep).lower()}}}")
        shape = [1 if i in dims else n for i, n in enumerate(shape)] if keep else \
            [n for i, n in enumerate(shape) if i not in dims]
    if width is not None and shape[-1] == width and draw(st.booleans()):
        layers.append(f"linear: {{out: {num}, bias: false, tie: wte}}")  # GPT-2's output layer
    return (f"archc: 1\ninput: {source}\nlayers:\n"
            + "".join(f"  - {layer}\n" for layer in layers))


@settings(max_examples=70, **SETTINGS)
@given(token_specs())
def test_random_token_chains_match_the_analysis(text):
    graph = archc.loads(text)
    model = check_graph(graph)
    assert torch_macs(model, example_input(graph, 2)) == graph.summary.macs


# -------------------------------------------------------------------- values, by numpy


def _oracle(x: np.ndarray, layer: dict) -> np.ndarray:
    """What one op computes on a batch ``x``, from numpy and Python's slice rules."""
    (op, a), = layer.items()
    shift = lambda d: (d % (x.ndim - 1)) + 1  # noqa: E731  (sample dim -> batch-first axis)
    if op == "permute":
        return np.transpose(x, [0] + [d + 1 for d in a["dims"]])
    if op == "transpose":
        return np.swapaxes(x, shift(a["dims"][0]), shift(a["dims"][1]))
    if op == "select":
        return np.take(x, a["index"], axis=shift(a["dim"]))
    axis = shift(a["dim"])
    positions = list(range(x.shape[axis]))
    if op == "slice":
        kept = positions[a["start"]:a["end"]:a["step"]]
    elif op == "chunk":  # torch.chunk: pieces of ceil(n / chunks)
        width = -(-len(positions) // a["chunks"])
        kept = positions[a["index"] * width:(a["index"] + 1) * width]
    else:  # split
        offset = sum(a["sizes"][:a["index"]])
        kept = positions[offset:offset + a["sizes"][a["index"]]]
    return np.take(x, kept, axis=axis)


@st.composite
def one_move(draw) -> tuple[list, str]:
    shape = draw(st.lists(st.integers(1, 5), min_size=1, max_size=4))
    layer, _ = draw(move_op(shape))
    return shape, layer


@settings(max_examples=30, **SETTINGS)
@given(one_move())
def test_moving_ops_compute_what_numpy_computes(case):
    shape, layer = case
    model = build(text=f"archc: 1\ninput: {shape}\nlayers:\n  - {layer}\n", seed=0).eval()
    x = np.arange(2 * math.prod(shape), dtype=np.float32).reshape(2, *shape)
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
    want = _oracle(x, yaml.safe_load(layer))
    assert got.shape == want.shape and np.array_equal(got, want), layer


@settings(max_examples=10, **SETTINGS)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=4), st.data())
def test_mean_computes_what_numpy_computes(shape, data):
    dims = sorted(data.draw(st.sets(st.integers(-len(shape), len(shape) - 1), min_size=1)
                            .filter(lambda s: len({d % len(shape) for d in s}) == len(s))))
    keep = data.draw(st.booleans()) or len(dims) == len(shape)
    layer = f"mean: {{dims: {dims}, keepdims: {str(keep).lower()}}}"
    model = build(text=f"archc: 1\ninput: {shape}\nlayers:\n  - {layer}\n", seed=0).eval()
    x = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
    want = x.mean(axis=tuple(d % len(shape) + 1 for d in dims), keepdims=keep)
    assert got.shape == want.shape and np.allclose(got, want, atol=1e-6), layer
