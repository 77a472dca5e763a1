"""Dropout: identity at inference, random zeroing (scaled by 1/(1-p)) in training."""

from __future__ import annotations

from archc.ops.registry import Attr, Float, Op, need_rank, register


@register
class Dropout(Op):
    passes_values = True
    name = "dropout"
    doc = "Zeroes each element with probability p during training."
    attrs = {"p": Attr(Float(0, 1), 0.5, "drop probability")}

    def torch_init(self, a, ins, out):
        return f"nn.Dropout({a['p']!r})"


@register
class Dropout2d(Op):
    passes_values = True
    name = "dropout2d"
    doc = "Zeroes whole channels with probability p during training."
    attrs = {"p": Attr(Float(0, 1), 0.5, "drop probability")}

    def infer(self, a, ins):
        return need_rank(ins, 3, "dropout2d drops channels of images")

    def torch_init(self, a, ins, out):
        return f"nn.Dropout2d({a['p']!r})"
