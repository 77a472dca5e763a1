"""The op table's machinery: what a mapping returns, how it says no, what it may ask.

A mapping is a small function ``fn(node, ctx) -> list[Layer]`` registered for one or more
ONNX op types with :func:`maps` (archc/importers/onnx_ops.py holds them all). It reads
the node's attributes and constant inputs, and returns the archc layers that compute the
same thing, with the tensors they own under the names ``archc.build`` gives them. It
raises :class:`Unsupported` — saying what archc would need — when archc cannot express
the node; the importer collects those and writes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from archc.importers.onnx_fold import BATCH, Node
from archc.importers.onnx_read import OnnxGraph

MAPPERS: dict = {}


@dataclass
class Layer:
    """One archc layer: op, attributes (archc's names), the ONNX values it reads and the
    one it defines, the tensors it owns (state_dict suffix -> array) and a name for its id."""

    op: str
    attrs: dict
    inputs: list
    output: str
    tensors: dict = field(default_factory=dict)
    hint: str = ""
    tie: str = ""  # the output of the layer whose weight this one shares (archc's `tie:`)


class Unsupported(Exception):
    """archc cannot express a node: ``message`` says what the node does, ``need`` what archc
    would need to express it."""

    def __init__(self, message: str, need: str):
        self.message, self.need = message, need
        super().__init__(message)


def maps(*op_types: str):
    """Register a mapping for ONNX op types; one mapping per op type."""
    def register(fn):
        for op_type in op_types:
            if op_type in MAPPERS:
                raise ValueError(f"ONNX op {op_type} is mapped twice ({MAPPERS[op_type].__name__}, {fn.__name__})")
            MAPPERS[op_type] = fn
        return fn
    return register


class Context:
    """What a mapping may ask about the graph around its node."""

    def __init__(self, g: OnnxGraph, nodes: list[Node]):
        self.g = g
        self.consumers = defaultdict(list)
        for n in nodes:
            for i in n.inputs:
                self.consumers[i].append(n)
        self.skipped: set[int] = set()  # nodes a mapping took in with its own (MatMul + Add)
        self.alias: dict[str, str] = {}  # values a mapping found equal to another (a no-op reshape)

    # ---- values

    def const(self, name: str):
        """The constant tensor ``name`` (an initialiser or a folded value), or None."""
        return self.g.consts.get(name) if name else None

    def weight(self, node: Node, i: int, what: str = "weight") -> np.ndarray:
        """Input ``i`` of ``node``, which must be a constant tensor of numbers."""
        w = self.const(node.inputs[i]) if i < len(node.inputs) else None
        if w is None or w.dtype == object:
            raise Unsupported(f"its {what} ({node.inputs[i] if i < len(node.inputs) else 'missing'}) "
                              "is computed in the graph, not a constant", f"a {node.op} with a constant {what}")
        return w

    def optional(self, node: Node, i: int, what: str):
        return self.weight(node, i, what) if i < len(node.inputs) and node.inputs[i] else None

    def data(self, node: Node, i: int = 0) -> str:
        """Input ``i`` of ``node``, which must be computed from the network's input."""
        name = node.inputs[i]
        if name in self.g.consts:
            raise Unsupported(f"its input {i} ({name}) is a constant tensor",
                              "a layer that holds a constant tensor as data")
        return name

    def shape(self, name: str) -> tuple:
        """The shape of value ``name``, batch first (None where ONNX left it symbolic)."""
        shape = self.g.shapes.get(name)
        if shape is None:
            raise Unsupported(f"the shape of {name} is unknown (ONNX shape inference gave none)",
                              "a graph whose every value has an inferable shape")
        return shape

    def axis(self, node: Node, name: str, axis: int) -> int:
        """ONNX ``axis`` of value ``name`` as archc's dimension (batch excluded)."""
        rank = len(self.shape(name))
        a = axis + rank if axis < 0 else axis
        if a == 0:
            raise Unsupported("it works along the batch axis",
                              "an op that mixes the samples of a batch (archc's ops work on each sample)")
        return a - 1

    def param_hint(self, node: Node, i: int = 1) -> str:
        """A name for a layer with weights: its weight's initialiser name without the
        ``.weight`` ending (``layer1.0.conv1.weight`` -> ``layer1.0.conv1``), when the
        exporter kept the module path; else the node's output value."""
        name = node.inputs[i] if i < len(node.inputs) else ""
        for ending in (".weight", ".bias", ".scale"):
            if name.endswith(ending) and "::" not in name:
                return name[: -len(ending)]
        return node.outputs[0]

    def single_consumer(self, value: str):
        """The only node reading ``value`` (None if several or none, or it is an output)."""
        readers = self.consumers.get(value, [])
        return readers[0] if len(readers) == 1 and value not in self.g.outputs else None


def compact(values):
    """``(3, 3)`` -> 3, ``(3, 5)`` -> [3, 5]: the short form a person writes."""
    values = [int(v) for v in values]
    return values[0] if len(set(values)) == 1 else values


def as_int(v) -> int | None:
    return None if v is BATCH else int(v)
