"""Element-wise activations. They keep the shape, own no parameters and count no MACs.

Each is one small class: its attributes and the torch function it becomes."""

from __future__ import annotations

from archc.errors import ShapeError
from archc.ops.registry import Attr, Choice, Float, Int, Op, Saved, numel, register, saved_new


class _Activation(Op):
    """Shape-preserving, parameter-free; subclasses give the torch function. Activations
    are function calls in forward, not modules: a module call costs a few microseconds
    more, which is 8% of LeNet-5's forward at batch 1 (bench/bench_torch.py)."""

    function = ""  # called as f"{function}(x{options})"
    inplace = False  # the function takes inplace=True
    # What autograd keeps for backward (derivatives.yaml of torch 2.x, measured in
    # tests/analysis/test_memory.py): "input", "output" or None; run in place, "copy" is a
    # clone of the input made before it is overwritten (hardtanh_, hardswish_, mish_).
    saves = "input"
    saves_inplace = "copy"

    def saved(self, a, ins, out, ctx):
        what = self.saves_inplace if ctx.inplace else self.saves
        if what == "copy":
            return [saved_new(ctx.batch * numel(ins[0]))]
        return [Saved(what)] if what else []

    def options(self, a) -> str:
        return ""

    def torch_forward(self, a, ins, out, args, mod):
        return f"{self.function}({args[0]}{self.options(a)})"

    def torch_inplace(self, a, ins, out, args, i):
        return f"{self.function}({args[0]}{self.options(a)}, inplace=True)" if self.inplace else None


@register
class ReLU(_Activation):
    name, doc, function, inplace = "relu", "max(0, x).", "F.relu", True
    saves = saves_inplace = "output"  # threshold_backward reads the result: in place, nothing new


@register
class ReLU6(_Activation):
    name, doc, function, inplace = "relu6", "min(max(0, x), 6) (MobileNet).", "F.relu6", True


@register
class Sigmoid(_Activation):
    name, doc, function = "sigmoid", "1 / (1 + exp(-x)).", "torch.sigmoid"
    saves = "output"  # σ' = σ(1 - σ)


@register
class Tanh(_Activation):
    name, doc, function = "tanh", "Hyperbolic tangent (LeNet-5).", "torch.tanh"
    saves = "output"  # tanh' = 1 - tanh²


@register
class GELU(_Activation):
    name, function = "gelu", "F.gelu"
    doc = "Gaussian error linear unit: the exact erf form, or its tanh approximation (GPT-2, BERT)."
    attrs = {"approximate": Attr(Choice("none", "tanh"), "none",
                                 "tanh: 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))), Hendrycks & Gimpel")}

    def options(self, a):
        return "" if a["approximate"] == "none" else f", approximate={a['approximate']!r}"


@register
class Hardswish(_Activation):
    name, function, inplace = "hardswish", "F.hardswish", True
    doc = "x · relu6(x + 3) / 6 (MobileNetV3)."
    onnx_opset = 14  # ONNX's HardSwish


@register
class Hardsigmoid(_Activation):
    name, function, inplace = "hardsigmoid", "F.hardsigmoid", True
    doc = "relu6(x + 3) / 6 (MobileNetV3's squeeze-excitation gate)."


@register
class Mish(_Activation):
    name, function, inplace = "mish", "F.mish", True
    doc = "x · tanh(softplus(x)) (Misra, 2019; YOLOv4)."


@register
class SiLU(_Activation):
    name, doc, function = "silu", "x * sigmoid(x), a.k.a. swish.", "F.silu"  # silu_ would need its input for backward


@register
class Identity(_Activation):
    passes_values = True
    keeps_dtype = True  # moves token ids as they are
    name, doc = "identity", "Passes its input through unchanged."
    saves = None

    def torch_forward(self, a, ins, out, args, mod):
        return args[0]


@register
class LeakyReLU(_Activation):
    name, doc, function, inplace = "leaky_relu", "max(0, x) + slope * min(0, x).", "F.leaky_relu", True
    saves_inplace = "output"  # leaky_relu_'s backward reads the result's sign instead
    attrs = {"slope": Attr(Float(0), 0.01, "negative slope (DCGAN's discriminator uses 0.2)")}

    def options(self, a):
        return f", {a['slope']!r}"


@register
class ELU(_Activation):
    name, doc, function = "elu", "x if x > 0 else alpha * (exp(x) - 1).", "F.elu"  # elu_ differs in backward rounding
    attrs = {"alpha": Attr(Float(0), 1.0)}

    def options(self, a):
        return f", {a['alpha']!r}"


@register
class Softplus(_Activation):
    name, doc, function = "softplus", "log(1 + exp(beta x)) / beta.", "F.softplus"
    autocast = "float"
    attrs = {"beta": Attr(Float(0, exclusive_min=True), 1.0), "threshold": Attr(Float(), 20.0)}

    def options(self, a):
        return f", beta={a['beta']!r}, threshold={a['threshold']!r}"


class _SoftmaxBase(_Activation):
    autocast = "float"
    attrs = {"dim": Attr(Int(None), 0, "dimension to normalise, batch excluded (0 = channels/features)")}
    onnx_opset = 13  # before 13, ONNX's Softmax normalised over every dimension from `axis` on
    saves = "output"  # both backward formulas read the result

    def infer(self, a, ins):
        rank = len(ins[0])
        if not -rank <= a["dim"] < rank:
            raise ShapeError(f"dim {a['dim']} is out of range for an input of shape {list(ins[0])}",
                             f"use a dim in [{-rank}, {rank - 1}] (batch excluded)")
        return ins[0]

    def options(self, a):
        dim = a["dim"] + 1 if a["dim"] >= 0 else a["dim"]  # skip the batch dimension
        return f", dim={dim}"


@register
class Softmax(_SoftmaxBase):
    name, doc, function = "softmax", "exp(x) / sum(exp(x)) along `dim`.", "F.softmax"


@register
class LogSoftmax(_SoftmaxBase):
    name, doc, function = "log_softmax", "log(softmax(x)) along `dim`.", "F.log_softmax"
