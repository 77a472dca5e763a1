"""When torch.fx cannot trace a ``forward``: torch.export, read through the same op table.

fx traces with proxies, so ``if x.shape[-1] > 8:`` or ``int(x.size(1))`` stops it; non-strict
``torch.export.export`` runs ``forward`` on fake tensors whose shapes are known, so Python
control flow on *shapes* is fine there. Control flow on tensor *values* (``if x.sum() > 0``)
stops both: that error stays, naming both tracers.

Export's graph is aten ops, with parameters and buffers lifted to inputs; the op table
(torch_ops.py) reads module calls and torch functions. So the graph is rebuilt as the fx
graph the tracer would have made, from export's own records:

* the ops run inside one call of a module the tracer keeps whole (the outermost such
  module in ``nn_module_stack``; ``layer1.0.relu@1`` is its second call) become one
  ``call_module`` of that module, reading the values that enter the call;
* the other ops become the torch function they are (``aten.add.Tensor`` -> ``operator.add``,
  ``aten.select.int`` -> ``x[:, i]``); an aten op outside the table stays as it is and is
  reported by name, as an unmapped call is;
* a lifted parameter or buffer becomes a ``get_attr`` of its state_dict key.

Shapes come from export's fake values; ``nn_module_stack`` (export's, with the classes
looked up on the module) carries the hierarchy, so blocks and repeats come out as after fx.
"""

from __future__ import annotations

import operator

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch.fx.passes.shape_prop import _extract_tensor_metadata

from archc.importers.torch_trace import TraceFailed, _Tracer

aten = torch.ops.aten

# aten op -> (the torch-level target the op table knows, "function" or "method")
TORCH = {
    aten.add.Tensor: operator.add, aten.add_.Tensor: operator.add, aten.mul.Tensor: operator.mul,
    aten.mul_.Tensor: operator.mul, aten.cat.default: torch.cat, aten.relu.default: torch.relu,
    aten.relu_.default: torch.relu, aten.sigmoid.default: torch.sigmoid, aten.tanh.default: torch.tanh,
    aten.silu.default: F.silu, aten.silu_.default: F.silu, aten.hardswish.default: F.hardswish,
    aten.hardswish_.default: F.hardswish, aten.hardsigmoid.default: F.hardsigmoid, aten.gelu.default: F.gelu,
    aten.mish.default: F.mish, aten.softmax.int: torch.softmax, aten.log_softmax.int: torch.log_softmax,
    aten.dropout.default: F.dropout, aten.layer_norm.default: F.layer_norm, aten.flatten.using_ints: torch.flatten,
    aten.mean.dim: torch.mean, aten.permute.default: torch.permute, aten.transpose.int: torch.transpose,
    aten.adaptive_avg_pool1d.default: F.adaptive_avg_pool1d,
    aten.adaptive_avg_pool2d.default: F.adaptive_avg_pool2d,
    aten.adaptive_avg_pool3d.default: F.adaptive_avg_pool3d, aten.max_pool2d.default: F.max_pool2d,
    aten.avg_pool2d.default: F.avg_pool2d, aten.chunk.default: torch.chunk, aten.split.Tensor: torch.split,
    aten.clone.default: torch.clone, aten.contiguous.default: torch.clone, aten.alias.default: torch.clone,
    aten.detach.default: torch.clone, operator.getitem: operator.getitem,
}
METHODS = {aten.view.default: "reshape", aten.reshape.default: "reshape", aten._unsafe_view.default: "reshape",
           aten.expand.default: "expand"}
ARITY = {F.layer_norm: 5}  # aten.layer_norm's cudnn_enable is no argument of F.layer_norm


class ExportFailed(Exception):
    """torch.export refused the forward too: ``reason`` is its first line."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def export_graph(module: torch.nn.Module, example: torch.Tensor) -> fx.GraphModule:
    """``module``'s forward on ``example`` as the fx GraphModule the tracer would have made."""
    try:
        ep = torch.export.export(module, (example,), strict=False)
    except Exception as exc:  # export raises many kinds (data-dependent guards, unsupported ops)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ExportFailed(f"{type(exc).__name__}: {first}"[:300]) from None
    return _Rebuild(module, ep).run()


