"""Dropout: identity at inference, random zeroing (scaled by 1/(1-p)) in training."""

from __future__ import annotations

from archc.ops.registry import Attr, Float, Op, need_rank, numel, register, saved_new


@register
class Dropout(Op):
    passes_values = True
    name = "dropout"
    doc = "Zeroes each element with probability p during training."
    attrs = {"p": Attr(Float(0, 1), 0.5, "drop probability")}

    def torch_init(self, a, ins, out):
        return f"nn.Dropout({a['p']!r})"

    def saved(self, a, ins, out, ctx):
        if a["p"] == 0.0:
            return []
        # CUDA's fused native_dropout keeps a bool mask; elsewhere torch multiplies by a
        # scaled noise tensor of the input's dtype and keeps that (aten's _dropout_impl)
        return [saved_new(ctx.batch * numel(ins[0]), 1 if ctx.device == "cuda" else 0)]

    def layout(self, a, ins, out, contiguous):
        return "view" if a["p"] == 0.0 else "new"  # p = 0 hands the input back as it is


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

    def saved(self, a, ins, out, ctx):
        return [saved_new(ctx.batch * ins[0][0])] if a["p"] else []  # one scaled noise value per channel

    def layout(self, a, ins, out, contiguous):
        return "view" if a["p"] == 0.0 else "new"
