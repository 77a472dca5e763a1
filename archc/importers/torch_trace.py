"""Trace a torch module into archc layers, each knowing the module hierarchy it sits in.

torch.fx's symbolic tracer records the calls of ``forward``; the modules the op table
maps (archc/importers/torch_ops.py) are kept whole as leaves, so a ``nn.Conv2d`` is one
call with its module path (``layer1.0.conv1``), and every call carries the stack of
modules around it (``nn_module_stack``): the structure that archc/importers/torch_blocks.py
turns into blocks. Shapes come from running the traced graph on the example input
(``ShapeProp``). Where fx cannot trace a forward (data-dependent control flow), the error
says so and where. Tensors ``forward`` reads as attributes (``get_attr``) are handed to
the call that reads them, which claims them (torch_ops_seq.py) or is an error.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field

import torch
import torch.fx as fx
from torch.fx.passes.shape_prop import ShapeProp

from archc.importers.torch_ops import ALIAS, FUNCTIONS, MODULES, Call, Param, Unsupported
from archc.importers.torch_ops_seq import PARAM_VIEWS

# the containers whose children take their place (the ids become dotted: features.0)
CONTAINERS = (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)


@dataclass
class Item:
    """One archc layer from one call: ``inputs`` are the names of the fx nodes it reads
    (``"input"``: the network's input), ``path`` its module path when it owns tensors,
    ``stack`` the (key, path, class) of the modules it sits in, outermost first."""

    name: str
    op: str
    attrs: dict
    inputs: list
    stack: list
    path: str | None = None
    tensors: dict = field(default_factory=dict)
    shape: tuple = ()  # the output's shape, batch excluded


class TraceFailed(Exception):
    """A located import problem: ``where`` (a module path or node), ``message``, ``need``."""

    def __init__(self, where: str, message: str, need: str):
        self.where, self.message, self.need = where, message, need
        super().__init__(f"{where}: {message}")


class ExampleMismatch(TraceFailed):
    """forward and the example input do not fit (arity, dtype, shape): torch.export, which
    runs the same forward, is not tried."""


class _Tracer(fx.Tracer):
    # modules the table maps stay whole; other torch.nn modules too, so that an unmapped
    # one is reported by its path and class instead of by the functions inside it
    def is_leaf_module(self, m, qualname):
        return type(m) in MODULES or (super().is_leaf_module(m, qualname) and not isinstance(m, CONTAINERS))


def trace(module: torch.nn.Module, example: torch.Tensor) -> fx.GraphModule:
    tracer = _Tracer()
    try:
        graph = tracer.trace(module)
    except Exception as exc:  # fx raises TraceError, TypeError, AttributeError... from user code
        raise TraceFailed(type(module).__name__, f"torch.fx cannot trace its forward ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''})",
                          "a forward without control flow that depends on tensor values") from None
    inputs = [n.target for n in graph.nodes if n.op == "placeholder"]
    if len(inputs) != 1:
        raise ExampleMismatch(type(module).__name__, f"forward takes {len(inputs)} inputs ({', '.join(inputs)})",
                              "a forward of one tensor (an archc spec has one input)")
    gm = fx.GraphModule(tracer.root, graph, type(module).__name__)
    # GraphModule registers each tensor attribute of the root that forward reads as its own
    # buffer, the constants forward makes (torch.ones(4) -> _tensor_constant0) included; those
    # not in the module's state_dict are marked non-persistent, so that _param refuses them
    own = set(module.state_dict(keep_vars=True))
    gm._non_persistent_buffers_set.update(n for n, _ in gm.named_buffers(recurse=False) if n not in own)
    try:
        with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):  # ShapeProp prints what it raises
            ShapeProp(gm).propagate(example)
    except Exception as exc:  # noqa: BLE001 - forward's own error on this example (dtype, shape)
        cause = exc.__cause__ or exc  # ShapeProp wraps it
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        raise ExampleMismatch(type(module).__name__, f"forward fails on the example input "
                              f"({type(cause).__name__}: {first})",
                              "an example batch of the shape and dtype forward takes") from None
    return gm


def _shape(node) -> tuple | None:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    if isinstance(meta, (tuple, list)) and meta and not hasattr(meta, "shape"):
        meta = meta[0]  # several outputs: archc keeps the first (nn.MultiheadAttention's; its mapping checks)
    return tuple(meta.shape[1:]) if hasattr(meta, "shape") else None


def _tensor_inputs(node, params: dict) -> list:
    """The computed tensors a node reads (tensor attributes, in ``params``, excluded)."""
    found = []
    fx.node.map_arg((node.args, node.kwargs),
                    lambda n: found.append(n) if _shape(n) is not None and n.name not in params else None)
    return found


def _params_read(node, params: dict) -> dict:
    found = {}
    fx.node.map_arg((node.args, node.kwargs), lambda n: found.update({n.name: params[n.name]})
                    if n.name in params else None)
    return found


def _param(gm, node) -> Param | None:
    """The parameter or persistent buffer a ``get_attr`` reads, or None (another tensor)."""
    owner_path, _, name = node.target.rpartition(".")
    try:
        owner = gm.get_submodule(owner_path)
    except AttributeError:
        return None
    value = owner._parameters.get(name)
    if value is None and name not in owner._non_persistent_buffers_set:
        value = owner._buffers.get(name)
    return Param(node.target, value.detach()) if value is not None else None


def _stack(node, own: str | None) -> list:
    stack = node.meta.get("nn_module_stack") or {}
    entries = [(key, path, cls) for key, (path, cls) in stack.items()]
    if entries and own is not None and entries[-1][1] == own:
        entries.pop()  # a module call's own entry: the layer itself, not a scope
    return entries


def items(gm: fx.GraphModule) -> tuple[list[Item], list[str], list[TraceFailed]]:
    """The layers of ``gm`` in order, the names of the output values, and the calls the table
    cannot map (collected, not raised, so one error lists them all)."""
    out, errors, alias, owners, params = [], [], {}, {}, {}
    resolve = lambda n: alias.get(n.name, n.name)  # noqa: E731
    outputs = []
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            alias[node.name] = "input"
        elif node.op == "output":
            fx.node.map_arg(node.args, lambda n: outputs.append(resolve(n)))
        elif node.op in ("call_module", "call_function", "call_method") and _shape(node) is not None:
            read = _params_read(node, params)
            if read and _key(node) in PARAM_VIEWS and not _tensor_inputs(node, params):
                params[node.name] = next(iter(read.values()))  # token.expand(B, -1, -1): the token
                continue
            try:
                item = _item(gm, node, resolve, params)
            except Unsupported as exc:
                errors.append(TraceFailed(_where(node), exc.message, exc.need))
                continue
            if item is None:
                ins = _tensor_inputs(node, params)
                alias[node.name] = resolve(ins[0]) if ins else "input"
                continue
            if item.path and item.tensors:
                if item.path in owners:
                    errors.append(TraceFailed(item.path, "the module is called twice and owns weights",
                                              "one module per call (archc layers own their weights; "
                                              "`tie:` shares only a weight)"))
                owners[item.path] = item
            out.append(item)
        elif node.op == "get_attr":
            p = _param(gm, node)
            if p is None:
                made = node.target.startswith("_tensor_constant")  # fx's name for a constant forward makes
                errors.append(TraceFailed(node.target, "forward makes a tensor constant (torch.tensor(...) in "
                                          "forward)" if made else "forward reads a tensor attribute that is "
                                          "neither a parameter nor a persistent buffer", "the tensor as a "
                                          "module's parameter or buffer (a layer owns its tensors)"))
            else:
                params[node.name] = p
    return out, outputs, errors


def _key(node):
    return node.target if node.op == "call_function" else f"method:{node.target}"


def _where(node) -> str:
    if node.op == "call_module":
        return node.target
    stack = _stack(node, None)
    inside = f" in {stack[-1][1]} ({stack[-1][2].__name__})" if stack else ""
    return f"{node.name}{inside}"


def _item(gm, node, resolve, params) -> Item | None:
    ins = _tensor_inputs(node, params)
    read = _params_read(node, params)
    call = Call(node, [_shape(n) for n in ins], _shape(node), read, ins)
    path = None
    if node.op == "call_module":
        mod = gm.get_submodule(node.target)
        mapper, path = MODULES.get(type(mod)), node.target
        if mapper is None:
            raise Unsupported(f"archc has no op for {type(mod).__module__}.{type(mod).__name__}",
                              "an op computing it (`archc ops` lists those archc has)")
        mapped = mapper(mod, call)
    else:
        mapper = FUNCTIONS.get(_key(node))
        if mapper is None:
            name = getattr(node.target, "__name__", str(node.target))
            raise Unsupported(f"archc has no op for {'method .' if node.op == 'call_method' else ''}{name}()",
                              "an op computing it (`archc ops` lists those archc has)")
        mapped = mapper(call)
    unclaimed = {p.key for p in read.values()} - set(() if mapped is ALIAS else mapped.claims)
    if unclaimed:
        raise Unsupported(f"it reads the tensor attribute {', '.join(sorted(unclaimed))} directly",
                          "the tensor inside a module archc maps, or a use archc recognises "
                          "(class token, positional table, layer scale, layer norm)")
    if mapped is ALIAS:
        return None
    stack = _stack(node, path)  # a function's layer (path: its tensors' owner) stays in its scope
    if mapped.path is not None:
        path = mapped.path
    used = ins if mapped.inputs is None else [ins[i] for i in mapped.inputs]
    return Item(node.name, mapped.op, mapped.attrs, [resolve(n) for n in used], stack, path, mapped.tensors,
                _shape(node))