class _Rebuild:
    def __init__(self, module, ep):
        sig = ep.graph_signature
        self.module, self.ep, self.tracer = module, ep, _Tracer()
        self.tensors = sig.inputs_to_parameters | sig.inputs_to_buffers  # placeholder -> state_dict key
        self.constants = set(sig.inputs_to_lifted_tensor_constants)
        self.graph, self.env = fx.Graph(), {}

    def run(self) -> fx.GraphModule:
        nodes = list(self.ep.graph.nodes)
        leaf = {n: self._leaf(n) for n in nodes}
        groups: dict = {}  # module call key -> its nodes, in order
        for n in nodes:
            if leaf[n]:
                groups.setdefault(leaf[n], []).append(n)
        first = {group[0]: (key, group) for key, group in groups.items()}
        for node in nodes:
            if node in first:
                self._module_call(*first[node])
            elif node.op == "placeholder":
                self._placeholder(node)
            elif node.op == "output":
                self.graph.output(fx.node.map_arg(node.args[0], self._value))
            elif node.op == "call_function" and not leaf[node]:
                self._function(node)
        return fx.GraphModule(self.module, self.graph, type(self.module).__name__)

    # ---- which module call a node belongs to

    def _leaf(self, node):
        """The stack key of the outermost module call the tracer would keep whole, or None."""
        for key, (path, _) in (node.meta.get("nn_module_stack") or {}).items():
            if path and self.tracer.is_leaf_module(self.module.get_submodule(path), path):
                return key
        return None

    def _stack(self, node, upto=None) -> dict:
        """export's nn_module_stack as fx writes it: (path, class), the root left out, and
        for a module call nothing inside the module (``upto``: its own entry)."""
        out = {}
        for k, (path, _) in (node.meta.get("nn_module_stack") or {}).items():
            if path:
                out[k] = (path, type(self.module.get_submodule(path)))
            if k == upto:
                break
        return out

    # ---- the nodes of the rebuilt graph

    def _placeholder(self, node):
        if node.name in self.tensors:
            new = self.graph.get_attr(self.tensors[node.name])
        elif node.name in self.constants:
            self.env[node] = node.name  # an error where it is read (_value)
            return
        else:
            new = self.graph.placeholder(node.name)
        self._meta(new, node)
        self.env[node] = new

    def _value(self, node):
        """The rebuilt node for an export node; a tensor constant forward makes is an error."""
        value = self.env[node]
        if isinstance(value, str):
            raise TraceFailed(value, "forward makes a tensor constant (torch.tensor(...) in forward)",
                              "the tensor as a module's parameter or buffer (a layer owns its tensors)")
        return value

    def _module_call(self, key, group):
        """One call of a module kept whole: it reads what enters the group, gives what leaves it."""
        inside = set(group)
        ins = list(dict.fromkeys(a for n in group for a in n.all_input_nodes
                                 if a not in inside and a.name not in self.tensors))
        out = [n for n in group if any(u not in inside for u in n.users)]
        path = group[0].meta["nn_module_stack"][key][0]
        if len(out) != 1 or any(a not in self.env for a in ins):
            raise TraceFailed(path, f"torch.export's graph of this module call has {len(out)} results or "
                              "interleaves it with other calls", "a module call with one output")
        args = tuple(self._value(a) for a in ins)
        kwargs = {}
        if isinstance(self.module.get_submodule(path), torch.nn.MultiheadAttention):
            args, kwargs = (args[0], args[-1], args[-1]), {"need_weights": False}  # query, key, value
        new = self.graph.call_module(path, args, kwargs)
        self._meta(new, out[0], group[0], upto=key)
        self.env[out[0]] = new

    def _function(self, node):
        args = fx.node.map_arg(node.args, self._value)
        kwargs = fx.node.map_arg(node.kwargs, self._value)
        target = node.target
        if target in METHODS:
            new = self.graph.call_method(METHODS[target], args, kwargs)
        elif target in (aten.select.int, aten.slice.Tensor):
            rank = node.args[0].meta["val"].dim()
            new = self.graph.call_function(operator.getitem, (args[0], _index(target, rank, *args[1:])))
        elif target in TORCH:
            fn = TORCH[target]
            new = self.graph.call_function(fn, args[:ARITY.get(fn, len(args))], kwargs)
        else:
            new = self.graph.call_function(target, args, kwargs)  # unmapped: the error names it
        self._meta(new, node)
        self.env[node] = new

    def _meta(self, new, old, stack_from=None, upto=None):
        val = old.meta.get("val")
        if isinstance(val, torch.Tensor):
            new.meta["tensor_meta"] = _extract_tensor_metadata(val)
        elif isinstance(val, (tuple, list)) and val and all(isinstance(v, torch.Tensor) for v in val):
            new.meta["tensor_meta"] = tuple(_extract_tensor_metadata(v) for v in val)
        new.meta["nn_module_stack"] = self._stack(stack_from or old, upto)


def _index(target, rank, dim=0, start=None, end=None, step=1):
    """aten.select(x, dim, i) as x[:, …, i]; aten.slice(x, dim, a, b, s) as x[:, …, a:b:s]."""
    dim %= rank
    if target is aten.select.int:
        return (slice(None),) * dim + (start,)
    end = None if end is not None and end >= 2 ** 62 else end  # export's "to the end"
    return (slice(None),) * dim + (slice(start, end, None if step == 1 else step),)
