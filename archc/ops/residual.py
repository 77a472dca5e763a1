"""Ops of residual branches: stochastic depth and layer scale.

* ``drop_path`` — stochastic depth (Huang et al., "Deep Networks with Stochastic Depth",
  2016), per sample as torchvision.ops.StochasticDepth(p, "row"): in training a whole
  sample's branch is zeroed with probability p and the survivors are scaled by 1/(1-p); at
  inference it is the identity.
* ``layer_scale`` — a learned per-channel scale of a branch (Touvron et al., CaiT, 2021;
  torchvision's ConvNeXt: ``self.layer_scale * block(x)`` with a (C, 1, 1) parameter).

Neither adds MACs: their multiplications are element-wise (see docs/spec.md).
"""

from __future__ import annotations

from archc.errors import ShapeError
from archc.ops.registry import Attr, Float, Int, Op, Saved, numel, register, saved_new

DROP_PATH = '''
def drop_path(x, p, training):
    """Stochastic depth per sample (torchvision.ops.stochastic_depth, mode "row"): keep
    each sample with probability 1 - p, scaled by 1 / (1 - p); the identity at inference."""
    if not training or p == 0.0:
        return x
    keep = 1.0 - p
    mask = torch.empty((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device)
    mask.bernoulli_(keep)  # (B, 1, ...): one draw per sample
    if keep > 0.0:
        mask.div_(keep)
    return x * mask
'''

LAYER_SCALE = '''
class LearnedScale(nn.Module):
    """A learned scale per channel: weight * x, the weight shaped to broadcast."""

    def __init__(self, shape, init):
        super().__init__()
        self.weight = nn.Parameter(torch.full(shape, float(init)))

    def forward(self, x):
        return self.weight * x
'''


@register
class DropPath(Op):
    name = "drop_path"
    doc = "Stochastic depth: drops a residual branch per sample in training (identity at inference)."
    passes_values = True
    attrs = {"p": Attr(Float(0, 1), 0.0, "probability of dropping a sample's branch")}
    torch_helpers = {"drop_path": DROP_PATH}

    def torch_init(self, a, ins, out):
        return None  # no parameters: a function of the network's training flag

    def torch_forward(self, a, ins, out, args, mod):
        if a["p"] == 0.0:
            return args[0]  # the identity in training too: no code at all
        return f"drop_path({args[0]}, {a['p']!r}, self.training)"

    def saved(self, a, ins, out, ctx):
        return [saved_new(ctx.batch)]  # x * mask keeps the (B, 1, ...) mask


@register
class LayerScale(Op):
    name = "layer_scale"
    doc = "A learned scale per channel (ConvNeXt, CaiT): weight · x, weight initialised to `init_value`."
    attrs = {
        # not `init`: that common layer key names an initialisation scheme
        "init_value": Attr(Float(), 1e-6, "the initial value of every scale"),
        "dim": Attr(Int(None), None, "the dimension scaled (batch excluded); default: channels "
                                     "(0) of images and volumes, the last one of tokens and vectors"),
    }
    torch_helpers = {"LearnedScale": LAYER_SCALE}
    torch_output_writable = True  # a fresh product; backward reads the input and weight

    def weight_shape(self, a, shape) -> tuple:
        """[C, 1, 1] for (C, H, W); [D] for [L, D]: the scaled size, then ones to broadcast."""
        rank = len(shape)
        dim = a["dim"] if a["dim"] is not None else (0 if rank >= 3 else -1)
        if not -rank <= dim < rank:
            raise ShapeError(f"dim {dim} is out of range for the input {list(shape)}",
                             f"use 0..{rank - 1} or leave dim out")
        dim %= rank
        return (shape[dim],) + (1,) * (rank - 1 - dim)

    def infer(self, a, ins):
        self.weight_shape(a, ins[0])
        return ins[0]

    def params(self, a, ins, out):
        return numel(self.weight_shape(a, ins[0])), 0

    def torch_init(self, a, ins, out):
        return f"LearnedScale({self.weight_shape(a, ins[0])!r}, {a['init_value']!r})"

    def saved(self, a, ins, out, ctx):
        return [Saved("input")] if ctx.trainable else []  # for the weight's gradient

    def torch_params(self, a):
        # rank 1 as the network's default init sees it: a fan-based scheme must not touch a
        # layer scale (its value is `init_value`); an explicit `init: {weight: ...}` still can
        return {"weight": 1}

    def state(self, a, ins, out):
        return {"weight": self.weight_shape(a, ins[0])}
