"""The graph IR: a small, closed data structure between the spec and the backends.

A :class:`Graph` is a list of :class:`Node` in topological order. A node has an op kind,
its evaluated attributes, the names of its inputs, where it came from in the YAML and a
``meta`` dict that analyses fill (``shape``, ``params``, ``macs``, ``rf``, ...), as
torch.fx's shape propagation fills ``node.meta``. Backends see only this, never YAML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from archc.errors import Pos

INPUT = "input"  # the name of the network input in node inputs
_PART = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$|^[0-9]+$")


@dataclass
class Node:
    name: str  # unique dotted path: "layer2.basic_1.conv2d_1"
    op: str
    attrs: dict
    inputs: list[str]
    pos: Pos | None = None
    path: str = ""  # the spec path, e.g. "layers[4].basic > layers[0].conv2d"
    scope: tuple = ()  # block instances around the node, outermost first: ("layer2", "basic_1")
    blocks: tuple = ()  # the template names of those instances: ("stage", "basic")
    meta: dict = field(default_factory=dict)

    @property
    def local_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]


@dataclass
class Graph:
    name: str
    input_shape: tuple
    nodes: list[Node]
    outputs: list[str]
    file: str = ""
    spec_hash: str = ""
    train: dict | None = None
    vars: dict = field(default_factory=dict)
    summary: object = None  # archc.analysis.analyse.Summary, once analysed
    input_dtype: str = "float32"  # "int64" for token ids
    input_vocab: int | None = None  # token ids lie in [0, input_vocab)
    preset: str | None = None  # the variant: the --preset chosen and the --set overrides
    overrides: dict = field(default_factory=dict)  # (archc/report/variant.py names it)

    def node(self, name: str) -> Node:
        """The node called ``name``; O(1) through a name -> position index that is
        rebuilt only when ``nodes`` changed (so a pass over every node stays linear)."""
        index = self._index()
        i = index.get(name)
        if i is None or i >= len(self.nodes) or self.nodes[i].name != name:
            index = self._index(rebuild=True)
            i = index[name]  # KeyError for an unknown name, as before
        return self.nodes[i]

    def _index(self, rebuild: bool = False) -> dict[str, int]:
        cached = self.__dict__.get("_positions")
        if rebuild or cached is None or cached[0] is not self.nodes or cached[1] != len(self.nodes):
            cached = (self.nodes, len(self.nodes), {n.name: i for i, n in enumerate(self.nodes)})
            self.__dict__["_positions"] = cached
        return cached[2]

    def shape_of(self, name: str):
        return self.input_shape if name == INPUT else self.node(name).meta.get("shape")

    def dtype_of(self, name: str) -> str | None:
        return self.input_dtype if name == INPUT else self.node(name).meta.get("dtype")

    def id_limit(self) -> int:
        """How many distinct token ids the input may hold: the declared vocabulary, else the
        fewest rows of an embedding reading it (example inputs are drawn below it)."""
        if self.input_vocab:
            return self.input_vocab
        from archc.ops.registry import get_op

        limits = [get_op(n.op).id_limit(n.attrs) for n in self.nodes if INPUT in n.inputs]
        return min([v for v in limits if v] or [2])

    def lint(self) -> list[str]:
        """The IR's invariants: unique names made of identifier parts, inputs defined
        before use (topological order), outputs that exist. Returns the violations."""
        problems, seen = [], {INPUT}
        for n in self.nodes:
            if n.name in seen:
                problems.append(f"duplicate node name {n.name!r}")
            if not all(_PART.fullmatch(p) for p in n.name.split(".")):
                problems.append(f"node name {n.name!r} is not dotted identifiers")
            for i in n.inputs:
                if i not in seen:
                    problems.append(f"{n.name!r} reads {i!r} before it is defined")
            seen.add(n.name)
        problems += [f"output {o!r} is not a node" for o in self.outputs if o not in seen]
        return problems
