"""The torch op table, continued: attention, indexing, permutes, and the tensors a
``forward`` reads directly — what torchvision's ViT and ConvNeXt need beyond
archc/importers/torch_ops.py (which imports this module, so the registrations are made).

A tensor attribute read in ``forward`` (fx ``get_attr``, a :class:`Param`) is claimed by
the call that uses it when the call is one archc op: ViT's ``torch.cat([class_token.expand(
B, -1, -1), x], dim=1)`` is ``class_token``, ``x + pos_embedding`` is ``pos_embedding``,
ConvNeXt's ``layer_scale * x`` is ``layer_scale``, LayerNorm2d's ``F.layer_norm(x, shape,
self.weight, self.bias, eps)`` is ``layernorm``. The layer is named after the tensor
(``class_token``: its archc key is ``class_token.weight``, which ``archc.load_weights``
pairs with torchvision's bare ``class_token`` by name)."""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import nn

from archc.importers.torch_ops import ALIAS, Mapped, Param, Unsupported, function, module, tensors

# calls that give a tensor attribute on unchanged (the batch expansion of a class token):
# their result is the attribute itself for the call that claims it
PARAM_VIEWS = {"method:expand", "method:contiguous", "method:clone", "method:detach", torch.clone}


# --------------------------------------------------------------------------- attention


@module(nn.MultiheadAttention)
def multihead_attention(mod, call):
    if not mod.batch_first:
        raise Unsupported("it reads sequence-first tensors (batch_first=False)",
                          "batch_first=True (archc's tokens are [L, D] per sample, batch first)")
    if not mod._qkv_same_embed_dim or mod.bias_k is not None or mod.add_zero_attn:
        raise Unsupported("it has its own key/value widths, bias_k/bias_v or add_zero_attn",
                          "nn.MultiheadAttention(D, heads) with one width (archc's attention)")
    if (mod.in_proj_bias is None) != (mod.out_proj.bias is None):
        raise Unsupported("it has biases on the input projection or the output projection only",
                          "biases on both projections or on neither (archc's attention `bias`)")
    for i, name in ((3, "key_padding_mask"), (5, "attn_mask")):
        if call.arg(i, name) is not None:
            raise Unsupported(f"it is given a mask ({name})", "attention of every position to every other")
    if call.arg(7, "is_causal", False):
        raise Unsupported("it is given is_causal with its mask", "archc's attention with `causal: true`")
    if call.arg(4, "need_weights", True) and _weights_read(call.node):
        raise Unsupported("forward reads its attention weights", "an attention op returning its weights")
    q, k, v = (call.arg(i, name) for i, name in enumerate(("query", "key", "value")))
    if k is not v:
        raise Unsupported("its keys and values are different tensors",
                          "one tensor for keys and values (archc's attention reads [queries, keys_values])")
    inputs = [call.in_nodes.index(q)] + ([] if q is k else [call.in_nodes.index(k)])
    return Mapped("attention", {"heads": mod.num_heads, "bias": mod.in_proj_bias is not None,
                                "dropout": mod.dropout}, tensors(mod), inputs=inputs)


def _weights_read(node) -> bool:
    """Whether anything reads output 1 (the attention weights) of a MultiheadAttention call."""
    for user in node.users:
        if user.op != "call_function" or user.target is not operator.getitem:
            return True  # the tuple itself goes somewhere
        if user.args[1] != 0 and user.users:
            return True
    return False


# --------------------------------------------------------------------------- indexing, permutes


