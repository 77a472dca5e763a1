"""Graph IR -> the source of one standalone PyTorch module (torch-free code generation).

The generated file imports torch only and holds one class named after the spec (or the variant
its preset makes: resnet50 --preset resnet101 is ``Resnet101``). Its
``__init__`` builds the submodules along the spec's hierarchy — a block instance is a
``Block`` container, a repeated layer's instances are named ``0``, ``1``… as in
``nn.Sequential`` — so state_dict keys read ``layer1.0.conv2d_1.weight``. ``forward`` is
straight-line code in topological order, what a person would write by hand::

    x = self.conv2d_1(x)  # (64, 112, 112)
    x1 = self.layer1[0].conv2d_1(x)  # (64, 56, 56)
    x = x + x1  # layer1.0.add_1 (64, 56, 56)

Every op's code comes from its registry class (``torch_init``, ``torch_forward``); this
module only names things and orders them. Safety: every name that reaches the source is
checked to be a plain identifier (or a digit string used as ``[0]``), not a keyword, not a
name nn.Module already uses; attribute values are rendered by the op classes from checked
numbers, booleans, tuples and closed enums; free text (the spec's name and file) appears
only inside ``repr()``-quoted comments. The result is parsed once before it is returned.
"""

from __future__ import annotations

import ast
import keyword
import textwrap
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from archc.errors import SpecError, SpecErrors
from archc.ir.graph import INPUT, Graph
from archc.ir.names import GENERATED_NAMES, MODULE_ATTRS, name_fix, name_problem  # noqa: F401
from archc.ops.registry import get_op

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_INDEX = re.compile(r"[0-9]+")

BLOCK_CLASS = '''


class Block(nn.Module):
    """A container for the layers of one block instance or repeat (it has no forward)."""

    def __getitem__(self, key):
        return self._modules[str(key)]
'''

# print(model) lists every node of the report, not only the submodules: activations, pools
# and adds are function calls in forward (a module call costs microseconds per layer), so
# the class's __repr__ draws the spec's layer table instead of nn.Module's child list.
LAYER_TREE = '''


def _layer_tree(model, layers):
    """The text of print(model): every layer of the spec in order, nested by block; a layer
    forward computes with a function reads ``op(...)``, the others are their modules."""
    root = {}
    for name, text in layers:
        *scope, last = name.split(".")
        level = root
        for part in scope:
            level = level.setdefault(part, {})
        level[last] = text if text is not None else model.get_submodule(name)
    return _tree_text(model._get_name(), root)


def _tree_text(title, children):
    lines = []
    for key, value in children.items():
        text = _tree_text("Block", value) if isinstance(value, dict) else str(value)
        lines.append(f"({key}): " + text.replace("\\n", "\\n  "))
    return f"{title}(\\n  " + "\\n  ".join(lines) + "\\n)" if lines else f"{title}()"
'''


# --------------------------------------------------------------------------- names


def check_part(part: str, node) -> None:
    """Refuse a name part that could not be written safely as ``.part`` or ``[part]``."""
    if _INDEX.fullmatch(part):
        return
    bad = name_problem(part)
    if bad:
        raise SpecErrors([SpecError(f"name {part!r} of node {node.name!r} {bad}", node.pos, node.path,
                                    name_fix(part) + " for the layer (`id:`) or block instance")])


def access(parts) -> str:
    """``("layer1", "0", "conv1")`` -> ``self.layer1[0].conv1``."""
    return "self" + "".join(f"[{p}]" if _INDEX.fullmatch(p) else f".{p}" for p in parts)


def class_name(name: str) -> str:
    """``resnet18`` -> ``Resnet18``, ``u-net`` -> ``UNet``; a valid, non-reserved identifier."""
    words = re.findall(r"[A-Za-z0-9]+", str(name))
    text = "".join(w[:1].upper() + w[1:] for w in words)
    if not text or not text[0].isalpha():
        text = "Net" + text
    if not text.isascii() or keyword.iskeyword(text) or text in GENERATED_NAMES:
        text += "Net"
    assert text.isidentifier()
    return text


def model_class(graph: Graph) -> str:
    """The generated class's name: the network's (``Resnet50``), or the name of the
    variant its preset makes (``--preset resnet101``: ``Resnet101``)."""
    from archc.report.variant import variant_name

    return class_name(variant_name(graph))


# --------------------------------------------------------------------------- __init__


