"""Fully connected layer: y = x Wᵀ + b over the last dimension (torch.nn.Linear)."""

from __future__ import annotations

from archc.ops.registry import Attr, Bool, Int, Op, Saved, numel, register, saved_new


@register
class Linear(Op):
    torch_output_writable = True  # a fresh tensor; backward reads the input and weights
    name = "linear"
    autocast = "half"
    doc = "Fully connected layer over the last dimension (Keras' Dense)."
    attrs = {"out": Attr(Int(1), doc="output features"), "bias": Attr(Bool(), True)}

    def infer(self, a, ins):
        return (*ins[0][:-1], a["out"])

    def params(self, a, ins, out):
        return ins[0][-1] * a["out"] + (a["out"] if a["bias"] else 0), 0

    def macs(self, a, ins, out):
        return numel(ins[0]) * a["out"]  # one MAC per weight per position, bias excluded

    def rf(self, a, ins, out):
        return "global"  # every output mixes the whole last axis

    def tied_weight(self, a, ins):
        return "weight", (a["out"], ins[0][-1])

    def torch_init(self, a, ins, out):
        return f"nn.Linear({ins[0][-1]}, {a['out']}, bias={a['bias']})"

    def torch_params(self, a):
        return {"weight": 2} | ({"bias": 1} if a["bias"] else {})

    def state(self, a, ins, out):
        return {"weight": (a["out"], ins[0][-1])} | ({"bias": (a["out"],)} if a["bias"] else {})

    def saved(self, a, ins, out, ctx):
        return linear_saves(ins[0], ctx)


def linear_saves(shape, ctx) -> list:
    """What x·Wᵀ + b keeps: x, for the weight's gradient only (a frozen layer keeps just its
    weight, a parameter). A permuted or sliced x of more than one axis is copied first by
    matmul's reshape to 2-D, and the copy is what it keeps."""
    if not ctx.trainable:
        return []
    if len(shape) > 1 and not ctx.contiguous[0]:
        return [saved_new(ctx.batch * numel(shape))]
    return [Saved("input")]
