"""Pooling over 1, 2 or 3 spatial axes: max/average windows, adaptive and global average.

As the convolutions (archc/ops/conv.py), each family is one class parametrised by ``axes``
(1: (C, L), 2: (C, H, W), 3: (C, D, H, W)). Pools have no parameters; their cost is not a
multiply-accumulate and is not counted in the MAC total (torchvision's convention)."""

from __future__ import annotations

from archc.errors import ShapeError
from archc.ops.conv import (befores, conv_pads, dims_text, extent, pad_forward, padded_input,
                            padding_type, size_arg, size_type, sized, torch_pad_args)
from archc.ops.registry import (AXIS_NAMES, Attr, Bool, Op, Saved, Window, fmt_tuple, need_rank,
                                numel, register, saved_new, window_out)

NEG_INF = "float('-inf')"

# what each rank of input is called in a rank error's hint
WORKS_ON = {1: "sequences", 2: "images", 3: "volumes"}


class _PoolNd(Op):
    kind = ""
    axes = 2
    torch_output_writable = True  # a fresh tensor; backward reads the input, not the output

    def normalize(self, a):
        return a | {"stride": a["stride"] or a["kernel"]}

    def dilation(self, a) -> tuple:
        return a.get("dilation", (1,) * self.axes)

    def infer(self, a, ins):
        shape = need_rank(ins, self.axes + 1, f"{self.name} works on {WORKS_ON[self.axes]}")
        pads = conv_pads(a, shape)
        if any(max(pads[2 * i:2 * i + 2]) > k // 2 for i, k in enumerate(a["kernel"])):
            raise ShapeError(f"padding {list(pads)} is more than half the kernel {dims_text(a['kernel'])}",
                             "torch allows at most kernel // 2 padding on each side of a pool")
        outs = [window_out(n, k, s, pads[2 * i] + pads[2 * i + 1], d, a["ceil_mode"])
                for i, (n, k, s, d) in enumerate(zip(shape[1:], a["kernel"], a["stride"], self.dilation(a)))]
        if min(outs) < 1:
            raise ShapeError(f"{sized('window', a['kernel'])} does not fit an input of "
                             f"{extent(shape[1:])}: output would be {dims_text(outs)}",
                             "use a larger input or fewer downsampling layers")
        return (shape[0], *outs)

    def rf(self, a, ins, out):
        pads = befores(conv_pads(a, ins[0]))
        return [Window(k, s, p, d) for k, s, p, d in zip(a["kernel"], a["stride"], pads, self.dilation(a))]

    def ceil_mode(self, a, ins) -> bool:
        """ceil_mode as the generated code passes it: only where it changes the output size.

        Where rounding up would add a window that starts in the right padding, torch drops
        it again, so ceil and floor agree; ONNX's MaxPool/AveragePool shape rule keeps that
        window. Passing False there gives the same numbers and an ONNX file whose shapes
        agree with torch's (found by tests/backends/test_onnx_random.py)."""
        if not a["ceil_mode"]:
            return False
        pads = conv_pads(a, ins[0])
        totals = [pads[2 * i] + pads[2 * i + 1] for i in range(self.axes)]
        return any(window_out(n, k, s, p, d, True) != window_out(n, k, s, p, d, False)
                   for n, k, s, p, d in zip(ins[0][1:], a["kernel"], a["stride"], totals, self.dilation(a)))

    def torch_call(self, a, ins, x: str) -> str:
        """``F.max_pool2d(x, ...)``: a function call, not a module (no state; a module call
        costs more, see activation.py)."""
        raise NotImplementedError

    def torch_forward(self, a, ins, out, args, mod):
        return self.torch_call(a, ins, pad_forward(conv_pads(a, ins[0]), args[0]))

    def saved(self, a, ins, out, ctx):
        return [padded_input(conv_pads(a, ins[0]), ins[0], ctx)]  # the window's input


def _pool_attrs(axes: int):
    return {
        "kernel": Attr(size_type(axes), doc="window size"),
        "stride": Attr(size_type(axes), None, "defaults to the kernel size"),
        "padding": Attr(padding_type(axes), 0),
        "ceil_mode": Attr(Bool(), False, "round the output size up, as Caffe/GoogLeNet do"),
    }


class _MaxPoolNd(_PoolNd):
    def torch_call(self, a, ins, x):
        pad = torch_pad_args(conv_pads(a, ins[0])) or "0"
        return (f"F.max_pool{self.axes}d({x}, kernel_size={size_arg(a['kernel'])}, "
                f"stride={size_arg(a['stride'])}, padding={pad}, dilation={size_arg(a['dilation'])}, "
                f"ceil_mode={self.ceil_mode(a, ins)})")

    def torch_forward(self, a, ins, out, args, mod):
        # Asymmetric padding is an F.pad first, filled with -inf so that a pad is never the
        # maximum (TensorFlow's 'same' max pool ignores padding; so does torch's own).
        return self.torch_call(a, ins, pad_forward(conv_pads(a, ins[0]), args[0], NEG_INF))

    def saved(self, a, ins, out, ctx):
        # max_pool*_with_indices keeps its input and the int64 index of every maximum
        return super().saved(a, ins, out, ctx) + [saved_new(ctx.batch * numel(out), 8)]


@register
class MaxPool1d(_MaxPoolNd):
    name, axes = "maxpool1d", 1
    doc = "Max pooling over L of (C, L)."
    attrs = _pool_attrs(1) | {"dilation": Attr(size_type(1), 1)}


@register
class MaxPool2d(_MaxPoolNd):
    name, axes = "maxpool2d", 2
    doc = "Max pooling over H, W."
    attrs = _pool_attrs(2) | {"dilation": Attr(size_type(2), 1)}


@register
class MaxPool3d(_MaxPoolNd):
    name, axes = "maxpool3d", 3
    doc = "Max pooling over D, H, W of (C, D, H, W)."
    attrs = _pool_attrs(3) | {"dilation": Attr(size_type(3), 1)}


def _avg_attrs(axes: int):
    return _pool_attrs(axes) | {
        "count_include_pad": Attr(Bool(), True, "count padded zeros in the average (torch's default)")}


class _AvgPoolNd(_PoolNd):
    def torch_call(self, a, ins, x):
        pad = torch_pad_args(conv_pads(a, ins[0])) or "0"
        return (f"F.avg_pool{self.axes}d({x}, kernel_size={size_arg(a['kernel'])}, "
                f"stride={size_arg(a['stride'])}, padding={pad}, ceil_mode={self.ceil_mode(a, ins)}, "
                f"count_include_pad={a['count_include_pad']})")

    def torch_forward(self, a, ins, out, args, mod):
        p = conv_pads(a, ins[0])
        if torch_pad_args(p) or a["count_include_pad"]:
            return super().torch_forward(a, ins, out, args, mod)
        # Asymmetric padding whose zeros must not count (TensorFlow's 'same' average): the
        # mean of the zero-padded input over the mean of a zero-padded mask of ones is the
        # sum over the real pixels divided by their number.
        ones = f"torch.ones_like({args[0]}[:1, :1])"
        return f"{self.torch_call(a, ins, pad_forward(p, args[0]))} / {self.torch_call(a, ins, pad_forward(p, ones))}"

    def saved(self, a, ins, out, ctx):
        p = conv_pads(a, ins[0])
        if torch_pad_args(p) or a["count_include_pad"]:
            return super().saved(a, ins, out, ctx)
        # the division by the pooled mask of ones keeps that mask (one sample, one channel)
        return super().saved(a, ins, out, ctx) + [saved_new(numel(out[1:]))]


@register
class AvgPool1d(_AvgPoolNd):
    name, axes = "avgpool1d", 1
    doc = "Average pooling over L of (C, L)."
    attrs = _avg_attrs(1)


@register
class AvgPool2d(_AvgPoolNd):
    name, axes = "avgpool2d", 2
    doc = "Average pooling over H, W (LeNet-5's subsampling)."
    attrs = _avg_attrs(2)


@register
class AvgPool3d(_AvgPoolNd):
    name, axes = "avgpool3d", 3
    doc = "Average pooling over D, H, W of (C, D, H, W)."
    attrs = _avg_attrs(3)


@register
class GlobalAvgPool(Op):
    name = "global_avgpool"
    doc = ("Mean over the spatial axes of (C, L), (C, H, W) or (C, D, H, W), keeping them as "
           "size 1 like torch's AdaptiveAvgPool2d(1); `keepdims: false` gives (C,) like Keras' "
           "GlobalAveragePooling2D.")
    attrs = {"keepdims": Attr(Bool(), True)}

    def infer(self, a, ins):
        shape = need_rank(ins, (2, 3, 4), "global_avgpool works on feature maps")
        return (shape[0], *(1 for _ in shape[1:])) if a["keepdims"] else (shape[0],)

    def rf(self, a, ins, out):
        return "global"

    def torch_forward(self, a, ins, out, args, mod):
        # A mean, not AdaptiveAvgPool2d: same numbers, and it exports to ONNX correctly
        # for any input size.
        dims = tuple(range(2, len(ins[0]) + 1))  # the spatial axes, batch included
        return f"{args[0]}.mean(dim={fmt_tuple(dims)}, keepdim={a['keepdims']})"

    def saved(self, a, ins, out, ctx):
        return []  # a mean's backward needs only the sizes


class _AdaptiveAvgPoolNd(Op):
    axes = 2

    def infer(self, a, ins):
        c, *_ = need_rank(ins, self.axes + 1, f"{self.name} works on {WORKS_ON[self.axes]}")
        return (c, *a["size"])

    def rf(self, a, ins, out):
        sizes = ins[0][1:]
        if tuple(sizes) == tuple(a["size"]):
            return None
        if all(n % m == 0 for n, m in zip(sizes, a["size"])):  # equal, non-overlapping bins
            return [Window(n // m, n // m, 0) for n, m in zip(sizes, a["size"])]
        return "global"  # overlapping bins of unequal size: no single window describes it

    def torch_forward(self, a, ins, out, args, mod):
        return f"F.adaptive_avg_pool{self.axes}d({args[0]}, {size_arg(a['size'])})"

    def saved(self, a, ins, out, ctx):
        # to one value per channel torch takes a mean (keeps nothing); else it keeps the input
        return [] if numel(a["size"]) == 1 else [Saved("input")]


@register
class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    name, axes = "adaptive_avgpool1d", 1
    doc = "Average pooling of (C, L) to a fixed length (torch's AdaptiveAvgPool1d)."
    attrs = {"size": Attr(size_type(1), doc=f"output {AXIS_NAMES[1]}")}


@register
class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    name, axes = "adaptive_avgpool2d", 2
    doc = "Average pooling to a fixed output size (torch's AdaptiveAvgPool2d)."
    attrs = {"size": Attr(size_type(2), doc="output [h, w]")}


@register
class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    name, axes = "adaptive_avgpool3d", 3
    doc = "Average pooling of (C, D, H, W) to a fixed size (torch's AdaptiveAvgPool3d)."
    attrs = {"size": Attr(size_type(3), doc=f"output {AXIS_NAMES[3]}")}

    def torch_forward(self, a, ins, out, args, mod):
        # torch.onnx (2.14) has no ONNX function for adaptive_avg_pool3d, so the code avoids
        # it. Equal bins are one avg_pool3d. Otherwise: a mean over a box is the mean over
        # its depth of the means over its height × width (every slice holds as many
        # values), so H, W are pooled in 2-D with the depth folded into the channels, then
        # D in 2-D beside the pooled H·W, whose bins of one leave it as it is.
        c, d, h, w = ins[0]
        od, oh, ow = a["size"]
        if d % od == 0 and h % oh == 0 and w % ow == 0:
            k = (d // od, h // oh, w // ow)
            return f"F.avg_pool3d({args[0]}, kernel_size={k}, stride={k})"
        hw = f"F.adaptive_avg_pool2d({args[0]}.flatten(1, 2), {(oh, ow)})"  # (N, C·D, oh, ow)
        dhw = f"F.adaptive_avg_pool2d({hw}.unflatten(1, {(c, d)}).flatten(3), {(od, oh * ow)})"  # (N, C, od, oh·ow)
        return f"{dhw}.unflatten(3, {(oh, ow)})"

    def saved(self, a, ins, out, ctx):
        c, d, h, w = ins[0]
        od, oh, ow = a["size"]
        if d % od == 0 and h % oh == 0 and w % ow == 0:
            return [Saved("input")]  # one avg_pool3d
        # two adaptive 2-D pools (see torch_forward): each keeps its input unless it pools
        # to a single value, which torch does with a mean
        first = [Saved("input")] if oh * ow > 1 else []
        second = [saved_new(ctx.batch * c * d * oh * ow)] if od * oh * ow > 1 else []
        return first + second