@dataclass
class ModuleTree:
    """The submodules to create, in creation order: containers before their children."""

    lines: list[str] = field(default_factory=list)
    leaves: dict[str, str] = field(default_factory=dict)  # node name -> access expression
    containers: set[tuple] = field(default_factory=set)


def build_tree(graph: Graph) -> ModuleTree:
    tree = ModuleTree()
    for node in graph.nodes:
        op = get_op(node.op)
        parts = tuple(node.name.split("."))
        for p in parts:
            check_part(p, node)
        ins = [graph.shape_of(i) for i in node.inputs]
        init = op.torch_init(node.attrs, ins, node.meta["shape"])
        if init is None:
            continue
        if parts in tree.containers:  # every proper prefix of a layer's name is a container
            raise SpecErrors([SpecError(f"node {node.name!r} clashes with a block of the same name",
                                        node.pos, node.path, "rename one of them")])
        for depth in range(1, len(parts)):
            _container(tree, parts[:depth], node)
        tree.lines.append(_assign(parts, init))
        tree.leaves[node.name] = access(parts)
        if node.meta.get("trainable", True) is False:
            tree.lines.append(f"{access(parts)}.requires_grad_(False)  # trainable: false")
    for node in graph.nodes:  # tied weights: one Parameter, reached through both layers
        if "tie" in node.meta:
            target, mine, theirs = node.meta["tie"]
            tree.lines.append(f"{tree.leaves[node.name]}.{mine} = {tree.leaves[target]}.{theirs}"
                              f"  # tied to {target}")
    return tree


def helpers(graph: Graph) -> str:
    """The helper classes and functions the graph's ops need, each once, in a stable order."""
    found: dict[str, str] = {}
    for node in graph.nodes:
        for name, source in get_op(node.op).torch_helpers.items():
            found.setdefault(name, source)
    return "".join("\n\n" + textwrap.dedent(found[k]).strip("\n") + "\n" for k in sorted(found))


def _container(tree: ModuleTree, parts: tuple, node) -> None:
    if parts in tree.containers:
        return
    if ".".join(parts) in tree.leaves:
        raise SpecErrors([SpecError(f"node {node.name!r} is inside {'.'.join(parts)!r}, "
                                    "which is a layer, not a block", node.pos, node.path,
                                    "rename one of them")])
    tree.containers.add(parts)
    tree.lines.append(_assign(parts, "Block()"))


def _assign(parts: tuple, value: str) -> str:
    parent, last = access(parts[:-1]), parts[-1]
    if _INDEX.fullmatch(last):
        return f'{parent}.add_module("{last}", {value})'
    return f"{parent}.{last} = {value}"


# --------------------------------------------------------------------------- forward


SENTINEL = "_archc_arg{}_"


def _alias_of(op, node, ins) -> int | None:
    """The input index an op passes through unchanged (identity), else None."""
    args = [SENTINEL.format(i) for i in range(len(ins))]
    expr = op.torch_forward(node.attrs, ins, node.meta["shape"], args, "_archc_mod_")
    return args.index(expr) if expr in args else None


def forward_lines(graph: Graph, tree: ModuleTree, return_all: bool, outputs=None) -> list[str]:
    """The body of forward. Values live in few variables: a value's variable is reused
    once its last reader has run (``x = self.conv(x)``), unless ``return_all`` keeps every
    value and returns them by node name (for tests). ``outputs`` (id -> node name, from
    :func:`resolve_outputs`) makes forward compute only what those nodes need and return
    them as a dict by id (feature extraction)."""
    nodes = needed(graph, outputs.values()) if outputs else graph.nodes
    alias, last_use, real = value_flow(graph, nodes)
    keep = set(alias[o] for o in (outputs.values() if outputs else graph.outputs))
    var = {INPUT: "x"}
    free, count, lines = [], [0], []

    def fresh():
        if free and not return_all:
            return free.pop(0)
        count[0] += 1
        return f"x{count[0]}"

    writable = set() if return_all else _writable(graph, nodes, alias, real, keep)
    for i, node in enumerate(nodes):
        if node.name not in real:
            var[node.name] = var[alias[node.name]]
            continue
        op = get_op(node.op)
        srcs = [alias[n] for n in node.inputs]
        ins = [graph.shape_of(n) for n in node.inputs]
        args = [var[s] for s in srcs]
        expr = op.torch_forward(node.attrs, ins, node.meta["shape"], args, tree.leaves.get(node.name))
        over, inplace = _inplace(op, node, ins, srcs, args, writable)
        expr = inplace or expr
        dying = [] if return_all else [s for s in dict.fromkeys(srcs) if last_use[s] == i and s not in keep]
        chosen = over if inplace else (dying[0] if dying else None)
        free += [var[s] for s in dying if s != chosen]
        target = var[chosen] if chosen else fresh()
        if last_use[node.name] == i and node.name not in keep and not return_all:
            free.append(target)  # nothing reads this value: its name is free again at once
        free.sort(key=_var_order)
        var[node.name] = target
        label = "" if node.name in tree.leaves else f"{node.name} "
        lines.append(f"{target} = {expr}  # {label}{_shape(node.meta['shape'])}")
    if return_all:
        items = ", ".join(f"{n.name!r}: {var[n.name]}" for n in graph.nodes)
        lines.append(f"return {{{items}}}")
    elif outputs:
        items = ", ".join(f"{key!r}: {var[name]}" for key, name in outputs.items())
        lines.append(f"return {{{items}}}")
    else:
        lines.append("return " + ", ".join(var[alias[o]] for o in graph.outputs))
    return lines


