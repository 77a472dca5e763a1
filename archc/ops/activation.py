"""Element-wise activations. They keep the shape, own no parameters and count no MACs.

Each is one small class: its attributes and the torch module it becomes."""

from __future__ import annotations

from archc.errors import ShapeError
from archc.ops.registry import Attr, Float, Int, Op, register


class _Activation(Op):
    """Shape-preserving, parameter-free; subclasses give the torch module."""

    module = ""

    def torch_init(self, a, ins, out):
        return f"nn.{self.module}"


@register
class ReLU(_Activation):
    name, doc, module = "relu", "max(0, x).", "ReLU()"


@register
class ReLU6(_Activation):
    name, doc, module = "relu6", "min(max(0, x), 6) (MobileNet).", "ReLU6()"


@register
class Sigmoid(_Activation):
    name, doc, module = "sigmoid", "1 / (1 + exp(-x)).", "Sigmoid()"


@register
class Tanh(_Activation):
    name, doc, module = "tanh", "Hyperbolic tangent (LeNet-5).", "Tanh()"


@register
class GELU(_Activation):
    name, doc, module = "gelu", "Gaussian error linear unit (exact erf form).", "GELU()"


@register
class SiLU(_Activation):
    name, doc, module = "silu", "x * sigmoid(x), a.k.a. swish.", "SiLU()"


@register
class Identity(_Activation):
    name, doc, module = "identity", "Passes its input through unchanged.", "Identity()"

    def torch_init(self, a, ins, out):
        return None

    def torch_forward(self, a, ins, out, args, mod):
        return args[0]


@register
class LeakyReLU(_Activation):
    name, doc = "leaky_relu", "max(0, x) + slope * min(0, x)."
    attrs = {"slope": Attr(Float(0), 0.01, "negative slope (DCGAN's discriminator uses 0.2)")}

    def torch_init(self, a, ins, out):
        return f"nn.LeakyReLU({a['slope']!r})"


@register
class ELU(_Activation):
    name, doc = "elu", "x if x > 0 else alpha * (exp(x) - 1)."
    attrs = {"alpha": Attr(Float(0), 1.0)}

    def torch_init(self, a, ins, out):
        return f"nn.ELU({a['alpha']!r})"


@register
class Softplus(_Activation):
    name, doc = "softplus", "log(1 + exp(beta x)) / beta."
    attrs = {"beta": Attr(Float(0, exclusive_min=True), 1.0), "threshold": Attr(Float(), 20.0)}

    def torch_init(self, a, ins, out):
        return f"nn.Softplus(beta={a['beta']!r}, threshold={a['threshold']!r})"


class _SoftmaxBase(_Activation):
    attrs = {"dim": Attr(Int(None), 0, "dimension to normalise, batch excluded (0 = channels/features)")}
    onnx_opset = 13  # before 13, ONNX's Softmax normalised over every dimension from `axis` on

    def infer(self, a, ins):
        rank = len(ins[0])
        if not -rank <= a["dim"] < rank:
            raise ShapeError(f"dim {a['dim']} is out of range for an input of shape {list(ins[0])}",
                             f"use a dim in [{-rank}, {rank - 1}] (batch excluded)")
        return ins[0]

    def torch_init(self, a, ins, out):
        dim = a["dim"] + 1 if a["dim"] >= 0 else a["dim"]  # skip the batch dimension
        return f"nn.{self.module}(dim={dim})"


@register
class Softmax(_SoftmaxBase):
    name, doc, module = "softmax", "exp(x) / sum(exp(x)) along `dim`.", "Softmax"


@register
class LogSoftmax(_SoftmaxBase):
    name, doc, module = "log_softmax", "log(softmax(x)) along `dim`.", "LogSoftmax"
