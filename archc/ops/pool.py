"""Pooling: max/average windows and global (adaptive) average pooling.

Pools have no parameters; their cost is not a multiply-accumulate and is not counted in
the MAC total (torchvision's convention)."""

from __future__ import annotations

from archc.errors import ShapeError
from archc.ops.conv import conv_pads, pad_forward, torch_pad_args
from archc.ops.registry import (Attr, Bool, Op, Padding, Pair, Window, need_rank, register,
                                window_out)

NEG_INF = "float('-inf')"


class _Pool2d(Op):
    kind = ""
    torch_output_writable = True  # a fresh tensor; backward reads the input, not the output

    def normalize(self, a):
        return a | {"stride": a["stride"] or a["kernel"]}

    def infer(self, a, ins):
        c, h, w = need_rank(ins, 3, f"{self.name} works on images")
        t, b, l, r = conv_pads(a, ins[0])
        (kh, kw), (sh, sw), (dh, dw) = a["kernel"], a["stride"], a.get("dilation", (1, 1))
        if max(t, b) > kh // 2 or max(l, r) > kw // 2:
            raise ShapeError(f"padding {[t, b, l, r]} is more than half the kernel {kh}×{kw}",
                             "torch allows at most kernel // 2 padding on each side of a pool")
        oh = window_out(h, kh, sh, t + b, dh, a["ceil_mode"])
        ow = window_out(w, kw, sw, l + r, dw, a["ceil_mode"])
        if oh < 1 or ow < 1:
            raise ShapeError(f"a {kh}×{kw} window does not fit an input of {h}×{w}: "
                             f"output would be {oh}×{ow}",
                             "use a larger input or fewer downsampling layers")
        return (c, oh, ow)

    def rf(self, a, ins, out):
        t, _, l, _ = conv_pads(a, ins[0])
        return [Window(k, s, p, d) for k, s, p, d in
                zip(a["kernel"], a["stride"], (t, l), a.get("dilation", (1, 1)))]

    def ceil_mode(self, a, ins) -> bool:
        """ceil_mode as the generated code passes it: only where it changes the output size.

        Where rounding up would add a window that starts in the right padding, torch drops
        it again, so ceil and floor agree; ONNX's MaxPool/AveragePool shape rule keeps that
        window. Passing False there gives the same numbers and an ONNX file whose shapes
        agree with torch's (found by tests/backends/test_onnx_random.py)."""
        if not a["ceil_mode"]:
            return False
        _, h, w = ins[0]
        t, b, l, r = conv_pads(a, ins[0])
        dil = a.get("dilation", (1, 1))
        return any(window_out(n, k, s, p, d, True) != window_out(n, k, s, p, d, False)
                   for n, k, s, p, d in zip((h, w), a["kernel"], a["stride"], (t + b, l + r), dil))

    def torch_call(self, a, ins, x: str) -> str:
        """``F.max_pool2d(x, ...)``: a function call, not a module (no state; a module call
        costs more, see activation.py)."""
        raise NotImplementedError

    def torch_forward(self, a, ins, out, args, mod):
        return self.torch_call(a, ins, pad_forward(conv_pads(a, ins[0]), args[0]))


def _pool_attrs():
    return {
        "kernel": Attr(Pair(1), doc="window size"),
        "stride": Attr(Pair(1), None, "defaults to the kernel size"),
        "padding": Attr(Padding(), 0),
        "ceil_mode": Attr(Bool(), False, "round the output size up, as Caffe/GoogLeNet do"),
    }


@register
class MaxPool2d(_Pool2d):
    name = "maxpool2d"
    doc = "Max pooling over H, W."
    attrs = _pool_attrs() | {"dilation": Attr(Pair(1), 1)}

    def torch_call(self, a, ins, x):
        pad = torch_pad_args(conv_pads(a, ins[0])) or "0"
        return (f"F.max_pool2d({x}, kernel_size={a['kernel']}, stride={a['stride']}, padding={pad}, "
                f"dilation={a['dilation']}, ceil_mode={self.ceil_mode(a, ins)})")

    def torch_forward(self, a, ins, out, args, mod):
        # Asymmetric padding is an F.pad first, filled with -inf so that a pad is never the
        # maximum (TensorFlow's 'same' max pool ignores padding; so does torch's own).
        return self.torch_call(a, ins, pad_forward(conv_pads(a, ins[0]), args[0], NEG_INF))


@register
class AvgPool2d(_Pool2d):
    name = "avgpool2d"
    doc = "Average pooling over H, W (LeNet-5's subsampling)."
    attrs = _pool_attrs() | {
        "count_include_pad": Attr(Bool(), True, "count padded zeros in the average (torch's default)")}

    def torch_call(self, a, ins, x):
        pad = torch_pad_args(conv_pads(a, ins[0])) or "0"
        return (f"F.avg_pool2d({x}, kernel_size={a['kernel']}, stride={a['stride']}, padding={pad}, "
                f"ceil_mode={self.ceil_mode(a, ins)}, count_include_pad={a['count_include_pad']})")

    def torch_forward(self, a, ins, out, args, mod):
        p = conv_pads(a, ins[0])
        if torch_pad_args(p) or a["count_include_pad"]:
            return super().torch_forward(a, ins, out, args, mod)
        # Asymmetric padding whose zeros must not count (TensorFlow's 'same' average): the
        # mean of the zero-padded input over the mean of a zero-padded mask of ones is the
        # sum over the real pixels divided by their number.
        ones = f"torch.ones_like({args[0]}[:1, :1])"
        return f"{self.torch_call(a, ins, pad_forward(p, args[0]))} / {self.torch_call(a, ins, pad_forward(p, ones))}"


@register
class GlobalAvgPool(Op):
    name = "global_avgpool"
    doc = ("Mean over H and W, keeping (C, 1, 1) like torch's AdaptiveAvgPool2d(1); "
           "`keepdims: false` gives (C,) like Keras' GlobalAveragePooling2D.")
    attrs = {"keepdims": Attr(Bool(), True)}

    def infer(self, a, ins):
        c, h, w = need_rank(ins, 3, "global_avgpool works on images")
        return (c, 1, 1) if a["keepdims"] else (c,)

    def rf(self, a, ins, out):
        return "global"

    def torch_forward(self, a, ins, out, args, mod):
        # A mean, not AdaptiveAvgPool2d: same numbers, and it exports to ONNX correctly
        # for any input size.
        return f"{args[0]}.mean(dim=(2, 3), keepdim={a['keepdims']})"


@register
class AdaptiveAvgPool2d(Op):
    name = "adaptive_avgpool2d"
    doc = "Average pooling to a fixed output size (torch's AdaptiveAvgPool2d)."
    attrs = {"size": Attr(Pair(1), doc="output [h, w]")}

    def infer(self, a, ins):
        c, h, w = need_rank(ins, 3, "adaptive_avgpool2d works on images")
        return (c, *a["size"])

    def rf(self, a, ins, out):
        _, h, w = ins[0]
        if (h, w) == tuple(a["size"]):
            return None
        if h % a["size"][0] == 0 and w % a["size"][1] == 0:  # equal, non-overlapping bins
            kh, kw = h // a["size"][0], w // a["size"][1]
            return [Window(kh, kh, 0), Window(kw, kw, 0)]
        return "global"  # overlapping bins of unequal size: no single window describes it

    def torch_forward(self, a, ins, out, args, mod):
        return f"F.adaptive_avg_pool2d({args[0]}, {a['size']})"
