"""Spatial resizing: upsample, zero padding and crop (U-Net's crop-and-concat)."""

from __future__ import annotations

import math

from archc.errors import ShapeError
from archc.ops.registry import (Attr, Bool, Choice, Op, Padding, Pair, Scale, Window, need_rank,
                                register)


@register
class Upsample(Op):
    name = "upsample"
    doc = "Nearest or bilinear upsampling by `scale` or to `size`."
    attrs = {
        "scale": Attr(Scale(), None, "factor, or [h, w] factors"),
        "size": Attr(Pair(1), None, "output [h, w] instead of a scale"),
        "mode": Attr(Choice("nearest", "bilinear"), "nearest"),
        "align_corners": Attr(Bool(), False, "bilinear only"),
    }

    def infer(self, a, ins):
        c, h, w = need_rank(ins, 3, "upsample works on images")
        if (a["scale"] is None) == (a["size"] is None):
            raise ShapeError("give exactly one of `scale` and `size`", "e.g. scale: 2")
        if a["size"]:
            return (c, *a["size"])
        sh, sw = a["scale"]
        oh, ow = math.floor(h * sh), math.floor(w * sw)  # torch's output size for a scale
        if oh < 1 or ow < 1:
            scale = f"{sh:g}" if sh == sw else f"[{sh:g}, {sw:g}]"
            raise ShapeError(f"upsampling {h}×{w} by {scale} leaves {oh}×{ow} pixels",
                             f"use a scale of at least {1 / min(h, w):.3g}, or give `size: [h, w]`")
        return (c, oh, ow)

    def rf(self, a, ins, out):
        # Nearest: output pixel o copies input pixel floor(o / f), the centre o / f when f is
        # whole. Bilinear mixes the two input pixels around coordinate (o + 0.5) / f - 0.5
        # (torch's half-pixel rule), or o (n - 1) / (m - 1) with align_corners. A window of
        # 2 taps is centred half a pixel after its first tap, so its padding is what puts
        # output 0 at that coordinate: its centre is 0.5 - pad input pixels.
        _, h, w = ins[0]
        wins = []
        for n, m in ((h, out[1]), (w, out[2])):
            f = m / n
            if a["mode"] == "nearest":
                wins.append(Window(1, 1 / f, 0))
            elif a["align_corners"]:
                wins.append(Window(2, (n - 1) / (m - 1) if m > 1 else 1, 0.5))
            else:
                wins.append(Window(2, 1 / f, 1 - 0.5 / f))
        return wins

    def torch_init(self, a, ins, out):
        corners = f", align_corners={a['align_corners']}" if a["mode"] == "bilinear" else ""
        return f"nn.Upsample(size={tuple(out[1:])}, mode={a['mode']!r}{corners})"

    def saved(self, a, ins, out, ctx):
        return []  # the gradient needs only the sizes


@register
class ZeroPad2d(Op):
    name = "zeropad2d"
    doc = "Pads H and W with zeros: int, [h, w] or [top, bottom, left, right]."
    attrs = {"padding": Attr(Padding(allow_same=False))}

    def infer(self, a, ins):
        c, h, w = need_rank(ins, 3, "zeropad2d works on images")
        t, b, l, r = a["padding"]
        return (c, h + t + b, w + l + r)

    def rf(self, a, ins, out):
        t, _, l, _ = a["padding"]
        return [Window(1, 1, t), Window(1, 1, l)]

    def torch_init(self, a, ins, out):
        t, b, l, r = a["padding"]
        return f"nn.ZeroPad2d(({l}, {r}, {t}, {b}))"

    def saved(self, a, ins, out, ctx):
        return []  # the gradient needs only the sizes


@register
class Crop(Op):
    name = "crop"
    doc = ("Centre crop to `size`, or to the height and width of a second input "
           "(U-Net's crop-and-concat with valid convolutions).")
    arity = (1, 2)
    attrs = {"size": Attr(Pair(1), None, "output [h, w]; omit when a second input gives it")}

    def offsets(self, a, ins):
        c, h, w = need_rank(ins, 3, "crop works on images")
        if len(ins) == 2:
            if len(ins[1]) != 3:
                raise ShapeError(f"the reference input {list(ins[1])} is not an image", "")
            th, tw = ins[1][1:]
        elif a["size"]:
            th, tw = a["size"]
        else:
            raise ShapeError("nothing says the crop size", "give `size` or a second input in `from`")
        if th > h or tw > w:
            raise ShapeError(f"cannot crop {h}×{w} to a larger {th}×{tw}",
                             "crop the larger tensor, or pad instead")
        return (h - th) // 2, (w - tw) // 2, th, tw

    def infer(self, a, ins):
        _, _, th, tw = self.offsets(a, ins)
        return (ins[0][0], th, tw)

    rf_first_input_only = True

    def rf(self, a, ins, out):
        top, left, _, _ = self.offsets(a, ins)
        return [Window(1, 1, -top), Window(1, 1, -left)]

    def torch_forward(self, a, ins, out, args, mod):
        top, left, th, tw = self.offsets(a, ins)
        return f"{args[0]}[:, :, {top}:{top + th}, {left}:{left + tw}]"

    def saved(self, a, ins, out, ctx):
        return []

    def layout(self, a, ins, out, contiguous):
        return "strided"  # a slice of the input
