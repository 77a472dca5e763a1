"""Convolutions over 1, 2 or 3 spatial axes: conv1d/2d/3d and conv_transpose1d/2d/3d.

One class per family, parametrised by ``axes`` (1: (C, L), 2: (C, H, W), 3: (C, D, H, W));
the registered ops only name their axes and texts. Counts follow torch and torchvision:
parameters are ``out * in/groups * prod(kernel)`` weights (+ ``out`` biases); MACs are one
multiply-accumulate per weight per output position, bias excluded (the convention of
torchvision's published GFLOPS, which are in fact GMACs).
"""

from __future__ import annotations

import math

from archc.errors import ShapeError
from archc.ops.registry import (AXIS_NAMES, SIDE_NAMES, Attr, Bool, Int, Op, Padding, PaddingNd,
                                Pair, Saved, Sizes, Window, need_rank, numel, register, same_padding,
                                saved_new, window_out)


def conv_pads(a: dict, shape) -> tuple:
    """Padding (before, after) of each spatial axis of a window op on ``shape`` (C, ...),
    flattened: (top, bottom, left, right) for (C, H, W), (left, right) for (C, L).

    'same' follows Keras/TensorFlow: output = ceil(in / stride), the odd pixel of padding
    after (bottom/right/back)."""
    if a["padding"] != "same":
        return a["padding"]
    ones = (1,) * (len(shape) - 1)
    pads = ()
    for n, k, s, d in zip(shape[1:], a["kernel"], a.get("stride") or ones, a.get("dilation", ones)):
        pads += same_padding(n, k, s, d)
    return pads


def befores(p) -> tuple:
    """The padding before each axis (top, left, ...) of flattened (before, after) pairs."""
    return tuple(p[0::2])


def size_arg(t) -> str:
    """A per-axis tuple as torch code: ``3`` for one axis, ``(3, 3)`` for more."""
    return str(t[0]) if len(t) == 1 else repr(tuple(t))


def dims_text(t) -> str:
    """``3×5`` for messages (``3`` for one axis)."""
    return "×".join(str(v) for v in t)


def sized(noun: str, t) -> str:
    """``a 3×5 kernel``; ``a kernel of 3`` on one axis."""
    return f"a {noun} of {t[0]}" if len(t) == 1 else f"a {dims_text(t)} {noun}"


def extent(t) -> str:
    """An input's size in messages: ``16×16``; ``length 16`` on one axis."""
    return f"length {t[0]}" if len(t) == 1 else dims_text(t)


def torch_pad_args(p) -> str | None:
    """Symmetric padding goes into the torch layer; asymmetric needs an F.pad first."""
    return size_arg(befores(p)) if befores(p) == tuple(p[1::2]) else None


def pad_forward(p, arg: str, value: str = "") -> str:
    """``arg`` padded by F.pad when the padding is asymmetric (``value``: the fill, zeros
    unless given, e.g. ``float('-inf')`` for max pooling, which never picks a pad).
    F.pad lists the last axis first: (left, right, top, bottom, front, back)."""
    if torch_pad_args(p):
        return arg
    pairs = [p[i:i + 2] for i in range(0, len(p), 2)][::-1]
    fill = f", value={value}" if value else ""
    return f"F.pad({arg}, ({', '.join(str(v) for pair in pairs for v in pair)}){fill})"


def padded_input(p, shape, ctx) -> Saved:
    """What a window op keeps of its input: the input itself, or, where the padding is
    asymmetric, the F.pad copy the op really reads."""
    if torch_pad_args(p):
        return Saved("input")
    sizes = [n + p[2 * i] + p[2 * i + 1] for i, n in enumerate(shape[1:])]
    return saved_new(ctx.batch * shape[0] * math.prod(sizes))


def weight_and_bias(rank: int, a: dict) -> dict[str, int]:
    """The tensors of a layer with a weight of ``rank`` and an optional bias."""
    return {"weight": rank} | ({"bias": 1} if a["bias"] else {})


def weight_and_bias_state(weight: tuple, a: dict) -> dict[str, tuple]:
    """The state of a layer with a weight of shape ``weight`` and an optional bias of
    ``out`` values (convolutions, linear)."""
    return {"weight": weight} | ({"bias": (a["out"],)} if a["bias"] else {})


