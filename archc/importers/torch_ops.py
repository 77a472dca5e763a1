"""The torch op table: which archc op computes a torch module or function, with which attributes.

One small function per kind, registered with :func:`module` (``nn.Module`` classes, matched
by exact type: a subclass may override ``forward``) or :func:`function` (functions seen by
torch.fx as ``call_function`` targets, and tensor methods by name as ``"method:NAME"``).
A mapping returns a :class:`Mapped` (the archc op, its attributes in archc's names, the
tensors it owns under the names ``archc.build`` gives them), :data:`ALIAS` when the call
passes its input through (``nn.Identity``, ``x.contiguous()``), or raises
:class:`Unsupported` saying what archc would need. Shapes are archc's: batch excluded.

Tensors a ``forward`` reads directly (fx's ``get_attr``: ViT's ``class_token``, ConvNeXt's
``layer_scale``, ``F.layer_norm(x, ..., self.weight, self.bias)``) are :class:`Param` s;
a function mapping that recognises what it computes with one *claims* it (``Mapped.claims``)
and names the layer after it (``Mapped.path``); one nobody claims is an error.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

MODULES: dict = {}
FUNCTIONS: dict = {}
ALIAS = "alias"  # the call computes its (first) input


@dataclass
class Mapped:
    op: str
    attrs: dict = field(default_factory=dict)
    tensors: dict = field(default_factory=dict)  # state_dict suffix -> tensor
    inputs: list | None = None  # the tensor inputs the layer reads (indices); None: all
    path: str | None = None  # a function's layer: the module path its claimed tensors hang on
    claims: tuple = ()  # the Params (state_dict keys) the layer owns


@dataclass(frozen=True)
class Param:
    """A tensor ``forward`` reads as an attribute (fx ``get_attr``): its state_dict key and
    value (the whole tensor: no batch dimension)."""

    key: str
    value: object

    @property
    def owner(self) -> str:
        return self.key.rpartition(".")[0]

    @property
    def suffix(self) -> str:
        return self.key.rpartition(".")[2]


class Unsupported(Exception):
    """archc cannot express a call: ``message`` says what it does, ``need`` what archc would need."""

    def __init__(self, message: str, need: str):
        self.message, self.need = message, need
        super().__init__(message)


@dataclass
class Call:
    """What a mapping may read: the fx node, its tensor inputs' shapes and its output's."""

    node: object
    in_shapes: list  # archc shapes (batch excluded) of the tensor inputs
    out_shape: tuple
    params: dict = field(default_factory=dict)  # fx node name -> Param, of the tensor attributes read
    in_nodes: list = field(default_factory=list)  # the fx nodes of the tensor inputs, in_shapes' order

    def param(self, value) -> Param | None:
        """The Param an argument is, or None (a computed tensor, a constant)."""
        return self.params.get(getattr(value, "name", None))

    def arg(self, i: int, name: str, default=None):
        args, kwargs = self.node.args, self.node.kwargs
        return args[i] if len(args) > i else kwargs.get(name, default)

    def dim(self, d: int, rank: int | None = None) -> int:
        """torch's dimension ``d`` (batch first) as archc's (batch excluded)."""
        rank = len(self.out_shape) + 1 if rank is None else rank
        d = d + rank if d < 0 else d
        if d == 0:
            raise Unsupported("it works along the batch dimension",
                              "an op that mixes the samples of a batch (archc's ops work on each sample)")
        return d - 1


def _register(table: dict, keys, fn, what: str):
    for key in keys:
        if key in table:
            raise ValueError(f"{what} {key} is mapped twice ({table[key].__name__}, {fn.__name__})")
        table[key] = fn


def module(*classes):
    """Register ``fn(mod, call) -> Mapped`` for nn.Module classes (exact type)."""
    def register(fn):
        _register(MODULES, classes, fn, "module class")
        return fn
    return register


def function(*targets):
    """Register ``fn(call) -> Mapped`` for functions and ``"method:NAME"`` tensor methods."""
    def register(fn):
        _register(FUNCTIONS, targets, fn, "function")
        return fn
    return register


def compact(values):
    """``(3, 3)`` -> 3, ``(3, 5)`` -> [3, 5]: the short form a person writes."""
    if isinstance(values, (int, str)):
        return values
    values = [int(v) for v in values]
    return values[0] if len(set(values)) == 1 else values


def tensors(mod: nn.Module) -> dict:
    """The module's own parameters and persistent buffers, by state_dict suffix."""
    return {k: v.detach() for k, v in mod.state_dict(keep_vars=True).items()}