@function(operator.getitem)
def getitem(call):
    source, index = call.node.args[:2]
    meta = source.meta.get("tensor_meta")
    if getattr(source, "target", None) in PIECES:  # x.chunk(2, dim=1)[k]: ShuffleNet's halves
        return _piece(source, index, len(call.in_shapes[0]) + 1)
    if isinstance(meta, (tuple, list)) and not hasattr(meta, "shape"):  # one output of several
        if index == 0:
            return ALIAS  # nn.MultiheadAttention's output (its weights unread: checked there)
        raise Unsupported(f"it takes output {index} of a call that returns several",
                          "a call whose first output is the one used")
    index = index if isinstance(index, tuple) else (index,)
    if not index or not _full(index[0]):
        raise Unsupported("it indexes the batch dimension", "an index that keeps the batch (x[:, ...])")
    moves = [(d, i) for d, i in enumerate(index[1:]) if not _full(i)]
    if not moves:
        return ALIAS
    if len(moves) > 1:
        raise Unsupported("it indexes several dimensions at once", "one index or slice per call (select, slice)")
    dim, i = moves[0]
    if isinstance(i, int):
        return Mapped("select", {"dim": dim, "index": i})  # x[:, 0]: ViT's class token
    if isinstance(i, slice) and all(v is None or isinstance(v, int) for v in (i.start, i.stop, i.step)):
        return Mapped("slice", {"dim": dim, "start": i.start or 0, "end": i.stop, "step": i.step or 1})
    raise Unsupported(f"it indexes with {i!r}", "an integer or a constant slice (select, slice)")


# torch.chunk / torch.split: the call passes its input on, each x[k] of its result is one
# archc layer taking piece k (archc's chunk and split output one piece each)
PIECES = {"chunk": "chunk", torch.chunk: "chunk", "split": "split", torch.split: "split"}


@function(torch.chunk, "method:chunk", torch.split, "method:split")
def pieces(call):
    return ALIAS


def _piece(source, index: int, rank: int) -> Mapped:
    args, kwargs = source.args, source.kwargs
    op = PIECES[source.target]
    sizes = args[1] if len(args) > 1 else kwargs.get("chunks" if op == "chunk" else "split_size_or_sections")
    dim = (args[2] if len(args) > 2 else kwargs.get("dim", 0)) % rank
    if dim == 0:
        raise Unsupported("it splits the batch dimension", f"a {op} along another dimension")
    if op == "chunk":
        return Mapped("chunk", {"chunks": sizes, "dim": dim - 1, "index": index})
    meta = source.meta["tensor_meta"]
    sizes = [int(m.shape[dim]) for m in meta]  # an int split size: the pieces' actual sizes
    return Mapped("split", {"sizes": sizes, "dim": dim - 1, "index": index})


def _full(i) -> bool:
    return isinstance(i, slice) and i == slice(None)


@function(torch.permute, "method:permute")
def permute(call):
    rest = call.node.args[1:]
    dims = rest[0] if len(rest) == 1 and isinstance(rest[0], (list, tuple)) else rest or call.node.kwargs["dims"]
    rank = len(call.in_shapes[0]) + 1
    dims = [d % rank for d in dims]
    if dims[0] != 0:
        raise Unsupported("it moves the batch dimension", "a permute that keeps the batch first")
    dims = [d - 1 for d in dims[1:]]
    return ALIAS if dims == sorted(dims) else Mapped("permute", {"dims": dims})


@function(torch.transpose, "method:transpose", "method:swapaxes", torch.swapaxes)
def transpose(call):
    rank = len(call.in_shapes[0]) + 1
    a, b = (call.arg(i, name) % rank for i, name in ((1, "dim0"), (2, "dim1")))
    if 0 in (a, b):
        raise Unsupported("it moves the batch dimension", "a transpose that keeps the batch first")
    dims = list(range(rank - 1))
    dims[a - 1], dims[b - 1] = dims[b - 1], dims[a - 1]
    return ALIAS if a == b else Mapped("permute", {"dims": dims})  # ShuffleNet's channel shuffle


# --------------------------------------------------------------------------- tensors read directly


def owned(op: str, attrs: dict, p: Param) -> Mapped:
    """A layer owning one bare tensor as its ``weight``, named after the tensor."""
    return Mapped(op, attrs, {"weight": p.value}, path=p.key, claims=(p.key,))


