"""Normalisation layers.

Batch norm's affine weight and bias are trainable parameters; its running mean and
variance plus the ``num_batches_tracked`` counter are buffers (2C + 1 values), counted apart
as non-trainable exactly as torch's ``buffers()`` holds them (instance norm's too, when it
tracks running statistics). Group, instance and RMS norm take (C, L), (C, H, W) or
(C, D, H, W), channels first, as torch does."""

from __future__ import annotations

from archc.errors import ShapeError
from archc.ops.registry import Attr, Bool, Float, Int, Op, Saved, need_rank, numel, register, saved_new


def running_stats(c: int) -> dict[str, tuple]:
    """Batch norm's buffers (instance norm's when it tracks them): a mean and a variance per
    channel, and the int64 counter of batches seen."""
    return {"running_mean": (c,), "running_var": (c,), "num_batches_tracked": ()}


def affine_state(shape: tuple, a: dict, bias: bool = True) -> dict[str, tuple]:
    """A norm's learned weight (and bias) of ``shape``, when ``affine``."""
    if not a["affine"]:
        return {}
    return {"weight": shape} | ({"bias": shape} if bias else {})


def stats(count: int) -> list[Saved]:
    """The mean and the inverse deviation a norm keeps per group it normalised, in float32."""
    return [saved_new(count, 4), saved_new(count, 4)]


class _BatchNorm(Op):
    ranks: tuple = ()
    torch_output_writable = True  # a fresh tensor; backward reads the input and statistics
    torch_class = ""
    attrs = {
        "eps": Attr(Float(0, exclusive_min=True), 1e-5),
        "momentum": Attr(Float(0, 1), 0.1, "torch's convention: new = (1 - m) * old + m * batch"),
        "affine": Attr(Bool(), True),
    }

    def infer(self, a, ins):
        return need_rank(ins, self.ranks, f"{self.name} normalises channels")

    def params(self, a, ins, out):
        c = ins[0][0]
        return (2 * c if a["affine"] else 0), 2 * c + 1

    def buffer_bytes(self, a, buffers):
        return 4 * (buffers - 1) + 8  # num_batches_tracked is an int64

    def torch_init(self, a, ins, out):
        return (f"nn.{self.torch_class}({ins[0][0]}, eps={a['eps']!r}, momentum={a['momentum']!r}, "
                f"affine={a['affine']})")

    def saved(self, a, ins, out, ctx):
        # the input, and the batch's mean and inverse deviation per channel (its weight and
        # running statistics are a parameter and buffers)
        return [Saved("input"), *stats(ins[0][0])]

    def torch_params(self, a):
        return {"weight": 1, "bias": 1} if a["affine"] else {}

    def state(self, a, ins, out):
        c = ins[0][0]
        return affine_state((c,), a) | running_stats(c)


@register
class BatchNorm1d(_BatchNorm):
    name = "batchnorm1d"
    doc = "Batch normalisation of (features) or (channels, length)."
    ranks = (1, 2)
    torch_class = "BatchNorm1d"


@register
class BatchNorm2d(_BatchNorm):
    name = "batchnorm2d"
    doc = "Batch normalisation of the channels of (C, H, W)."
    ranks = (3,)
    torch_class = "BatchNorm2d"


@register
class BatchNorm3d(_BatchNorm):
    name = "batchnorm3d"
    doc = "Batch normalisation of the channels of (C, D, H, W)."
    ranks = (4,)
    torch_class = "BatchNorm3d"


