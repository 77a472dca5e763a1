"""Convolutions: conv2d and conv_transpose2d.

Counts follow torch and torchvision: parameters are ``out * in/groups * kh * kw`` weights
(+ ``out`` biases); MACs are one multiply-accumulate per weight per output pixel, bias
excluded (the convention of torchvision's published GFLOPS, which are in fact GMACs).
"""

from __future__ import annotations

from archc.errors import ShapeError
from archc.ops.registry import (Attr, Bool, Int, Op, Padding, Pair, Window, need_rank, numel,
                                register, same_padding, window_out)


def conv_pads(a: dict, shape) -> tuple[int, int, int, int]:
    """Padding (top, bottom, left, right) of a window op on an input (C, H, W).

    'same' follows Keras/TensorFlow: output = ceil(in / stride), the odd pixel of padding
    at the bottom/right."""
    if a["padding"] != "same":
        return a["padding"]
    (kh, kw), (sh, sw) = a["kernel"], a.get("stride", (1, 1))
    dh, dw = a.get("dilation", (1, 1))
    return same_padding(shape[1], kh, sh, dh) + same_padding(shape[2], kw, sw, dw)


def torch_pad_args(p) -> str | None:
    """Symmetric padding goes into the torch layer; asymmetric needs an F.pad first."""
    t, b, l, r = p
    return f"({t}, {l})" if (t, l) == (b, r) else None


def pad_forward(p, arg: str, value: str = "") -> str:
    """``arg`` padded by F.pad when the padding is asymmetric (``value``: the fill, zeros
    unless given, e.g. ``float('-inf')`` for max pooling, which never picks a pad)."""
    t, b, l, r = p
    fill = f", value={value}" if value else ""
    return arg if torch_pad_args(p) else f"F.pad({arg}, ({l}, {r}, {t}, {b}){fill})"


def weight_and_bias(rank: int, a: dict) -> dict[str, int]:
    """The tensors of a layer with a weight of ``rank`` and an optional bias."""
    return {"weight": rank} | ({"bias": 1} if a["bias"] else {})


def check_groups(cin: int, a: dict) -> None:
    g = a["groups"]
    if cin % g or a["out"] % g:
        raise ShapeError(f"groups={g} must divide both input channels ({cin}) and out ({a['out']})",
                         "choose groups that divides both channel counts")


@register
class Conv2d(Op):
    torch_output_writable = True  # a fresh tensor; backward reads the input and weights
    name = "conv2d"
    doc = "2-D convolution over (C, H, W)."
    attrs = {
        "out": Attr(Int(1), doc="output channels"),
        "kernel": Attr(Pair(1), doc="kernel size, int or [h, w]"),
        "stride": Attr(Pair(1), 1),
        "padding": Attr(Padding(), 0, "int, [h, w], [top, bottom, left, right], 'same' or 'valid'"),
        "dilation": Attr(Pair(1), 1),
        "groups": Attr(Int(1), 1),
        "bias": Attr(Bool(), True),
    }

    def infer(self, a, ins):
        c, h, w = need_rank(ins, 3, "conv2d works on images")
        check_groups(c, a)
        t, b, l, r = conv_pads(a, ins[0])
        (kh, kw), (sh, sw), (dh, dw) = a["kernel"], a["stride"], a["dilation"]
        oh, ow = window_out(h, kh, sh, t + b, dh), window_out(w, kw, sw, l + r, dw)
        if oh < 1 or ow < 1:
            raise ShapeError(f"a {kh}×{kw} kernel (dilation {dh}×{dw}) does not fit an input "
                             f"of {h}×{w} with padding {t + b}×{l + r}: output would be {oh}×{ow}",
                             "use a larger input, more padding or fewer downsampling layers")
        return (a["out"], oh, ow)

    def params(self, a, ins, out):
        kh, kw = a["kernel"]
        return a["out"] * ins[0][0] // a["groups"] * kh * kw + (a["out"] if a["bias"] else 0), 0

    def macs(self, a, ins, out):
        kh, kw = a["kernel"]
        return numel(out) * ins[0][0] // a["groups"] * kh * kw

    def rf(self, a, ins, out):
        t, _, l, _ = conv_pads(a, ins[0])
        return [Window(k, s, p, d) for k, s, p, d in zip(a["kernel"], a["stride"], (t, l), a["dilation"])]

    def torch_init(self, a, ins, out):
        pad = torch_pad_args(conv_pads(a, ins[0])) or "0"
        return (f"nn.Conv2d({ins[0][0]}, {a['out']}, kernel_size={a['kernel']}, stride={a['stride']}, "
                f"padding={pad}, dilation={a['dilation']}, groups={a['groups']}, bias={a['bias']})")

    def torch_forward(self, a, ins, out, args, mod):
        return f"{mod}({pad_forward(conv_pads(a, ins[0]), args[0])})"

    def torch_params(self, a):
        return weight_and_bias(4, a)


@register
class ConvTranspose2d(Op):
    torch_output_writable = True  # a fresh tensor; backward reads the input and weights
    name = "conv_transpose2d"
    doc = "2-D transposed convolution (fractionally strided), as in DCGAN's generator."
    attrs = {
        "out": Attr(Int(1), doc="output channels"),
        "kernel": Attr(Pair(1)),
        "stride": Attr(Pair(1), 1),
        "padding": Attr(Pair(0), 0, "int or [h, w] removed from each side of the output"),
        "output_padding": Attr(Pair(0), 0, "extra rows/columns added at the bottom/right"),
        "dilation": Attr(Pair(1), 1),
        "groups": Attr(Int(1), 1),
        "bias": Attr(Bool(), True),
    }

    def infer(self, a, ins):
        c, h, w = need_rank(ins, 3, "conv_transpose2d works on images")
        check_groups(c, a)
        dims = []
        for n, k, s, p, op, d in zip((h, w), a["kernel"], a["stride"], a["padding"],
                                     a["output_padding"], a["dilation"]):
            if op >= max(s, d):
                raise ShapeError(f"output_padding {op} must be smaller than stride or dilation",
                                 "use output_padding < stride")
            # torch docs: (n - 1) * s - 2p + d (k - 1) + op + 1
            dims.append((n - 1) * s - 2 * p + d * (k - 1) + op + 1)
        if min(dims) < 1:
            raise ShapeError(f"output would be {dims[0]}×{dims[1]}", "reduce the padding")
        return (a["out"], *dims)

    def params(self, a, ins, out):
        kh, kw = a["kernel"]
        return ins[0][0] * a["out"] // a["groups"] * kh * kw + (a["out"] if a["bias"] else 0), 0

    def macs(self, a, ins, out):
        # Every input pixel is multiplied by every weight of its group once.
        kh, kw = a["kernel"]
        return numel(ins[0]) * a["out"] // a["groups"] * kh * kw

    def rf(self, a, ins, out):
        return [Window(k, s, p, d, transposed=True)
                for k, s, p, d in zip(a["kernel"], a["stride"], a["padding"], a["dilation"])]

    def torch_init(self, a, ins, out):
        return (f"nn.ConvTranspose2d({ins[0][0]}, {a['out']}, kernel_size={a['kernel']}, "
                f"stride={a['stride']}, padding={a['padding']}, output_padding={a['output_padding']}, "
                f"groups={a['groups']}, bias={a['bias']}, dilation={a['dilation']})")

    def torch_params(self, a):
        return weight_and_bias(4, a)
