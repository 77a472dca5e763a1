"""Node-by-node comparison of two analysed networks (``archc diff A B``), torch-free.

Nodes are paired in three passes, each on what the previous left unpaired:

1. **same id, same node** — the name and the signature (op, attributes, output shape,
   parameters, MACs) agree. Of these pairs, the longest chain in the same order on both
   sides (a longest increasing subsequence, as patience diff takes its unique lines) are
   the *anchors*;
2. **same structure** — between two consecutive anchors only, difflib's longest matching
   blocks over the remaining nodes' signatures, in graph order: a node renamed because a
   layer was inserted above it (vgg16's ``features.2`` is vgg16_bn's ``features.3``) still
   pairs with itself, while a layer can never pair with its look-alike thousands of
   positions away, across nodes that agree. Within a gap, a surviving id beats a
   look-alike: a structural pair whose B node has an id new to A is not taken while the A
   node's own id waits unpaired in the same gap of B, as the same op (a changed layer
   beside an inserted copy of its old self is *changed*, the copy *added*);
3. **same id** — what is left with equal names is the same layer *changed* (another op,
   attribute, shape, parameter or MAC count).

In one sentence: ids that agree in name and content, in order, fix the alignment; structure
is matched only between them; an id still on both sides is a changed layer. Unpaired nodes
of A are removed, of B added. The totals and a summary per top-level block (the first part
of a node's id: ``layer3``, ``features``) follow.

**Wiring.** The signature leaves out a node's inputs (pairing by content must survive
renamed sources), so once nodes are paired their inputs are compared *through the
pairing*: A's input names become their B partners' names. An added or removed node is
looked through: an unpaired node stands for the one paired node (or the network input)
that all its inputs lead back to through other unpaired nodes, so a batch norm inserted
before a ReLU leaves the ReLU's input what it was, and so do 17 bottlenecks inserted before
a stage (their residual adds all lead back to the block before them). An unpaired node whose
inputs lead back to several places (a new skip connection) stands for itself, and a paired
node that reads it has changed. Order counts, except for ``add`` and ``multiply``, which
commute. A pair whose inputs differ is **changed**, with the field ``inputs`` — also when
its ids differ and its signature agrees: it would otherwise be *renamed*, which says "the
same layer under another id", and a layer fed from elsewhere is not that (the table's
``changed a -> b`` still shows the new id). The networks' outputs are compared the same
way; when they differ, ``Diff.outputs`` holds both lists and the networks are not
identical.
"""

from __future__ import annotations

import bisect
import difflib
from dataclasses import dataclass, field

from archc.ir.graph import INPUT, Graph, Node

FIELDS = ("op", "attrs", "shape", "params", "macs")  # the signature's; "inputs" is compared apart
COMMUTATIVE = {"add", "multiply"}  # ops whose inputs may be written in any order


def _attrs(node: Node) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(node.attrs.items())}


def signature(node: Node) -> tuple:
    """What a node is, less its id: (op, attributes, output shape, parameters, MACs), hashable
    for difflib; a list attribute equals the tuple of its items, as in values(). The counts
    tell apart look-alikes on inputs of another width (vgg's 64 -> 128 and 128 -> 128 convs)."""
    attrs = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in node.attrs.items()))
    try:
        hash(attrs)
    except TypeError:  # a nested list or dict: compared by its text
        attrs = repr(_attrs(node))
    shape = node.meta.get("shape")
    return (node.op, attrs, tuple(shape) if shape is not None else None, node.meta.get("params"),
            node.meta.get("macs"))


def values(node: Node) -> dict:
    shape = node.meta.get("shape")
    return {"op": node.op, "attrs": _attrs(node), "shape": list(shape) if shape is not None else None,
            "params": node.meta.get("params"), "macs": node.meta.get("macs"), "inputs": list(node.inputs)}


@dataclass
class Change:
    a: Node
    b: Node
    fields: list  # which of FIELDS differ, then "inputs" when the wiring does


@dataclass
class Diff:
    a: Graph
    b: Graph
    same: list = field(default_factory=list)  # (a, b) pairs, equal and fed alike (ids may differ)
    changed: list = field(default_factory=list)  # Change
    removed: list = field(default_factory=list)  # nodes of A only
    added: list = field(default_factory=list)  # nodes of B only
    outputs: tuple | None = None  # (A's outputs, B's), by their own ids, when they differ
    checkpoint: dict | None = None  # archc.report.diff.checkpoint_fit's answer, when asked

    @property
    def renamed(self) -> list:
        return [(x, y) for x, y in self.same if x.name != y.name]

    @property
    def identical(self) -> bool:
        return not (self.changed or self.removed or self.added or self.renamed or self.outputs)


def _increasing(js: list[int]) -> list[int]:
    """Indices of a longest strictly increasing subsequence of ``js`` (patience sorting,
    O(n log n): a 10k-node pair has 10k candidates)."""
    tails: list[int] = []  # tails[k]: the smallest last value of an increasing run of length k + 1
    ends: list[int] = []  # ends[k]: its index in js
    back = [-1] * len(js)  # the index before i in the best run ending at i
    for i, j in enumerate(js):
        k = bisect.bisect_left(tails, j)
        back[i] = ends[k - 1] if k else -1
        if k == len(tails):
            tails.append(j)
            ends.append(i)
        else:
            tails[k], ends[k] = j, i
    out, i = [], ends[-1] if ends else -1
    while i >= 0:
        out.append(i)
        i = back[i]
    return out[::-1]