# --------------------------------------------------------------------------- layers with weights


@module(nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
def conv(mod, call):
    if mod.padding_mode != "zeros":
        raise Unsupported(f"it pads with padding_mode={mod.padding_mode!r}",
                          "zero padding (archc's convolutions pad with zeros)")
    transposed = isinstance(mod, nn.modules.conv._ConvTransposeNd)
    attrs = {"out": mod.out_channels, "kernel": compact(mod.kernel_size), "stride": compact(mod.stride),
             "padding": compact(mod.padding)}
    if transposed:
        attrs["output_padding"] = compact(mod.output_padding)
    attrs |= {"dilation": compact(mod.dilation), "groups": mod.groups, "bias": mod.bias is not None}
    op = f"conv_transpose{len(mod.kernel_size)}d" if transposed else f"conv{len(mod.kernel_size)}d"
    return Mapped(op, attrs, tensors(mod))


@module(nn.Linear)
def linear(mod, call):
    return Mapped("linear", {"out": mod.out_features, "bias": mod.bias is not None}, tensors(mod))


@module(nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
def batchnorm(mod, call):
    if not mod.track_running_stats or mod.momentum is None:
        raise Unsupported("it has no running statistics or a cumulative momentum (None)",
                          "a batch norm with running statistics and a momentum (archc's batchnorm)")
    op = {nn.BatchNorm1d: "batchnorm1d", nn.BatchNorm2d: "batchnorm2d", nn.BatchNorm3d: "batchnorm3d"}[type(mod)]
    return Mapped(op, {"eps": mod.eps, "momentum": mod.momentum, "affine": mod.affine}, tensors(mod))


@module(nn.LayerNorm)
def layernorm(mod, call):
    if mod.elementwise_affine and mod.bias is None:
        raise Unsupported("it has a weight but no bias (bias=False)", "a layernorm with weight and bias")
    return Mapped("layernorm", {"dims": len(mod.normalized_shape), "eps": mod.eps,
                                "affine": mod.elementwise_affine}, tensors(mod))


@module(nn.GroupNorm)
def groupnorm(mod, call):
    return Mapped("groupnorm", {"groups": mod.num_groups, "eps": mod.eps, "affine": mod.affine}, tensors(mod))


@module(nn.LocalResponseNorm)
def lrn(mod, call):
    return Mapped("local_response_norm", {"size": mod.size, "alpha": mod.alpha, "beta": mod.beta, "k": mod.k})


@module(nn.Embedding)
def embedding(mod, call):
    if mod.max_norm is not None or mod.scale_grad_by_freq or mod.sparse:
        raise Unsupported("it uses max_norm, scale_grad_by_freq or sparse", "a plain embedding lookup")
    return Mapped("embedding", {"num": mod.num_embeddings, "dim": mod.embedding_dim,
                                "padding_idx": mod.padding_idx}, tensors(mod))


# --------------------------------------------------------------------------- activations


_PLAIN = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.SiLU: "silu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh",
          nn.Hardswish: "hardswish", nn.Hardsigmoid: "hardsigmoid", nn.Mish: "mish"}


@module(*_PLAIN)
def plain(mod, call):
    return Mapped(_PLAIN[type(mod)])


@module(nn.LeakyReLU)
def leaky_relu(mod, call):
    return Mapped("leaky_relu", {"slope": mod.negative_slope})


@module(nn.ELU)
def elu(mod, call):
    return Mapped("elu", {"alpha": mod.alpha})


@module(nn.GELU)
def gelu(mod, call):
    return Mapped("gelu", {"approximate": mod.approximate})


@module(nn.Softplus)
def softplus(mod, call):
    return Mapped("softplus", {"beta": mod.beta, "threshold": mod.threshold})


@module(nn.Softmax, nn.LogSoftmax)
def softmax(mod, call):
    if mod.dim is None:
        raise Unsupported("its dim is implicit (None)", "an explicit dim=")
    return Mapped("softmax" if isinstance(mod, nn.Softmax) else "log_softmax", {"dim": call.dim(mod.dim)})


@module(nn.Dropout, nn.Dropout2d)
def dropout(mod, call):
    return Mapped("dropout" if type(mod) is nn.Dropout else "dropout2d", {"p": mod.p})


try:  # torchvision's stochastic depth (EfficientNet, ConvNeXt), when torchvision is installed
    from torchvision.ops import StochasticDepth
except ImportError:  # pragma: no cover
    StochasticDepth = None

if StochasticDepth is not None:
    @module(StochasticDepth)
    def stochastic_depth(mod, call):
        if mod.mode != "row":
            raise Unsupported(f"it drops in mode {mod.mode!r}", "stochastic depth per sample (mode 'row')")
        return Mapped("drop_path", {"p": mod.p})


@module(nn.Identity)
def identity(mod, call):
    return ALIAS


@module(nn.Flatten)
def flatten_module(mod, call):
    return _flatten(call, mod.start_dim, mod.end_dim)


# --------------------------------------------------------------------------- pools


@module(nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
def maxpool(mod, call):
    if mod.return_indices:
        raise Unsupported("it returns indices", "a max pool that returns only values")
    rank = len(call.out_shape) - 1
    return Mapped(f"maxpool{rank}d", {"kernel": compact(mod.kernel_size), "stride": compact(mod.stride),
                                      "padding": compact(mod.padding), "ceil_mode": mod.ceil_mode,
                                      "dilation": compact(mod.dilation)})


@module(nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
def avgpool(mod, call):
    if getattr(mod, "divisor_override", None) is not None:
        raise Unsupported("it has a divisor_override", "an average pool dividing by the window's size")
    rank = len(call.out_shape) - 1
    return Mapped(f"avgpool{rank}d", {"kernel": compact(mod.kernel_size), "stride": compact(mod.stride),
                                      "padding": compact(mod.padding), "ceil_mode": mod.ceil_mode,
                                      "count_include_pad": mod.count_include_pad})


def _adaptive(call, size):
    rank = len(call.out_shape) - 1
    if all(d == 1 for d in call.out_shape[1:]):
        return Mapped("global_avgpool")  # keeps the 1s, as torch's AdaptiveAvgPool2d(1)
    return Mapped(f"adaptive_avgpool{rank}d", {"size": compact(call.out_shape[1:])})


@module(nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)
def adaptive_avgpool(mod, call):
    return _adaptive(call, mod.output_size)


@function(F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d)
def adaptive_avgpool_f(call):
    return _adaptive(call, call.arg(1, "output_size"))


@function(F.max_pool2d)
def maxpool_f(call):
    if call.arg(6, "return_indices", False):
        raise Unsupported("it returns indices", "a max pool that returns only values")
    kernel = call.arg(1, "kernel_size")
    return Mapped("maxpool2d", {"kernel": compact(kernel), "stride": compact(call.arg(2, "stride") or kernel),
                                "padding": compact(call.arg(3, "padding", 0)),
                                "dilation": compact(call.arg(4, "dilation", 1)),
                                "ceil_mode": call.arg(5, "ceil_mode", False)})


@function(F.avg_pool2d)
def avgpool_f(call):
    if call.arg(6, "divisor_override") is not None:
        raise Unsupported("it has a divisor_override", "an average pool dividing by the window's size")
    kernel = call.arg(1, "kernel_size")
    return Mapped("avgpool2d", {"kernel": compact(kernel), "stride": compact(call.arg(2, "stride") or kernel),
                                "padding": compact(call.arg(3, "padding", 0)),
                                "ceil_mode": call.arg(4, "ceil_mode", False),
                                "count_include_pad": call.arg(5, "count_include_pad", True)})


# --------------------------------------------------------------------------- functions


_FUNCS = {F.relu: "relu", torch.relu: "relu", "method:relu": "relu", F.relu6: "relu6", F.silu: "silu",
          torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid", "method:sigmoid": "sigmoid", torch.tanh: "tanh",
          F.tanh: "tanh", "method:tanh": "tanh", F.hardswish: "hardswish", F.hardsigmoid: "hardsigmoid",
          F.mish: "mish"}


@function(*_FUNCS)
def plain_f(call):
    return Mapped(_FUNCS[call.node.target if call.node.op == "call_function" else f"method:{call.node.target}"])


@function(F.gelu)
def gelu_f(call):
    return Mapped("gelu", {"approximate": call.arg(1, "approximate", "none")})


@function(F.softmax, torch.softmax, "method:softmax", F.log_softmax, torch.log_softmax, "method:log_softmax")
def softmax_f(call):
    name = call.node.target if isinstance(call.node.target, str) else call.node.target.__name__
    dim = call.arg(1, "dim")
    if dim is None:
        raise Unsupported("its dim is implicit (None)", "an explicit dim=")
    return Mapped("log_softmax" if "log" in name else "softmax", {"dim": call.dim(dim)})


@function(F.dropout)
def dropout_f(call):
    return Mapped("dropout", {"p": call.arg(1, "p", 0.5)})


def _two_tensors(call, op):
    if len(call.in_shapes) != 2:
        raise Unsupported(f"it applies {op} to a tensor and a constant", f"{op} of two computed tensors")
    return Mapped(op)


@function(operator.add, torch.add, "method:add", operator.iadd)
def add(call):
    if call.arg(2, "alpha", 1) != 1:
        raise Unsupported("it scales its second term (alpha)", "add without alpha")
    if call.params:
        return torch_ops_seq.pos_embedding(call)  # x + a learned table
    return _two_tensors(call, "add")


@function(operator.mul, torch.mul, "method:mul", operator.imul)
def mul(call):
    if call.params:
        return torch_ops_seq.layer_scale(call)  # gamma * x
    return _two_tensors(call, "multiply")


@function(torch.cat, torch.concat)
def cat(call):
    if call.params:
        return torch_ops_seq.class_token(call)  # [token, x]
    if len(call.in_shapes) == 1:
        return ALIAS  # torch.cat([x]) is x (DenseNet's first layer of a block)
    return Mapped("concat", {"dim": call.dim(call.arg(1, "dim", 0))})


def _flatten(call, start, end):
    rank = len(call.in_shapes[0]) + 1
    if start in (1, 1 - rank) and end in (-1, rank - 1):
        return Mapped("flatten")
    return _reshape(call)


@function(torch.flatten, "method:flatten")
def flatten(call):
    return _flatten(call, call.arg(1, "start_dim", 0), call.arg(2, "end_dim", -1))


@function("method:view", "method:reshape", torch.reshape)
def reshape(call):
    mapped = _reshape(call)
    if mapped is ALIAS or mapped.op != "reshape":
        return mapped
    # one size computed from the input's shape (ViT's n_h * n_w) is written -1, as a person
    # would: the spec then takes other input sizes too
    sizes = call.node.args[1:]
    sizes = sizes[0] if len(sizes) == 1 and isinstance(sizes[0], (list, tuple)) else sizes
    computed = [i for i, size in enumerate(sizes[1:]) if isinstance(size, torch.fx.Node)]
    if len(sizes) == len(call.out_shape) + 1 and len(computed) == 1 and -1 not in sizes:
        mapped.attrs["shape"][computed[0]] = -1
    return mapped


def _reshape(call):
    if tuple(call.out_shape) == tuple(call.in_shapes[0]):
        return ALIAS
    if len(call.out_shape) == 1:
        return Mapped("flatten")
    return Mapped("reshape", {"shape": list(call.out_shape)})


@function("method:contiguous", "method:clone", "method:detach", torch.clone)
def passthrough(call):
    return ALIAS


@function(torch.mean, "method:mean")
def mean(call):
    dims = call.arg(1, "dim")
    rank = len(call.in_shapes[0]) + 1
    dims = [dims] if isinstance(dims, int) else list(dims or [])
    if not dims:
        raise Unsupported("it averages every element, the batch too", "a mean over given dims")
    return Mapped("mean", {"dims": [call.dim(d, rank) for d in dims], "keepdims": call.arg(2, "keepdim", False)})


# the rest of the table (attention, indexing, tensors read directly); imported last, as it
# registers into the tables above
from archc.importers import torch_ops_seq  # noqa: E402
