"""Hypothesis strategies for random *valid* specs, shared by the backend tests.

``specs()`` draws the YAML text of a small network: a DAG of convolutions, pools, norms,
activations, resizes, pads, crops, merges (add, multiply, concat), a residual block with
a conditional shortcut called with ``repeat``, and a linear head, with one or more
outputs. It tracks shapes with its own short formulas (the torch docs' output-size rules)
only to stay valid — sizes stay small (channels ≤ 8, height and width ≤ 16) so that a
built model runs in milliseconds. The tests compare archc's static analysis with what
torch (or onnxruntime) computes, so the strategy never needs archc's own shape rules.

Usage::

    from strategies import specs   # tests/ is on sys.path (tests/conftest.py)

    @given(specs())
    def test_something(text): graph = archc.loads(text) ...
"""

from __future__ import annotations

import math

import yaml
from hypothesis import strategies as st

MAX_HW = 16
MAX_C = 8

RES_BLOCK = {
    "args": {"out": "required"},
    "layers": [
        {"conv2d": {"out": "$out", "kernel": 3, "padding": 1, "bias": False}},
        {"batchnorm2d": None},
        {"relu": None},
        {"conv2d": {"from": "input", "out": "$out", "kernel": 1, "id": "short",
                    "when": "$input.channels != $out"}},
        {"add": {"from": ["relu_1", "short"]}},
    ],
}


