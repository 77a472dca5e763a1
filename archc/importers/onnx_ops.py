"""The op table: each ONNX op type and the archc layer(s) it becomes.

One function per op (or family), registered with ``@maps``; each reads ONNX's attributes
(the operator docs at onnx.ai/onnx/operators name them) and returns archc layers whose
tensors carry the names and layouts torch gives them. ONNX values are batch first; archc's
dimensions exclude the batch (``ctx.axis`` converts). Where archc cannot express a node,
the mapping raises Unsupported with what archc would need.
"""

from __future__ import annotations

import math

import numpy as np

from archc.importers.onnx_table import Layer, Unsupported, compact, maps

INT64_MAX = 2**63 - 1


def _out(node) -> str:
    return node.outputs[0]


def f32(value) -> float:
    """An ONNX float attribute (float32) as its shortest decimal: 1e-05, not 9.99999974e-06."""
    return float(str(np.float32(value)))


def _padding(node, axes: int, shape):
    """ONNX pads [x1_begin, x2_begin, ..., x1_end, x2_end] (or auto_pad) as archc's padding:
    an int, one per axis, or (before, after) per axis ([top, bottom, left, right])."""
    auto = node.attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto == "VALID":
        return 0
    if auto == "SAME_UPPER":
        return "same"  # archc's 'same' puts the odd pixel after, as SAME_UPPER does
    if auto == "SAME_LOWER":
        raise Unsupported("it pads SAME_LOWER (the odd pixel before)", "explicit pads (re-export without auto_pad)")
    pads = list(node.attrs.get("pads", [0] * (2 * axes)))
    pairs = [(pads[i], pads[i + axes]) for i in range(axes)]
    if all(b == e for b, e in pairs):
        return compact([b for b, _ in pairs])
    return [int(v) for pair in pairs for v in pair]


def _window(node, w_shape=None) -> dict:
    axes = len(node.attrs.get("kernel_shape", w_shape or ()))
    a = {"kernel": compact(node.attrs.get("kernel_shape", w_shape))}
    if any(s != 1 for s in node.attrs.get("strides", [])):
        a["stride"] = compact(node.attrs["strides"])
    if any(d != 1 for d in node.attrs.get("dilations", [])):
        a["dilation"] = compact(node.attrs["dilations"])
    return a | {"axes": axes}


# --------------------------------------------------------------------------- convolutions


@maps("Conv")
def conv(node, ctx):
    w = ctx.weight(node, 1)
    x = ctx.data(node)
    a = _window(node, list(w.shape[2:]))
    axes = a.pop("axes")
    if axes not in (1, 2, 3):
        raise Unsupported(f"it convolves over {axes} axes", "a convolution over 1, 2 or 3 axes")
    a = {"out": int(w.shape[0])} | a
    padding = _padding(node, axes, ctx.shape(x))
    if padding != 0:
        a["padding"] = padding
    if node.attrs.get("group", 1) != 1:
        a["groups"] = int(node.attrs["group"])
    bias = ctx.optional(node, 2, "bias")
    a["bias"] = bias is not None
    tensors = {"weight": w} | ({"bias": bias} if bias is not None else {})
    return [Layer(f"conv{axes}d", a, [x], _out(node), tensors, ctx.param_hint(node))]


@maps("ConvTranspose")
def conv_transpose(node, ctx):
    w = ctx.weight(node, 1)  # [in, out / groups, *kernel]
    x = ctx.data(node)
    if "output_shape" in node.attrs:
        raise Unsupported("it states output_shape", "pads and output_padding instead (re-export)")
    a = _window(node, list(w.shape[2:]))
    axes = a.pop("axes")
    groups = int(node.attrs.get("group", 1))
    a = {"out": int(w.shape[1]) * groups} | a
    padding = _padding(node, axes, ctx.shape(x))
    if isinstance(padding, list) and len(padding) == 2 * axes or padding == "same":
        raise Unsupported("its padding differs before and after an axis",
                          "asymmetric padding in conv_transpose (torch's ConvTranspose has none)")
    if padding != 0:
        a["padding"] = padding
    if any(node.attrs.get("output_padding", [])):
        a["output_padding"] = compact(node.attrs["output_padding"])
    if groups != 1:
        a["groups"] = groups
    bias = ctx.optional(node, 2, "bias")
    a["bias"] = bias is not None
    tensors = {"weight": w} | ({"bias": bias} if bias is not None else {})
    return [Layer(f"conv_transpose{axes}d", a, [x], _out(node), tensors, ctx.param_hint(node))]


