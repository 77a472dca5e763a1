"""A format-neutral view of an analysed graph for drawing: block instances as a tree,
the text of every box, and the boxes and edges left visible when blocks deeper than
``depth`` are collapsed into one box each.

Every number here is written by archc/report/numbers.py from ``node.meta`` and
``graph.summary`` — the same source as the table and ``validate --format markdown`` — so
a picture can never disagree with the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archc.ir.graph import INPUT, Graph, Node
from archc.report import numbers as N

UNLIMITED = 10**6  # a depth that expands every block


@dataclass
class Instance:
    """One block instance (a ResNet stage, an Inception module): a scope of the IR."""

    id: str  # the dotted scope: "layer2.basic_1.0"
    label: str  # its last part: "basic_1.0"
    block: str  # the template: "basic"
    parent: str | None
    depth: int  # 1 for an instance at the top level of the network
    nodes: list[str] = field(default_factory=list)  # every node inside, nested ones too


@dataclass
class Box:
    """A drawn box: a layer, or a collapsed block instance."""

    id: str
    lines: list[str]  # title, op, output shape, params
    cluster: str | None  # the innermost expanded instance around it
    is_block: bool = False


def instance_ids(node: Node) -> list[str]:
    """The ids of the instances around ``node``, outermost first."""
    return [".".join(node.scope[: k + 1]) for k in range(len(node.scope))]


def instances(g: Graph) -> dict[str, Instance]:
    """Every block instance of ``g``, in the order it first appears."""
    out: dict[str, Instance] = {}
    for n in g.nodes:
        parent = None
        for k, iid in enumerate(instance_ids(n)):
            if iid not in out:
                out[iid] = Instance(iid, n.scope[k], n.blocks[k], parent, k + 1)
            out[iid].nodes.append(n.name)
            parent = iid
    return out


def macs_cell(macs) -> str:
    """MACs as the table and markdown show them: blank for 0, '?' for unknown."""
    return N.si(macs) if macs else ("" if macs == 0 else N.UNKNOWN)


def _total(values):
    values = list(values)
    return None if any(v is None for v in values) else sum(values)


def node_cells(n: Node) -> dict:
    """The formatted numbers of one layer (the markdown row's cells)."""
    m = n.meta
    return {"shape": N.shape(m.get("shape")), "params": N.count(m.get("params")),
            "macs": macs_cell(m.get("macs")), "rf": N.rf(m.get("rf"))}


def instance_cells(g: Graph, inst: Instance) -> dict:
    """A collapsed instance's numbers: sums over its layers, the shape of its last layer."""
    members = [g.node(name) for name in inst.nodes]
    return {"shape": N.shape(members[-1].meta.get("shape")),
            "params": N.count(_total(m.meta.get("params") for m in members)),
            "macs": macs_cell(_total(m.meta.get("macs") for m in members)),
            "layers": len(members)}


def owner(node: Node, depth: int) -> str:
    """The id of the box that shows ``node`` when instances deeper than ``depth`` collapse."""
    ids = instance_ids(node)
    return ids[depth] if len(ids) > depth else node.name


def boxes(g: Graph, depth: int) -> list[Box]:
    """The visible boxes in topological order: the network input first."""
    insts = instances(g)
    out = [Box(INPUT, [INPUT, N.shape(g.input_shape)], None)]
    seen = {INPUT}
    for n in g.nodes:
        bid = owner(n, depth)
        if bid in seen:
            continue
        seen.add(bid)
        ids = instance_ids(n)[:depth]
        cluster = ids[-1] if ids else None
        if bid == n.name:
            c = node_cells(n)
            out.append(Box(bid, [n.local_name, n.op, c["shape"], f"params {c['params']}"], cluster))
        else:
            inst, c = insts[bid], instance_cells(g, insts[bid])
            lines = [inst.label, f"{inst.block} ×{c['layers']} layers", c["shape"],
                     f"params {c['params']}"]
            out.append(Box(bid, lines, insts[bid].parent, is_block=True))
    return out


def edges(g: Graph, depth: int) -> list[tuple[str, str]]:
    """Edges between visible boxes, without duplicates or edges inside a collapsed box."""
    owners = {INPUT: INPUT} | {n.name: owner(n, depth) for n in g.nodes}
    out: dict[tuple[str, str], None] = {}
    for n in g.nodes:
        for src in n.inputs:
            pair = (owners[src], owners[n.name])
            if pair[0] != pair[1]:
                out[pair] = None
    return list(out)


def expanded_instances(g: Graph, depth: int) -> list[Instance]:
    """The instances drawn as open clusters (their own depth within ``depth``)."""
    return [i for i in instances(g).values() if i.depth <= depth]


def tree(g: Graph, depth: int) -> tuple[dict, dict]:
    """The drawing as nested frames: ({cluster id or None: its boxes},
    {cluster id or None: the open instances directly inside it})."""
    members: dict[str | None, list[Box]] = {}
    for b in boxes(g, depth):
        members.setdefault(b.cluster, []).append(b)
    children: dict[str | None, list[Instance]] = {}
    for inst in expanded_instances(g, depth):
        children.setdefault(inst.parent, []).append(inst)
    return members, children


def skip_edges(g: Graph, depth: int) -> set[tuple[str, str]]:
    """Edges that jump over at least one level of the drawing (a ResNet shortcut, a U-Net
    skip, a short Inception branch): levels are longest-path levels of the visible boxes,
    the rule the HTML page's script applies too."""
    pairs = edges(g, depth)
    incoming: dict[str, list[str]] = {}
    for a, b in pairs:
        incoming.setdefault(b, []).append(a)
    level: dict[str, int] = {}
    for box in boxes(g, depth):  # topological order
        level[box.id] = max((level.get(a, 0) + 1 for a in incoming.get(box.id, [])), default=0)
    return {(a, b) for a, b in pairs if level[b] - level.get(a, 0) > 1}