def _gaps(match: list[int], taken: list[bool], anchors: list[tuple[int, int]]):
    """Positions of the unpaired nodes of A and of B between consecutive anchors (i, j),
    where both sides have some."""
    bounds = [(-1, -1), *anchors, (len(match), len(taken))]
    for (i0, j0), (i1, j1) in zip(bounds, bounds[1:]):
        if i1 - i0 > 1 and j1 - j0 > 1:  # most anchors follow each other on both sides
            ga = [i for i in range(i0 + 1, i1) if match[i] < 0]
            gb = [j for j in range(j0 + 1, j1) if not taken[j]]
            if ga and gb:
                yield ga, gb


def _pair(a: list[Node], b: list[Node], sa: list, sb: list) -> list[int]:
    """The three passes of the module doc: for each node of ``a`` its partner's position
    in ``b``, or -1. ``sa``, ``sb``: the nodes' signatures."""
    b_at = {m.name: j for j, m in enumerate(b)}
    a_names = {n.name for n in a}
    match, taken = [-1] * len(a), [False] * len(b)
    same_id = []  # 1. same id, same node: (position in a, position in b)
    for i, n in enumerate(a):
        j = b_at.get(n.name)
        if j is not None and sb[j] == sa[i]:
            match[i], taken[j] = j, True
            same_id.append((i, j))
    anchors = [same_id[k] for k in _increasing([j for _, j in same_id])]
    for ga, gb in _gaps(match, taken, anchors):  # 2. same structure, between consecutive anchors only
        blocks = difflib.SequenceMatcher(None, [sa[i] for i in ga], [sb[j] for j in gb],
                                         autojunk=False).get_matching_blocks()
        structural = [(ga[x + k], gb[y + k]) for x, y, size in blocks for k in range(size)]
        waiting = set(gb) - {j for _, j in structural}  # B's nodes of this gap no structure pair takes
        for i, j in structural:  # a[i]'s own id, waiting in this gap as the same op, beats a new id
            own = b_at.get(a[i].name)
            if b[j].name not in a_names and own in waiting and b[own].op == a[i].op:
                continue
            match[i], taken[j] = j, True
    for i, n in enumerate(a):  # 3. same id, changed
        j = b_at.get(n.name)
        if match[i] < 0 and j is not None and not taken[j]:
            match[i], taken[j] = j, True
    return match


def _stand_ins(unpaired: list[Node], renamed: dict, side: str) -> dict:
    """The names of one side that stand for another B name than their own: ``renamed``
    (A's paired nodes whose partner has another id: that id), then each unpaired node, in
    topological order: what all its inputs stand for when that is one B name (or the
    input), else itself as ``(side, name)``, which equals nothing on the other side. Any
    name not in the answer stands for itself (a node paired with its own id, the input)."""
    to = dict(renamed)
    for n in unpaired:
        ends = {to.get(x, x) for x in n.inputs}
        one = next(iter(ends)) if len(ends) == 1 else None
        to[n.name] = one if isinstance(one, str) else (side, n.name)
    return to


def _fed_alike(na: Node, nb: Node, a_to: dict, b_to: dict) -> bool:
    """Whether paired ``na`` and ``nb`` read the same nodes, A's named in B's terms."""
    ia, ib = [a_to.get(x, x) for x in na.inputs], [b_to.get(y, y) for y in nb.inputs]
    return ia == ib or (na.op in COMMUTATIVE and sorted(ia, key=repr) == sorted(ib, key=repr))


def diff(a: Graph, b: Graph) -> Diff:
    """Pair the nodes of ``a`` and ``b`` (see the module doc) and classify them."""
    d = Diff(a, b)
    sa = [signature(n) for n in a.nodes]  # each node's once (10k-node specs)
    sb = [signature(m) for m in b.nodes]
    match = _pair(a.nodes, b.nodes, sa, sb)
    renamed = {}
    for i, j in enumerate(match):
        if j < 0:
            d.removed.append(a.nodes[i])
        elif a.nodes[i].name != b.nodes[j].name:
            renamed[a.nodes[i].name] = b.nodes[j].name
    paired = set(match)
    d.added = [m for j, m in enumerate(b.nodes) if j not in paired]
    a_to = _stand_ins(d.removed, renamed, "removed")  # A's names in B's terms, where not their own
    b_to = _stand_ins(d.added, {}, "added")
    moved = a_to.keys() | b_to.keys()
    for i, j in enumerate(match):
        if j < 0:
            continue
        n, m = a.nodes[i], b.nodes[j]
        if sa[i] == sb[j]:  # op, attributes, shape and counts agree
            fields = []
        else:
            va, vb = values(n), values(m)
            fields = [f for f in FIELDS if va[f] != vb[f]]
        if not (n.inputs == m.inputs and moved.isdisjoint(n.inputs)) and not _fed_alike(n, m, a_to, b_to):
            fields.append("inputs")  # (the first test spares most pairs any lookup)
        (d.changed.append(Change(n, m, fields)) if fields else d.same.append((n, m)))
    if [a_to.get(x, x) for x in a.outputs] != [b_to.get(y, y) for y in b.outputs]:
        d.outputs = (list(a.outputs), list(b.outputs))
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