def _window(n, k, s, p, d=1, ceil=False):
    """torch's output length of a sliding window (docs of Conv2d / MaxPool2d)."""
    span = n + p - d * (k - 1) - 1
    if span < 0:
        return 0
    if not ceil:
        return span // s + 1
    out = -(-span // s) + 1
    return out - 1 if (out - 1) * s >= n + p // 2 else out


class _Net:
    """The network being drawn: layers, and the shape of every id."""

    def __init__(self, shape):
        self.layers, self.shapes, self.uses_block = [], {"input": tuple(shape)}, False

    def add(self, op, attrs, src, shape):
        name = f"n{len(self.layers) + 1}"
        body = dict(attrs, id=name, **({"from": src} if src else {}))
        self.layers.append({op: body})
        self.shapes[name] = tuple(shape)
        return name


def _image_layer(draw, net, src):
    c, h, w = net.shapes[src]
    kind = draw(st.sampled_from(["conv", "conv", "tconv", "pool", "pool", "norm", "act", "act", "pad",
                                 "upsample", "crop", "gap", "block", "lrn", "dropout2d"]))
    if kind == "conv":
        k, s, d = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
        pad = draw(st.sampled_from([0, 1, "same", "valid", [0, 1, 1, 0]]))
        out = draw(st.integers(1, MAX_C))
        groups = draw(st.sampled_from([g for g in (1, 2) if c % g == 0 and out % g == 0]))
        if pad == "same":
            oh, ow = -(-h // s), -(-w // s)
        else:
            t, b, l, r = tuple(pad) if isinstance(pad, list) else (0,) * 4 if pad in (0, "valid") else (1,) * 4
            oh, ow = _window(h, k, s, t + b, d), _window(w, k, s, l + r, d)
        if min(oh, ow) < 1:
            return None
        attrs = {"out": out, "kernel": k, "stride": s, "padding": pad, "dilation": d,
                 "groups": groups, "bias": draw(st.booleans())}
        return net.add("conv2d", attrs, src, (out, oh, ow))
    if kind == "tconv":
        k, s = draw(st.integers(1, 3)), draw(st.integers(1, 2))
        p, op = draw(st.integers(0, (k - 1) // 2)), draw(st.integers(0, s - 1))
        oh, ow = ((n - 1) * s - 2 * p + k + op for n in (h, w))
        if max(oh, ow) > MAX_HW or min(oh, ow) < 1:
            return None
        out = draw(st.integers(1, MAX_C))
        attrs = {"out": out, "kernel": k, "stride": s, "padding": p, "output_padding": op}
        return net.add("conv_transpose2d", attrs, src, (out, oh, ow))
    if kind == "pool":
        op = draw(st.sampled_from(["maxpool2d", "avgpool2d"]))
        k = draw(st.integers(1, min(3, h, w)))
        s = draw(st.integers(1, 2))
        pad = draw(st.sampled_from([0, k // 2, "same"]))
        ceil = draw(st.booleans()) and pad != "same"
        if pad == "same":
            oh, ow = -(-h // s), -(-w // s)
        else:
            oh, ow = _window(h, k, s, 2 * pad, 1, ceil), _window(w, k, s, 2 * pad, 1, ceil)
        attrs = {"kernel": k, "stride": s, "padding": pad, "ceil_mode": ceil}
        if op == "avgpool2d":
            attrs["count_include_pad"] = draw(st.booleans())
        return net.add(op, attrs, src, (c, oh, ow))
    if kind == "norm":
        return net.add("batchnorm2d", {"affine": draw(st.booleans())}, src, (c, h, w))
    if kind == "act":
        return net.add(draw(st.sampled_from(["relu", "tanh", "sigmoid", "leaky_relu", "elu", "gelu",
                                             "silu", "relu6", "softplus", "identity", "softmax"])),
                       {}, src, (c, h, w))
    if kind == "pad":
        p = draw(st.lists(st.integers(0, 2), min_size=4, max_size=4))
        if h + p[0] + p[1] > MAX_HW or w + p[2] + p[3] > MAX_HW:
            return None
        return net.add("zeropad2d", {"padding": p}, src, (c, h + p[0] + p[1], w + p[2] + p[3]))
    if kind == "upsample":
        if 2 * max(h, w) > MAX_HW:
            return None
        mode = draw(st.sampled_from(["nearest", "bilinear"]))
        return net.add("upsample", {"scale": 2, "mode": mode}, src, (c, 2 * h, 2 * w))
    if kind == "crop":
        th, tw = draw(st.integers(1, h)), draw(st.integers(1, w))
        return net.add("crop", {"size": [th, tw]}, src, (c, th, tw))
    if kind == "gap":
        keep = draw(st.booleans())
        return net.add("global_avgpool", {"keepdims": keep}, src, (c, 1, 1) if keep else (c,))
    if kind == "lrn":
        return net.add("local_response_norm", {"size": draw(st.integers(1, 3))}, src, (c, h, w))
    if kind == "dropout2d":
        return net.add("dropout2d", {"p": 0.5}, src, (c, h, w))
    # a residual block, once or twice
    out, reps = draw(st.integers(1, MAX_C)), draw(st.integers(1, 2))
    net.uses_block = True
    return net.add("res", {"out": out, "repeat": reps}, src, (out, h, w))


def _vector_layer(draw, net, src):
    shape = net.shapes[src]
    kind = draw(st.sampled_from(["linear", "linear", "bn", "ln", "act", "dropout", "softmax"]))
    if kind == "linear":
        out = draw(st.integers(1, 10))
        return net.add("linear", {"out": out, "bias": draw(st.booleans())}, src, (*shape[:-1], out))
    if kind == "bn":
        return net.add("batchnorm1d", {}, src, shape)
    if kind == "ln":
        return net.add("layernorm", {}, src, shape)
    if kind == "dropout":
        return net.add("dropout", {"p": 0.25}, src, shape)
    if kind == "softmax":
        return net.add(draw(st.sampled_from(["softmax", "log_softmax"])), {"dim": -1}, src, shape)
    return net.add(draw(st.sampled_from(["relu", "tanh", "sigmoid", "gelu"])), {}, src, shape)


def _merge(draw, net, src):
    """add / multiply / concat / crop-to-match of the current node with an earlier one."""
    shape = net.shapes[src]
    others = [n for n in net.shapes if n != src]
    same = [n for n in others if net.shapes[n] == shape]
    if len(shape) == 3:
        c, h, w = shape
        cat = [n for n in others if len(net.shapes[n]) == 3 and net.shapes[n][1:] == (h, w)]
        chans = [n for n in others if net.shapes[n] == (c, 1, 1)]
        bigger = [n for n in others if len(net.shapes[n]) == 3
                  and net.shapes[n][1] >= h and net.shapes[n][2] >= w]
    else:
        cat = [n for n in others if net.shapes[n][:-1] == shape[:-1] and len(net.shapes[n]) == len(shape)]
        chans = bigger = []
    kind = draw(st.sampled_from(["add", "multiply", "concat", "crop"]))
    if kind in ("add", "multiply") and same + chans:
        other = draw(st.sampled_from(same + chans))
        return net.add(kind, {}, [src, other], shape)
    if kind == "concat" and cat:
        other = draw(st.sampled_from(cat))
        dim = 0 if len(shape) == 3 else -1
        joined = list(shape)
        joined[dim] += net.shapes[other][dim]
        if joined[0] > 4 * MAX_C:
            return None
        return net.add("concat", {"dim": dim}, [src, other], joined)
    if kind == "crop" and bigger:
        other = draw(st.sampled_from(bigger))
        return net.add("crop", {}, [other, src], (net.shapes[other][0], *shape[1:]))
    return None


@st.composite
def specs(draw, max_layers: int = 8):
    """The YAML text of a random valid network."""
    if draw(st.integers(0, 4)):
        shape = (draw(st.integers(1, 4)), draw(st.integers(3, 12)), draw(st.integers(3, 12)))
    else:
        shape = (draw(st.integers(1, 8)),)
    net, current = _Net(shape), "input"
    for _ in range(draw(st.integers(1, max_layers))):
        # mostly a chain, sometimes a branch from any earlier node
        src = current if draw(st.integers(0, 3)) else draw(st.sampled_from(sorted(net.shapes)))
        if draw(st.integers(0, 4)) == 0:
            name = _merge(draw, net, src)
        elif len(net.shapes[src]) == 3:
            name = _image_layer(draw, net, src)
        else:
            name = _vector_layer(draw, net, src)
        if name is None and len(net.shapes[src]) == 3 and draw(st.booleans()):
            name = net.add("flatten", {}, src, (math.prod(net.shapes[src]),))
        current = name or current
    if len(net.layers) == 0:
        net.add("relu", {}, "input", shape)
        current = "n1"
    doc = {"archc": 1, "name": "random", "input": list(shape)}
    if net.uses_block:
        doc["blocks"] = {"res": RES_BLOCK}
    doc["layers"] = net.layers
    extra = [n for n in net.shapes if n not in ("input", current)]
    if extra and draw(st.booleans()):
        doc["outputs"] = [current, draw(st.sampled_from(extra))]
    else:
        doc["outputs"] = [current]
    return yaml.safe_dump(doc, sort_keys=False)