def needed(graph: Graph, names) -> list:
    """The nodes the values ``names`` depend on, in graph order (what a feature extractor
    computes: nothing after the last requested layer, no branch it does not read)."""
    todo, seen = [n for n in names if n != INPUT], set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += [i for i in graph.node(name).inputs if i != INPUT]
    return [n for n in graph.nodes if n.name in seen]


def resolve_outputs(graph: Graph, ids) -> dict:
    """Report ids -> the node whose value each one names: a layer's id is that layer, a
    block instance's (``layer3``, ``layer4.1``) is its last layer (the block's output, as
    docs/spec.md defines it), ``input`` the network input. Unknown ids raise ValueError
    with the closest ids."""
    import difflib

    if isinstance(ids, str):
        ids = [ids]
    names = [n.name for n in graph.nodes]
    last = {}  # block instance -> its last node
    for name in names:
        parts = name.split(".")
        for depth in range(1, len(parts)):
            last[".".join(parts[:depth])] = name
    known = set(names)
    out, unknown = {}, []
    for key in ids:
        key = str(key)
        if key in known or key == INPUT:
            out[key] = key
        elif key in last:
            out[key] = last[key]
        else:
            unknown.append(key)
    if unknown or not out:
        choices = [INPUT, *names, *last]
        msgs = []
        for key in unknown:
            close = difflib.get_close_matches(key, choices, n=3, cutoff=0.6)
            hint = f" (did you mean {_either(close)}?)" if close else ""
            msgs.append(f"unknown layer id {key!r} in {graph.name!r}{hint}")
        raise ValueError("; ".join(msgs or ["no layer ids given"])
                         + " (the ids are those of `archc validate`'s report: a layer's dotted id, "
                         "a block instance's id for its output, or 'input')")
    return out


def _either(words) -> str:
    """['a', 'b', 'c'] -> "'a', 'b' or 'c'"."""
    quoted = [repr(w) for w in words]
    return " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)


def inplace_plan(graph: Graph) -> tuple[dict, dict]:
    """(alias: node -> the node whose value it is, overwrites: node -> the value its code
    overwrites in place), as :func:`forward_lines` decides them for the normal module
    (archc/analysis/memory.py follows storages with it)."""
    alias, _, real = value_flow(graph)
    writable = _writable(graph, graph.nodes, alias, real, {alias[o] for o in graph.outputs})
    overwrites = {}
    for node in graph.nodes:
        if node.name in real:
            srcs = [alias[n] for n in node.inputs]
            ins = [graph.shape_of(n) for n in node.inputs]
            over, _ = _inplace(get_op(node.op), node, ins, srcs, [f"x{i}" for i in range(len(srcs))], writable)
            if over is not None:
                overwrites[node.name] = over
    return alias, overwrites


def _writable(graph: Graph, nodes, alias: dict, real: set, keep: set) -> set:
    """Values an in-place op may overwrite: read by exactly one node (so no other reader
    — a convolution keeping its input for backward — sees it change), not the network's
    input (the caller's tensor) nor an output, made by an op whose output is writable."""
    readers = {}
    for node in nodes:
        if node.name in real:
            for n in node.inputs:
                readers[alias[n]] = readers.get(alias[n], 0) + 1
    return {v for v, count in readers.items()
            if count == 1 and v != INPUT and v not in keep and get_op(graph.node(v).op).torch_output_writable}