def check_groups(cin: int, a: dict) -> None:
    g = a["groups"]
    if cin % g or a["out"] % g:
        raise ShapeError(f"groups={g} must divide both input channels ({cin}) and out ({a['out']})",
                         "choose groups that divides both channel counts")


def size_type(axes: int, min: int = 1):
    """The attribute type of a per-axis size: the 2-D ops keep their Pair."""
    return Pair(min) if axes == 2 else Sizes(axes, min)


def padding_type(axes: int):
    return Padding() if axes == 2 else PaddingNd(axes)


def padding_doc(axes: int) -> str:
    middle = "" if axes == 1 else f"{AXIS_NAMES[axes]}, "
    return f"int, {middle}{SIDE_NAMES[axes]}, 'same' or 'valid'"


def _conv_attrs(axes: int) -> dict:
    return {
        "out": Attr(Int(1), doc="output channels"),
        "kernel": Attr(size_type(axes), doc=f"kernel size, int or {AXIS_NAMES[axes]}"),
        "stride": Attr(size_type(axes), 1),
        "padding": Attr(padding_type(axes), 0, padding_doc(axes)),
        "dilation": Attr(size_type(axes), 1),
        "groups": Attr(Int(1), 1),
        "bias": Attr(Bool(), True),
    }


class _ConvNd(Op):
    """Convolution over ``axes`` spatial axes of (C, *spatial)."""

    torch_output_writable = True  # a fresh tensor; backward reads the input and weights
    axes = 2
    what = ""  # the rank error's hint: what the op works on
    autocast = "half"

    def infer(self, a, ins):
        shape = need_rank(ins, self.axes + 1, self.what)
        check_groups(shape[0], a)
        pads = conv_pads(a, shape)
        totals = [pads[2 * i] + pads[2 * i + 1] for i in range(self.axes)]
        outs = [window_out(n, k, s, p, d) for n, k, s, p, d in
                zip(shape[1:], a["kernel"], a["stride"], totals, a["dilation"])]
        if min(outs) < 1:
            raise ShapeError(f"{sized('kernel', a['kernel'])} (dilation {dims_text(a['dilation'])}) "
                             f"does not fit an input of {extent(shape[1:])} with padding "
                             f"{dims_text(totals)}: output would be {dims_text(outs)}",
                             "use a larger input, more padding or fewer downsampling layers")
        return (a["out"], *outs)

    def params(self, a, ins, out):
        weights = a["out"] * ins[0][0] // a["groups"] * math.prod(a["kernel"])
        return weights + (a["out"] if a["bias"] else 0), 0

    def macs(self, a, ins, out):
        # one per weight of the output channel's group, per output position
        return numel(out) * ins[0][0] // a["groups"] * math.prod(a["kernel"])

    def rf(self, a, ins, out):
        pads = befores(conv_pads(a, ins[0]))
        return [Window(k, s, p, d) for k, s, p, d in zip(a["kernel"], a["stride"], pads, a["dilation"])]

    def saved(self, a, ins, out, ctx):
        # convolution_backward reads the input (and the weight, a parameter)
        return [padded_input(conv_pads(a, ins[0]), ins[0], ctx)]

    def torch_init(self, a, ins, out):
        pad = torch_pad_args(conv_pads(a, ins[0])) or "0"
        return (f"nn.Conv{self.axes}d({ins[0][0]}, {a['out']}, kernel_size={size_arg(a['kernel'])}, "
                f"stride={size_arg(a['stride'])}, padding={pad}, dilation={size_arg(a['dilation'])}, "
                f"groups={a['groups']}, bias={a['bias']})")

    def torch_forward(self, a, ins, out, args, mod):
        return f"{mod}({pad_forward(conv_pads(a, ins[0]), args[0])})"

    def torch_params(self, a):
        return weight_and_bias(self.axes + 2, a)

    def state(self, a, ins, out):
        # nn.ConvNd's weight: (out, in / groups, *kernel)
        return weight_and_bias_state((a["out"], ins[0][0] // a["groups"], *a["kernel"]), a)


@register
class Conv1d(_ConvNd):
    name, axes = "conv1d", 1
    doc = "1-D convolution over (C, L): sequences, audio, temporal convolutional networks."
    what = "conv1d works on sequences"
    attrs = _conv_attrs(1)


@register
class Conv2d(_ConvNd):
    name, axes = "conv2d", 2
    doc = "2-D convolution over (C, H, W)."
    what = "conv2d works on images"
    attrs = _conv_attrs(2)


@register
class Conv3d(_ConvNd):
    name, axes = "conv3d", 3
    doc = "3-D convolution over (C, D, H, W): video clips (C3D) and volumes."
    what = "conv3d works on volumes"
    attrs = _conv_attrs(3)


def _transpose_attrs(axes: int) -> dict:
    names = AXIS_NAMES[axes]
    extra = "extra rows/columns added at the bottom/right" if axes == 2 else \
        "extra positions added at the end of each axis"
    return {
        "out": Attr(Int(1), doc="output channels"),
        "kernel": Attr(size_type(axes)),
        "stride": Attr(size_type(axes), 1),
        "padding": Attr(size_type(axes, 0), 0, f"int or {names} removed from each side of the output"),
        "output_padding": Attr(size_type(axes, 0), 0, extra),
        "dilation": Attr(size_type(axes), 1),
        "groups": Attr(Int(1), 1),
        "bias": Attr(Bool(), True),
    }


class _ConvTransposeNd(Op):
    """Transposed convolution over ``axes`` spatial axes of (C, *spatial)."""

    torch_output_writable = True  # a fresh tensor; backward reads the input and weights
    axes = 2
    what = ""
    autocast = "half"

    def infer(self, a, ins):
        shape = need_rank(ins, self.axes + 1, self.what)
        check_groups(shape[0], a)
        dims = []
        for n, k, s, p, op, d in zip(shape[1:], a["kernel"], a["stride"], a["padding"],
                                     a["output_padding"], a["dilation"]):
            if op >= max(s, d):
                raise ShapeError(f"output_padding {op} must be smaller than stride or dilation",
                                 "use output_padding < stride")
            # torch docs: (n - 1) * s - 2p + d (k - 1) + op + 1
            dims.append((n - 1) * s - 2 * p + d * (k - 1) + op + 1)
        if min(dims) < 1:
            raise ShapeError(f"output would be {dims_text(dims)}", "reduce the padding")
        return (a["out"], *dims)

    def params(self, a, ins, out):
        weights = ins[0][0] * a["out"] // a["groups"] * math.prod(a["kernel"])
        return weights + (a["out"] if a["bias"] else 0), 0

    def macs(self, a, ins, out):
        # Every input position is multiplied by every weight of its group once.
        return numel(ins[0]) * a["out"] // a["groups"] * math.prod(a["kernel"])

    def rf(self, a, ins, out):
        return [Window(k, s, p, d, transposed=True)
                for k, s, p, d in zip(a["kernel"], a["stride"], a["padding"], a["dilation"])]

    def torch_init(self, a, ins, out):
        return (f"nn.ConvTranspose{self.axes}d({ins[0][0]}, {a['out']}, "
                f"kernel_size={size_arg(a['kernel'])}, stride={size_arg(a['stride'])}, "
                f"padding={size_arg(a['padding'])}, output_padding={size_arg(a['output_padding'])}, "
                f"groups={a['groups']}, bias={a['bias']}, dilation={size_arg(a['dilation'])})")

    def torch_params(self, a):
        return weight_and_bias(self.axes + 2, a)

    def state(self, a, ins, out):
        # nn.ConvTransposeNd's weight: (in, out / groups, *kernel)
        return weight_and_bias_state((ins[0][0], a["out"] // a["groups"], *a["kernel"]), a)


@register
class ConvTranspose1d(_ConvTransposeNd):
    name, axes = "conv_transpose1d", 1
    doc = "1-D transposed convolution over (C, L): learned upsampling of sequences."
    what = "conv_transpose1d works on sequences"
    attrs = _transpose_attrs(1)


@register
class ConvTranspose2d(_ConvTransposeNd):
    name, axes = "conv_transpose2d", 2
    doc = "2-D transposed convolution (fractionally strided), as in DCGAN's generator."
    what = "conv_transpose2d works on images"
    attrs = _transpose_attrs(2)


@register
class ConvTranspose3d(_ConvTransposeNd):
    name, axes = "conv_transpose3d", 3
    doc = "3-D transposed convolution over (C, D, H, W): learned upsampling of volumes."
    what = "conv_transpose3d works on volumes"
    attrs = _transpose_attrs(3)