def class_token(call):
    """``torch.cat([token.expand(B, -1, -1), x], dim=1)`` of a [1, 1, D] token and [L, D] tokens."""
    parts = call.arg(0, "tensors")
    p = call.param(parts[0]) if len(parts) == 2 else None
    shape = call.in_shapes[0] if call.in_shapes else ()
    if p is None or call.param(parts[1]) or len(shape) != 2 or call.dim(call.arg(1, "dim", 0)) != 0 \
            or tuple(p.value.shape) != (1, 1, shape[1]):
        raise Unsupported("it concatenates a tensor attribute other than a class token",
                          "a class token: torch.cat([token.expand(B, -1, -1), x], dim=1) with a "
                          "[1, 1, D] token (class_token)")
    return owned("class_token", {}, p)


def pos_embedding(call):
    """``x + table`` of [L, D] tokens and a [1, L, D] table."""
    p, shape = _one_param(call)
    if len(shape) != 2 or tuple(p.value.shape) != (1, *shape):
        raise Unsupported(f"it adds the tensor attribute {p.key} {list(p.value.shape)} to {list(shape)}",
                          "a positional table [1, L, D] added to [L, D] tokens (pos_embedding)")
    return owned("pos_embedding", {}, p)


def layer_scale(call):
    """``gamma * x`` with gamma [C, 1, 1] (images) or [D] (tokens): a scale per channel."""
    from archc.ops.registry import get_op

    p, shape = _one_param(call)
    op, want = get_op("layer_scale"), tuple(p.value.shape)
    dims = [d for d in range(len(shape)) if op.weight_shape({"dim": d}, shape) == want]
    if not dims:
        raise Unsupported(f"it multiplies by the tensor attribute {p.key} {list(want)}",
                          "a scale per channel: [C, 1, 1] for (C, H, W), [D] for [L, D] (layer_scale)")
    default = op.weight_shape({"dim": None}, shape) == want
    attrs = {} if default else {"dim": dims[0]}
    values = p.value.detach().flatten()
    if values.numel() and bool((values == values[0]).all()):  # the initial value, as constructed
        attrs["init_value"] = float(f"{values[0].item():.6g}")
    return owned("layer_scale", attrs, p)


def _one_param(call) -> tuple[Param, tuple]:
    a, b = call.arg(0, "input"), call.arg(1, "other")
    p = call.param(a) or call.param(b)
    if call.param(a) and call.param(b) or len(call.in_shapes) != 1:
        raise Unsupported(f"it combines the tensor attribute {p.key} with something other than one "
                          "computed tensor", "an op of one computed tensor and one tensor attribute")
    return p, call.in_shapes[0]


@function(F.layer_norm)
def layer_norm_f(call):
    """``F.layer_norm(x, shape, self.weight, self.bias, eps)``: torchvision's LayerNorm2d."""
    shape = list(call.arg(1, "normalized_shape"))
    attrs = {"dims": len(shape), "eps": call.arg(4, "eps", 1e-5)}
    if shape != list(call.in_shapes[0][-len(shape):]):
        raise Unsupported(f"it normalises over {shape}, not the last dims of {list(call.in_shapes[0])}",
                          "a layer norm over the input's last dims")
    w, b = call.arg(2, "weight"), call.arg(3, "bias")
    if w is None and b is None:
        return Mapped("layernorm", attrs | {"affine": False})
    pw, pb = call.param(w), call.param(b)
    if pw is None or pb is None or pw.owner != pb.owner or (pw.suffix, pb.suffix) != ("weight", "bias"):
        raise Unsupported("its weight and bias are not one module's `weight` and `bias`",
                          "a layer norm whose tensors are a module's `weight` and `bias` (layernorm)")
    return Mapped("layernorm", attrs | {"affine": True}, {"weight": pw.value, "bias": pb.value},
                  path=pw.owner, claims=(pw.key, pb.key))