# --------------------------------------------------------------------------- linear


@maps("Gemm")
def gemm(node, ctx):
    if node.attrs.get("transA", 0):
        raise Unsupported("it transposes its data input (transA)", "a linear layer over the first axis")
    x = ctx.data(node)
    b = ctx.weight(node, 1)
    w = (b if node.attrs.get("transB", 0) else b.T) * node.attrs.get("alpha", 1.0)  # torch: [out, in]
    c = ctx.optional(node, 2, "bias")
    tensors = {"weight": w.astype(b.dtype)}
    if c is not None:
        tensors["bias"] = np.broadcast_to(c * node.attrs.get("beta", 1.0), (w.shape[0],)).astype(c.dtype)
    return [Layer("linear", {"out": int(w.shape[0]), "bias": c is not None}, [x], _out(node),
                  tensors, ctx.param_hint(node))]


@maps("MatMul")
def matmul(node, ctx):
    x = ctx.data(node)
    b = ctx.const(node.inputs[1])
    if b is None:
        raise Unsupported("it multiplies two computed tensors (as attention's q·kᵀ does)",
                          "its whole pattern as one archc op (attention is recognised where the "
                          "product goes through Softmax into another MatMul: docs/import.md)")
    if b.ndim != 2:
        raise Unsupported(f"it multiplies by a {b.ndim}-D constant", "a linear layer (a 2-D weight)")
    layer = Layer("linear", {"out": int(b.shape[1]), "bias": False}, [x], _out(node),
                  {"weight": np.ascontiguousarray(b.T)}, ctx.param_hint(node))
    add = ctx.single_consumer(_out(node))  # MatMul + Add: the linear layer's bias
    if add is not None and add.op == "Add":
        other = add.inputs[1] if add.inputs[0] == _out(node) else add.inputs[0]
        bias = ctx.const(other)
        if bias is not None and bias.dtype != object and bias.size == b.shape[1] and bias.ndim <= 2:
            layer.attrs["bias"] = True
            layer.tensors["bias"] = bias.reshape(-1)
            layer.output = _out(add)
            ctx.skipped.add(id(add))
    return [layer]


# --------------------------------------------------------------------------- normalisation


@maps("BatchNormalization")
def batchnorm(node, ctx):
    if node.attrs.get("training_mode", 0) or len([o for o in node.outputs if o]) > 1:
        raise Unsupported("it normalises in training mode", "an inference-mode BatchNormalization (model.eval())")
    x = ctx.data(node)
    rank = len(ctx.shape(x))
    kind = {2: "batchnorm1d", 3: "batchnorm1d", 4: "batchnorm2d", 5: "batchnorm3d"}.get(rank)
    if kind is None:
        raise Unsupported(f"it normalises a rank-{rank} tensor", "batch norm of rank 2 to 5")
    names = ("weight", "bias", "running_mean", "running_var")
    tensors = {n: ctx.weight(node, i + 1, n) for i, n in enumerate(names)}
    a = {"eps": f32(node.attrs.get("epsilon", 1e-5)),
         "momentum": round(1.0 - f32(node.attrs.get("momentum", 0.9)), 6)}  # ONNX keeps 1 - torch's
    return [Layer(kind, a, [x], _out(node), tensors, ctx.param_hint(node))]


@maps("LayerNormalization")
def layernorm(node, ctx):
    x = ctx.data(node)
    rank = len(ctx.shape(x))
    axis = node.attrs.get("axis", -1)
    dims = rank - (axis + rank if axis < 0 else axis)
    if dims >= rank:
        raise Unsupported("it normalises over the batch axis too", "a layer norm within each sample")
    scale = ctx.weight(node, 1, "scale")
    bias = ctx.optional(node, 2, "bias")
    bias = np.zeros_like(scale) if bias is None else bias  # archc's affine layer norm has both
    return [Layer("layernorm", {"dims": dims, "eps": f32(node.attrs.get("epsilon", 1e-5))}, [x],
                  _out(node), {"weight": scale, "bias": bias}, ctx.param_hint(node))]


