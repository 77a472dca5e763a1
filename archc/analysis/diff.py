"""Node-by-node comparison of two analysed networks (``archc diff A B``), torch-free.

Nodes are paired in three passes, each on what the previous left unpaired:

1. **same id, same node** — the name and the signature (op, attributes, output shape) agree;
2. **same structure** — difflib's longest matching blocks over the remaining nodes' signatures,
   in graph order: a node renamed because a layer was inserted above it (vgg16's
   ``features.2`` is vgg16_bn's ``features.3``) still pairs with itself;
3. **same id** — what is left with equal names is the same layer *changed* (another op,
   attribute, shape, parameter or MAC count).

Unpaired nodes of A are removed, of B added. The totals and a summary per top-level block
(the first part of a node's id: ``layer3``, ``features``) follow.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from archc.ir.graph import Graph, Node

FIELDS = ("op", "attrs", "shape", "params", "macs")


def _attrs(node: Node) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(node.attrs.items())}


def signature(node: Node) -> tuple:
    shape = node.meta.get("shape")
    return node.op, repr(_attrs(node)), tuple(shape) if shape is not None else None


def values(node: Node) -> dict:
    shape = node.meta.get("shape")
    return {"op": node.op, "attrs": _attrs(node), "shape": list(shape) if shape is not None else None,
            "params": node.meta.get("params"), "macs": node.meta.get("macs")}


@dataclass
class Change:
    a: Node
    b: Node
    fields: list  # which of FIELDS differ


@dataclass
class Diff:
    a: Graph
    b: Graph
    same: list = field(default_factory=list)  # (a, b) pairs, equal (ids may differ)
    changed: list = field(default_factory=list)  # Change
    removed: list = field(default_factory=list)  # nodes of A only
    added: list = field(default_factory=list)  # nodes of B only
    checkpoint: dict | None = None  # archc.report.diff.checkpoint_fit's answer, when asked

    @property
    def renamed(self) -> list:
        return [(x, y) for x, y in self.same if x.name != y.name]

    @property
    def identical(self) -> bool:
        return not (self.changed or self.removed or self.added or self.renamed)


def diff(a: Graph, b: Graph) -> Diff:
    """Pair the nodes of ``a`` and ``b`` (see the module doc) and classify them."""
    d = Diff(a, b)
    b_by_name = {n.name: n for n in b.nodes}
    sig = {id(n): signature(n) for g in (a, b) for n in g.nodes}  # each node's once (10k-node specs)
    pairs: dict[int, Node] = {}  # id(node of a) -> node of b
    taken: set[int] = set()
    for n in a.nodes:  # 1. same id, same node
        m = b_by_name.get(n.name)
        if m is not None and sig[id(m)] == sig[id(n)]:
            pairs[id(n)] = m
            taken.add(id(m))
    rest_a = [n for n in a.nodes if id(n) not in pairs]
    rest_b = [m for m in b.nodes if id(m) not in taken]
    matcher = difflib.SequenceMatcher(None, [sig[id(n)] for n in rest_a], [sig[id(m)] for m in rest_b],
                                      autojunk=False)
    for i, j, size in matcher.get_matching_blocks():  # 2. same structure
        for k in range(size):
            pairs[id(rest_a[i + k])] = rest_b[j + k]
            taken.add(id(rest_b[j + k]))
    for n in a.nodes:  # 3. same id, changed
        m = b_by_name.get(n.name)
        if id(n) not in pairs and m is not None and id(m) not in taken:
            pairs[id(n)] = m
            taken.add(id(m))
    for n in a.nodes:
        m = pairs.get(id(n))
        if m is None:
            d.removed.append(n)
            continue
        if sig[id(n)] == sig[id(m)]:  # op, attributes and shape agree: only the counts may differ
            fields = [f for f in ("params", "macs") if n.meta.get(f) != m.meta.get(f)]
        else:
            va, vb = values(n), values(m)
            fields = [f for f in FIELDS if va[f] != vb[f]]
        (d.changed.append(Change(n, m, fields)) if fields else d.same.append((n, m)))
    d.added = [m for m in b.nodes if id(m) not in taken]
    return d


def block_of(node: Node) -> str:
    return node.name.split(".", 1)[0]


def blocks(d: Diff) -> list[dict]:
    """Per top-level block: nodes added, removed, changed, and the parameter and MAC deltas."""
    rows: dict[str, dict] = {}

    def row(node):
        return rows.setdefault(block_of(node), {"block": block_of(node), "added": 0, "removed": 0,
                                                "changed": 0, "params": 0, "macs": 0})

    for n in d.removed:
        r = row(n)
        r["removed"] += 1
        r["params"] -= n.meta.get("params") or 0
        r["macs"] -= n.meta.get("macs") or 0
    for m in d.added:
        r = row(m)
        r["added"] += 1
        r["params"] += m.meta.get("params") or 0
        r["macs"] += m.meta.get("macs") or 0
    for c in d.changed:
        r = row(c.b)
        r["changed"] += 1
        r["params"] += (c.b.meta.get("params") or 0) - (c.a.meta.get("params") or 0)
        r["macs"] += (c.b.meta.get("macs") or 0) - (c.a.meta.get("macs") or 0)
    return list(rows.values())


def totals(d: Diff) -> list[tuple]:
    """(name, A, B) of the summary figures."""
    sa, sb = d.a.summary, d.b.summary
    return [("params", sa.total_params, sb.total_params), ("buffers", sa.buffers, sb.buffers),
            ("MACs", sa.macs, sb.macs), ("nodes", len(d.a.nodes), len(d.b.nodes))]
