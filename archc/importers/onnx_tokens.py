"""ViT's class token recovered from an exported graph.

``torch.cat([token.expand(B, -1, -1), x], dim=1)`` exports as an Expand of the constant
token [1, 1, D] to the batch and a Concat along the sequence axis. archc's ``class_token``
layer does both, owning the token. :func:`recognise` replaces the pair by one node placed
where the Concat is (the tokens ``x`` are defined before it, whatever the exporter's order).
"""

from __future__ import annotations

from collections import defaultdict

from archc.importers.onnx_fold import Node
from archc.importers.onnx_table import Layer, maps

FUSED = "archc.class_token"  # the op type of a recognised class token: never an ONNX op type


def recognise(g, nodes: list[Node]) -> list[Node]:
    """``nodes`` with each Expand-then-Concat of a constant [1, 1, D] token made one node."""
    readers = defaultdict(list)
    for n in nodes:
        for i in n.inputs:
            readers[i].append(n)
    replace, dropped = {}, set()
    for n in nodes:
        token = g.consts.get(n.inputs[0]) if n.op == "Expand" else None
        if token is None or token.dtype.kind != "f" or token.ndim != 3 or token.shape[:2] != (1, 1):
            continue
        cat = readers[n.outputs[0]][0] if len(readers[n.outputs[0]]) == 1 else None
        if n.outputs[0] in g.outputs or cat is None or cat.op != "Concat" or len(cat.inputs) != 2 \
                or cat.inputs[0] != n.outputs[0] or cat.attrs.get("axis") not in (1, -2):
            continue
        shape, joined = g.shapes.get(cat.inputs[1]), g.shapes.get(cat.outputs[0])
        if shape is None or len(shape) != 3 or shape[2] != token.shape[2]:
            continue
        if joined and None not in (joined[1], shape[1]) and joined[1] != shape[1] + 1:
            continue  # the token expanded along the sequence too: several tokens, not one
        replace[id(cat)] = Node(FUSED, cat.name, [cat.inputs[1]], list(cat.outputs),
                                {"weight": token, "hint": n.inputs[0]})
        dropped.add(id(n))
    return [replace.get(id(n), n) for n in nodes if id(n) not in dropped]


@maps(FUSED)
def class_token(node, ctx):
    hint = node.attrs["hint"]
    hint = hint[: -len(".weight")] if hint.endswith(".weight") and "::" not in hint else node.outputs[0]
    return [Layer("class_token", {}, [ctx.data(node)], node.outputs[0], {"weight": node.attrs["weight"]}, hint)]