@maps("InstanceNormalization")
def instancenorm(node, ctx):
    x = ctx.data(node)
    tensors = {"weight": ctx.weight(node, 1, "scale"), "bias": ctx.weight(node, 2, "bias")}
    return [Layer("instancenorm", {"eps": f32(node.attrs.get("epsilon", 1e-5)), "affine": True}, [x],
                  _out(node), tensors, ctx.param_hint(node))]


@maps("GroupNormalization")
def groupnorm(node, ctx):
    x = ctx.data(node)
    channels = ctx.shape(x)[1]
    scale, bias = ctx.weight(node, 1, "scale"), ctx.weight(node, 2, "bias")
    if scale.size != channels:  # opset 18's form: one scale per group
        raise Unsupported("its scale is per group (opset 18)", "a per-channel scale (opset 21's GroupNormalization)")
    a = {"groups": int(node.attrs["num_groups"]), "eps": f32(node.attrs.get("epsilon", 1e-5))}
    return [Layer("groupnorm", a, [x], _out(node), {"weight": scale, "bias": bias}, ctx.param_hint(node))]


@maps("LRN")
def lrn(node, ctx):
    a = {"size": int(node.attrs["size"]), "alpha": f32(node.attrs.get("alpha", 1e-4)),
         "beta": f32(node.attrs.get("beta", 0.75)), "k": f32(node.attrs.get("bias", 1.0))}
    return [Layer("local_response_norm", a, [ctx.data(node)], _out(node))]


# --------------------------------------------------------------------------- pooling


@maps("MaxPool", "AveragePool")
def pool(node, ctx):
    if len([o for o in node.outputs if o]) > 1:
        raise Unsupported("its indices output is used", "max pooling that returns indices")
    x = ctx.data(node)
    a = _window(node)
    axes = a.pop("axes")
    kind = ("maxpool" if node.op == "MaxPool" else "avgpool") + f"{axes}d"
    strides = list(node.attrs.get("strides", [1] * axes))  # ONNX's default is 1, archc's the kernel
    a.pop("stride", None)
    if strides != list(node.attrs["kernel_shape"]):
        a["stride"] = compact(strides)
    padding = _padding(node, axes, ctx.shape(x))
    if padding != 0:
        a["padding"] = padding
    if node.attrs.get("ceil_mode", 0):
        a["ceil_mode"] = True
    if node.op == "AveragePool":
        if "dilation" in a:
            raise Unsupported("it averages a dilated window", "a dilated average pool")
        if not node.attrs.get("count_include_pad", 0) and padding != 0:
            a["count_include_pad"] = False  # ONNX's default is torch's opposite
    return [Layer(kind, a, [x], _out(node))]


@maps("GlobalAveragePool")
def global_avgpool(node, ctx):
    return [Layer("global_avgpool", {}, [ctx.data(node)], _out(node))]


@maps("ReduceMean")
def reduce_mean(node, ctx):
    x = ctx.data(node)
    rank = len(ctx.shape(x))
    axes = node.attrs.get("axes") or ([int(v) for v in ctx.weight(node, 1, "axes")] if len(node.inputs) > 1 else [])
    axes = sorted(a + rank if a < 0 else a for a in axes) or list(range(rank))
    keep = bool(node.attrs.get("keepdims", 1))
    dims = [ctx.axis(node, x, a) for a in axes]
    if rank >= 4 and axes == list(range(2, rank)):  # images, volumes; (C, L) or [L, D] stay a mean
        return [Layer("global_avgpool", {} if keep else {"keepdims": False}, [x], _out(node))]
    return [Layer("mean", {"dims": dims} | ({"keepdims": True} if keep else {}), [x], _out(node))]


# --------------------------------------------------------------------------- activations

SIMPLE = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "HardSwish": "hardswish", "Mish": "mish"}


@maps(*SIMPLE)
def activation(node, ctx):
    x = ctx.data(node)
    if node.op == "Sigmoid":  # x · sigmoid(x) is SiLU, as torch exports it
        mul = ctx.single_consumer(_out(node))
        if mul is not None and mul.op == "Mul" and x in mul.inputs:
            ctx.skipped.add(id(mul))
            return [Layer("silu", {}, [x], _out(mul))]
    return [Layer(SIMPLE[node.op], {}, [x], _out(node))]


@maps("LeakyRelu")
def leaky_relu(node, ctx):
    return [Layer("leaky_relu", {"slope": f32(node.attrs.get("alpha", 0.01))}, [ctx.data(node)], _out(node))]