def _inplace(op, node, ins, srcs, args, writable) -> tuple[str | None, str | None]:
    """(the value overwritten, the in-place source), or (None, None)."""
    for k, s in enumerate(srcs):
        if s in writable:
            expr = op.torch_inplace(node.attrs, ins, node.meta["shape"], args, k)
            if expr is not None:
                return s, expr
    return None, None


def value_flow(graph: Graph, nodes=None):
    """(alias: node -> the node whose value it is, last_use: value -> index in ``nodes``
    (default: all) of its last reader, real: nodes that compute something)."""
    alias, last_use, real = {INPUT: INPUT}, {INPUT: -1}, set()
    for i, node in enumerate(graph.nodes if nodes is None else nodes):
        op = get_op(node.op)
        ins = [graph.shape_of(n) for n in node.inputs]
        k = _alias_of(op, node, ins)
        if k is not None:
            alias[node.name] = alias[node.inputs[k]]
            continue
        alias[node.name] = node.name
        real.add(node.name)
        last_use[node.name] = i
        for n in node.inputs:
            last_use[alias[n]] = i
    return alias, last_use, real


def _var_order(name: str) -> int:
    return 0 if name == "x" else int(name[1:])


def _shape(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _batch(shape) -> str:
    return "(batch, " + ", ".join(map(str, shape)) + ")"


# --------------------------------------------------------------------------- the file


def as_graph(spec=None, network=None, overrides=None, preset=None, *, text: str | None = None) -> Graph:
    """An analysed graph from a Graph, a path (``FILE:NAME``) or a zoo name — or from the
    YAML text ``text=``: a string given as ``spec`` is never parsed as YAML, whatever it
    holds (docs/python-api.md, "Paths and text")."""
    if isinstance(spec, Graph):
        if network or overrides or preset or text is not None:
            raise TypeError("network, overrides, preset and text= apply to a spec, not to a Graph")
        return spec
    from archc.api import load

    return load(spec, network, overrides, preset, text=text)  # load finds zoo names ("resnet50")


def generate_source(spec=None, network=None, overrides=None, preset=None, init=None,
                    return_all: bool = False, *, text: str | None = None) -> str:
    """The standalone PyTorch source of a spec: one module that imports torch only.

    ``spec`` is what :func:`archc.build` takes (``text=`` the YAML text of a spec instead);
    ``init`` the network default initialisation; ``return_all`` makes forward return every
    node's value by name.

    >>> src = generate_source(text="archc: 1\\nname: tiny\\ninput: [4]\\nlayers:\\n  - linear: {out: 2}\\n")
    >>> "class Tiny(nn.Module):" in src and "self.linear_1 = nn.Linear(4, 2, bias=True)" in src
    True
    """
    return generate(as_graph(spec, network, overrides, preset, text=text), init, return_all)


def generate(graph: Graph, init=None, return_all: bool = False, name: str | None = None,
             outputs=None) -> str:
    """The source of a standalone module for ``graph`` (analysed). ``init`` is the network
    default initialisation (else ``train.init``); ``return_all`` makes forward return a
    dict of every node's value (tests); ``outputs`` (report ids) makes it return a dict of
    those layers' values, computing only what they need (see :func:`resolve_outputs`).
    Raises SpecErrors for names that cannot be code, ValueError for an unknown id."""
    from archc.backends.torch.init import plan

    _check_values(graph)
    chosen = resolve_outputs(graph, outputs) if outputs is not None else None
    cls = class_name(name) if name else model_class(graph)
    tree = build_tree(graph)
    calls = plan(graph, init)
    body = ["", "", f"class {cls}(nn.Module):", *_docstring(graph), *_layer_table(graph, tree),
            "    def __init__(self):", "        super().__init__()"]
    body += [f"        {line}" for line in tree.lines]
    if calls:
        body.append("        self.init_weights()")
        body += ["", "    @torch.no_grad()", "    def init_weights(self):",
                 '        """The initialisation the spec asks for (torch\'s default elsewhere)."""']
        body += [f"        {_init_line(c, tree)}" for c in calls]
    body += ["", f"    def forward(self, x):  # x: {_batch(graph.input_shape)}"]
    body += [f"        {line}" for line in forward_lines(graph, tree, return_all, chosen)]
    source = "\n".join(_header(graph) + body) + "\n"
    extra = (BLOCK_CLASS if tree.containers else "\n") + "\n\n" + LAYER_TREE.strip("\n") + "\n" + helpers(graph)
    if extra:
        source = source.replace("\n\n\nclass ", extra + "\n\nclass ", 1)
    ast.parse(source)  # a bug here must fail loudly, never produce a broken file
    return source


def _check_values(graph: Graph) -> None:
    """Attribute values are numbers, booleans, None, tuples of them, or enum strings (no
    quotes, no spaces); a non-finite float (``.inf`` in YAML) has no source form."""
    for node in graph.nodes:
        for key, value in node.attrs.items():
            for v in value if isinstance(value, (tuple, list)) else (value,):
                ok = (v is None or isinstance(v, (bool, int))
                      or (isinstance(v, float) and math.isfinite(v))
                      or (isinstance(v, str) and _NAME.fullmatch(v) is not None))
                if not ok:
                    raise SpecErrors([SpecError(f"`{node.name}`: attribute {key} = {value!r} cannot be "
                                                "compiled", node.pos, f"{node.path}.{key}",
                                                "use a finite number")])


def _layer_table(graph: Graph, tree: ModuleTree) -> list[str]:
    """The class's layer table and ``__repr__``: (id, None) for a layer that is a module,
    (id, "op(inputs, attrs)") for one computed by a function call in forward."""
    rows = []
    for position, node in enumerate(graph.nodes):
        previous = graph.nodes[position - 1].name if position else INPUT
        text = None if node.name in tree.leaves else _call_text(node, previous)
        rows.append(f"        ({node.name!r}, {text!r}),")
    return ["    # every layer of the spec, in order: print(model) shows them all (see _layer_tree)",
            "    _archc_layers = (", *rows, "    )", "",
            "    def __repr__(self):", "        return _layer_tree(self, self._archc_layers)", ""]


def _call_text(node, previous: str) -> str:
    """``add(layer1.0.bn2, maxpool)``, ``avgpool2d(kernel=(2, 2), ...)``: the inputs when
    there are several (or it is not ``previous``, the layer before), then the attributes.
    (The position comes from the caller's loop: ``graph.nodes.index`` compared whole nodes,
    quadratic time — 2 minutes for a 10k-node spec.)"""
    args = list(node.inputs) if node.inputs != [previous] else []
    args += [f"{k}={v!r}" for k, v in node.attrs.items()]
    return f"{node.op}({', '.join(args)})"


def _init_line(call, tree: ModuleTree) -> str:
    args = "".join(f", {k}={v!r}" for k, v in call.kwargs)
    return f"nn.init.{call.function}({tree.leaves[call.node]}.{call.tensor}{args})"


def _docstring(graph: Graph) -> list[str]:
    out = ", ".join(_shape(s) for s in graph.summary.output_shapes)
    return [f'    """Input {_batch(graph.input_shape)} -> output {out} (batch first)."""', ""]


def _variant_note(graph: Graph) -> str:
    """``; --preset resnet101 --set classes=10 (variant hash …)``: which variant of the
    file this module is (escaped like a repr: a header line never holds a line break)."""
    from archc.report import variant

    chosen = " ".join(variant.args(graph))
    return f"; {repr(chosen)[1:-1]} (variant hash {variant.variant_hash(graph)})" if chosen else ""


def _header(graph: Graph) -> list[str]:
    import archc

    s = graph.summary
    source = Path(graph.file).name if graph.file else ""
    return [
        f"# Generated by archc {archc.__version__} — edit the spec and recompile rather than this file.",
        f"# spec: {graph.name!r} from {source!r}",
        f"# spec hash: {graph.spec_hash if re.fullmatch('[0-9a-f]*', graph.spec_hash) else '?'}"
        + _variant_note(graph),
        f"# input: {_shape(graph.input_shape)}; outputs: "
        + ", ".join(f"{o!r} {_shape(graph.shape_of(o))}" for o in graph.outputs),
        f"# params: {s.total_params:,} (trainable {s.trainable_params:,}); buffers: {s.buffers:,}; "
        f"MACs: {s.macs:,}",
        "import torch",
        "from torch import nn",
        "import torch.nn.functional as F  # noqa: F401",
    ]