@register
class LayerNorm(Op):
    name = "layernorm"
    autocast = "float"
    doc = "Layer normalisation over the last `dims` dimensions."
    onnx_opset = 17  # ONNX's LayerNormalization
    attrs = {
        "dims": Attr(Int(1), 1, "how many trailing dimensions to normalise over"),
        "eps": Attr(Float(0, exclusive_min=True), 1e-5),
        "affine": Attr(Bool(), True),
    }

    def infer(self, a, ins):
        if a["dims"] > len(ins[0]):
            raise ShapeError(f"dims={a['dims']} but the input {list(ins[0])} has only "
                             f"{len(ins[0])} dimensions", "lower dims")
        return ins[0]

    def params(self, a, ins, out):
        return (2 * numel(ins[0][-a["dims"]:]) if a["affine"] else 0), 0

    def torch_init(self, a, ins, out):
        return (f"nn.LayerNorm({list(ins[0][-a['dims']:])}, eps={a['eps']!r}, "
                f"elementwise_affine={a['affine']})")

    def saved(self, a, ins, out, ctx):
        # the input, and a mean and a 1/σ per normalised row
        return [Saved("input"), *stats(ctx.batch * numel(ins[0][:-a["dims"]]))]

    def torch_params(self, a):
        return {"weight": a["dims"], "bias": a["dims"]} if a["affine"] else {}

    def state(self, a, ins, out):
        return affine_state(tuple(ins[0][-a["dims"]:]), a)


@register
class LocalResponseNorm(Op):
    name = "local_response_norm"
    autocast = "float"
    doc = "Local response normalisation across channels (AlexNet, GoogLeNet)."
    attrs = {
        "size": Attr(Int(1), doc="number of neighbouring channels"),
        "alpha": Attr(Float(0), 1e-4),
        "beta": Attr(Float(0), 0.75),
        "k": Attr(Float(0), 1.0),
    }

    def infer(self, a, ins):
        return need_rank(ins, (2, 3), "local_response_norm works across channels")

    def torch_init(self, a, ins, out):
        return f"nn.LocalResponseNorm({a['size']}, alpha={a['alpha']!r}, beta={a['beta']!r}, k={a['k']!r})"

    def saved(self, a, ins, out, ctx):
        # F.local_response_norm is composite: x·x keeps x; the squares padded by size - 1
        # channels feed an average pool, which keeps them; (k + α·avg)^β keeps its base; x / d
        # keeps x and d
        n, c, rest = ctx.batch, ins[0][0], numel(ins[0][1:])
        return [Saved("input"), saved_new(n * (c + a["size"] - 1) * rest), saved_new(n * numel(ins[0])),
                saved_new(n * numel(ins[0]))]


# inputs of the norms that work on any feature map: (C, L), (C, H, W), (C, D, H, W)
FEATURE_MAPS = (2, 3, 4)


@register
class GroupNorm(Op):
    name = "groupnorm"
    autocast = "float"
    doc = "Group normalisation (Wu & He, 2018): statistics over groups of channels and all positions."
    attrs = {
        "groups": Attr(Int(1), doc="number of channel groups (1 = layer norm over (C, ...), C = instance norm)"),
        "eps": Attr(Float(0, exclusive_min=True), 1e-5),
        "affine": Attr(Bool(), True, "a weight and a bias per channel"),
    }

    def infer(self, a, ins):
        c = need_rank(ins, FEATURE_MAPS, "groupnorm normalises channels")[0]
        if c % a["groups"]:
            raise ShapeError(f"groups={a['groups']} must divide the input channels ({c})",
                             "choose groups that divides the channel count")
        return ins[0]

    def params(self, a, ins, out):
        return (2 * ins[0][0] if a["affine"] else 0), 0

    def torch_init(self, a, ins, out):
        return f"nn.GroupNorm({a['groups']}, {ins[0][0]}, eps={a['eps']!r}, affine={a['affine']})"

    def saved(self, a, ins, out, ctx):
        return [Saved("input"), *stats(ctx.batch * a["groups"])]  # statistics per sample and group

    def torch_params(self, a):
        return {"weight": 1, "bias": 1} if a["affine"] else {}

    def state(self, a, ins, out):
        return affine_state((ins[0][0],), a)