@maps("Elu")
def elu(node, ctx):
    return [Layer("elu", {"alpha": f32(node.attrs.get("alpha", 1.0))}, [ctx.data(node)], _out(node))]


@maps("Gelu")
def gelu(node, ctx):
    approx = node.attrs.get("approximate", b"none")
    approx = approx.decode() if isinstance(approx, bytes) else approx
    return [Layer("gelu", {} if approx == "none" else {"approximate": approx}, [ctx.data(node)], _out(node))]


@maps("Softplus")
def softplus(node, ctx):
    return [Layer("softplus", {}, [ctx.data(node)], _out(node))]


@maps("HardSigmoid")
def hardsigmoid(node, ctx):
    alpha, beta = node.attrs.get("alpha", 0.2), node.attrs.get("beta", 0.5)
    if not (math.isclose(alpha, 1 / 6, rel_tol=1e-5) and math.isclose(beta, 0.5)):
        raise Unsupported(f"its slope is {alpha:g} and offset {beta:g}", "hardsigmoid with other constants "
                          "(archc's is relu6(x + 3) / 6: alpha 1/6, beta 0.5)")
    return [Layer("hardsigmoid", {}, [ctx.data(node)], _out(node))]


@maps("Clip")
def clip(node, ctx):
    x = ctx.data(node)
    low = ctx.const(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] else None
    high = ctx.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    low = None if low is None else float(low)
    high = None if high is None else float(high)
    if low == 0 and high == 6:
        return [Layer("relu6", {}, [x], _out(node))]
    if low == 0 and high is None:
        return [Layer("relu", {}, [x], _out(node))]
    raise Unsupported(f"it clamps to [{low}, {high}]", "a clamp op (archc has relu and relu6)")


@maps("Softmax", "LogSoftmax")
def softmax(node, ctx):
    x = ctx.data(node)
    dim = ctx.axis(node, x, node.attrs.get("axis", -1))
    return [Layer("softmax" if node.op == "Softmax" else "log_softmax", {"dim": dim}, [x], _out(node))]


# --------------------------------------------------------------------------- element-wise


def _scale_dim(c: np.ndarray, shape) -> int | None:
    """The dimension a constant scales as archc's layer_scale weight, or None."""
    rank = len(shape) - 1
    dims = list(c.shape)
    while len(dims) > 1 and dims[0] == 1 and len(dims) > rank:
        dims.pop(0)
    for d in range(rank):
        if tuple(dims) == (shape[1 + d],) + (1,) * (rank - 1 - d):
            return d
    return None


@maps("Add", "Mul")
def elementwise(node, ctx):
    consts = [ctx.const(i) for i in node.inputs]
    if all(c is None for c in consts):
        return [Layer("add" if node.op == "Add" else "multiply", {}, list(node.inputs), _out(node))]
    x = node.inputs[1] if consts[0] is not None else node.inputs[0]
    c = consts[0] if consts[0] is not None else consts[1]
    shape = ctx.shape(x)
    const_name = node.inputs[0] if consts[0] is not None else node.inputs[1]
    rank = len(shape) - 1
    if node.op == "Mul":
        dim = _scale_dim(c, shape)
        if dim is not None:  # ConvNeXt's and CaiT's learned per-channel scale
            a = {} if dim == (0 if rank >= 3 else rank - 1) else {"dim": dim}
            weight = c.reshape((shape[1 + dim],) + (1,) * (rank - 1 - dim))
            return [Layer("layer_scale", a, [x], _out(node), {"weight": weight}, const_name)]
    elif rank == 2 and c.shape in ((1, *shape[1:]), tuple(shape[1:])):  # ViT's learned positions
        return [Layer("pos_embedding", {}, [x], _out(node), {"weight": c.reshape(1, *shape[1:])}, const_name)]
    verb = "adds" if node.op == "Add" else "multiplies by"
    raise Unsupported(f"it {verb} a constant tensor of shape {list(c.shape)}",
                      "a layer holding that constant (archc has bias-carrying linear/conv layers, "
                      "layer_scale for a per-channel scale and pos_embedding for [L, D] tokens)")


# --------------------------------------------------------------------------- merging


@maps("Concat")
def concat(node, ctx):
    ins = [ctx.data(node, i) for i in range(len(node.inputs))]
    return [Layer("concat", {"dim": ctx.axis(node, ins[0], node.attrs["axis"])}, ins, _out(node))]
