"""Give the exported graph archc's names: each ONNX value that carries a spec node's result
is renamed after that node (``layer1.0.relu_2``), each ONNX node after the spec node it
computes (``layer1.0.conv2d_1/Conv``).

How a value is traced back to its spec node: the dynamo exporter records, on every ONNX
node, the Python stack of the call that made it; the innermost frame in the generated
module's ``forward`` gives a line number, and the code generator writes one line per
computing spec node, in graph order (archc/backends/torch/codegen.py). A spec node's
value is the one output of its ONNX nodes that something outside them reads (or that is a
graph output). Spec nodes the exporter folded away (a batch norm fused into the preceding
convolution carries the norm's line; the convolution has none) or that only alias their
input (identity) keep no value of their own, and are not named.

Afterwards the recorded stacks, which hold local file paths, are dropped from the file.
"""

from __future__ import annotations

import re
from collections import defaultdict

STACK_KEY = "pkg.torch.onnx.stack_trace"
_FRAME = re.compile(r'File "<archc:[^"]*>", line (\d+), in forward')


def forward_line_nodes(graph, source: str) -> dict[int, str]:
    """1-based line number in ``source`` -> the spec node that line computes."""
    from archc.backends.torch.codegen import value_flow  # the generator's own notion of "computes"

    _, _, real = value_flow(graph)
    computing = [n.name for n in graph.nodes if n.name in real]
    lines = source.splitlines()
    # the network's forward is the last one: helper classes (attention, layer scale) come first
    start = max(i for i, text in enumerate(lines) if text.lstrip().startswith("def forward(")) + 1
    body = lines[start:start + len(computing)]
    if len(body) != len(computing) or any(text.strip().startswith("return") for text in body):
        return {}  # not the layout this module knows: name nothing rather than misname
    return {start + 1 + k: name for k, name in enumerate(computing)}


def spec_node_of(node, lines: dict[int, str]) -> str | None:
    """The spec node an ONNX node was made for (its innermost generated-forward frame)."""
    for prop in node.metadata_props:
        if prop.key == STACK_KEY:
            # the innermost frame of the network's forward; a helper's forward (inside it) maps to nothing
            found = [lines[int(n)] for n in _FRAME.findall(prop.value) if int(n) in lines]
            return found[-1] if found else None
    return None


def value_names(model, lines: dict[int, str]) -> dict[str, str]:
    """ONNX value name -> spec node name, for every spec node whose value can be found."""
    g = model.graph
    owner = {}  # ONNX node index -> spec node
    for i, node in enumerate(g.node):
        name = spec_node_of(node, lines)
        if name:
            owner[i] = name
    readers = defaultdict(set)  # value -> spec nodes (or None) of the ONNX nodes reading it
    for i, node in enumerate(g.node):
        for v in node.input:
            readers[v].add(owner.get(i))
    outputs = {o.name for o in g.output}
    found = defaultdict(set)
    for i, name in owner.items():
        for v in g.node[i].output:
            if v in outputs or readers[v] - {name}:
                found[name].add(v)
    return {next(iter(vs)): name for name, vs in found.items() if len(vs) == 1}


def rename(model, lines: dict[int, str]) -> dict[str, str]:
    """Rename values and nodes of ``model`` (in place) after the spec and drop the recorded
    stacks. Returns spec node -> the name of its value in the file (for the shape check)."""
    g = model.graph
    found = value_names(model, lines)
    outputs = {o.name for o in g.output}
    taken = ({v.name for v in g.input} | outputs | {t.name for t in g.initializer}
             | {o for n in g.node for o in n.output})
    fixed = {v.name for v in g.input} | outputs | {t.name for t in g.initializer}
    new = {old: old if old in outputs or spec in fixed else spec for old, spec in found.items()}
    wanted = set(new.values()) - set(new)
    for value in {o for n in g.node for o in n.output} - set(new) - fixed:
        if value in wanted:  # an exporter name (``relu_1``) that a spec node's value takes
            new[value] = _fresh(value, taken | wanted)
            taken.add(new[value])
    _apply(g, {k: v for k, v in new.items() if k != v})
    _name_nodes(g, lines)
    return {spec: new[old] for old, spec in found.items()}


def _fresh(name: str, taken: set) -> str:
    k = 1
    while f"{name}_{k}" in taken:
        k += 1
    return f"{name}_{k}"


def _apply(g, new: dict[str, str]) -> None:
    for node in g.node:
        node.input[:] = [new.get(v, v) for v in node.input]
        node.output[:] = [new.get(v, v) for v in node.output]
    for info in g.value_info:
        info.name = new.get(info.name, info.name)


def _name_nodes(g, lines: dict[int, str]) -> None:
    """``layer1.0.conv2d_1/Conv`` (``…/Conv_2`` for a second one); stacks dropped."""
    used = set()
    for node in g.node:
        spec = spec_node_of(node, lines)
        if spec:
            base = f"{spec}/{node.op_type}"
            name, k = base, 1
            while name in used:
                k += 1
                name = f"{base}_{k}"
            node.name = name
        used.add(node.name)
        del node.metadata_props[:]