@register
class InstanceNorm(Op):
    name = "instancenorm"
    doc = ("Instance normalisation (style transfer, CycleGAN): each channel of each sample "
           "over its positions; nn.InstanceNorm1d/2d/3d by the input's rank.")
    attrs = {
        "eps": Attr(Float(0, exclusive_min=True), 1e-5),
        "affine": Attr(Bool(), False, "a weight and a bias per channel (torch's default: no)"),
        "track_running_stats": Attr(Bool(), False, "keep running mean and variance, used in eval mode "
                                                   "(torch's default: no, batch statistics always)"),
    }

    def infer(self, a, ins):
        shape = need_rank(ins, FEATURE_MAPS, "instancenorm normalises channels")
        if numel(shape[1:]) == 1:  # torch refuses: the variance of one value is no statistic
            raise ShapeError(f"instancenorm needs more than one position per channel, got {list(shape)}",
                             "normalise before the layer that shrinks the input to one position")
        return shape

    def params(self, a, ins, out):
        c = ins[0][0]
        # the buffers, when tracked, are batch norm's: running mean, variance, counter
        return (2 * c if a["affine"] else 0), (2 * c + 1 if a["track_running_stats"] else 0)

    def buffer_bytes(self, a, buffers):
        return 4 * (buffers - 1) + 8 if buffers else 0  # as batch norm's: an int64 counter

    def torch_init(self, a, ins, out):
        return (f"nn.InstanceNorm{len(ins[0]) - 1}d({ins[0][0]}, eps={a['eps']!r}, affine={a['affine']}, "
                f"track_running_stats={a['track_running_stats']})")

    def torch_params(self, a):
        return {"weight": 1, "bias": 1} if a["affine"] else {}

    def state(self, a, ins, out):
        c = ins[0][0]
        return affine_state((c,), a) | (running_stats(c) if a["track_running_stats"] else {})

    def saved(self, a, ins, out, ctx):
        # torch runs batch norm on the input viewed as (1, N·C, ...): statistics per sample
        # and channel; the weight and running statistics are repeated N times, and batch
        # norm keeps those copies (not the bias's)
        per = ctx.batch * ins[0][0]
        copies = (1 if a["affine"] else 0) + (2 if a["track_running_stats"] else 0)
        return [Saved("input"), *stats(per)] + [saved_new(per, 4)] * copies


@register
class RMSNorm(Op):
    name = "rmsnorm"
    autocast = "float"
    doc = ("Root-mean-square normalisation over the last `dims` dimensions (Zhang & Sennrich, "
           "2019; LLaMA): x / sqrt(mean(x²) + eps), times a weight; no mean, no bias.")
    attrs = {
        "dims": Attr(Int(1), 1, "how many trailing dimensions to normalise over"),
        "eps": Attr(Float(0, exclusive_min=True), None, "none: torch's default, the dtype's machine epsilon"),
        "affine": Attr(Bool(), True, "a weight per normalised element"),
    }

    def infer(self, a, ins):
        if a["dims"] > len(ins[0]):
            raise ShapeError(f"dims={a['dims']} but the input {list(ins[0])} has only "
                             f"{len(ins[0])} dimensions", "lower dims")
        return ins[0]

    def params(self, a, ins, out):
        return (numel(ins[0][-a["dims"]:]) if a["affine"] else 0), 0

    def torch_init(self, a, ins, out):
        return (f"nn.RMSNorm({list(ins[0][-a['dims']:])}, eps={a['eps']!r}, "
                f"elementwise_affine={a['affine']})")

    def saved(self, a, ins, out, ctx):
        # composite in torch 2.x: x² keeps x, rsqrt(mean + eps) keeps its result (one per row),
        # x · r keeps both; the learned weight's product keeps the normalised x (a new tensor)
        rows = ctx.batch * numel(ins[0][:-a["dims"]])
        weighted = [saved_new(ctx.batch * numel(ins[0]))] if a["affine"] and ctx.trainable else []
        return [Saved("input"), saved_new(rows)] + weighted

    def torch_params(self, a):
        return {"weight": a["dims"]} if a["affine"] else {}

    def state(self, a, ins, out):
        return affine_state(tuple(ins[0][-a["dims"]:]), a, bias=False)
