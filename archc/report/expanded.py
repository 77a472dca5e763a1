"""`archc expand`: the resolved network as YAML, one entry per node, every attribute
evaluated and every input explicit. It is what the backends will build, and a spec again:
`archc validate` reads it, and `archc build`/`compile` of it give the same network with
the same state_dict keys (a node's dotted name is its `id`)."""

from __future__ import annotations

import yaml

from archc.ir.graph import Graph
from archc.report import variant


def _plain(v):
    """Plain YAML data (the loader's position-carrying dicts and lists, tuples -> lists)."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _input(g: Graph):
    shape = list(g.input_shape)
    if g.input_dtype == "float32" and g.input_vocab is None:
        return shape
    out = {"shape": shape, "dtype": g.input_dtype}
    if g.input_vocab is not None:
        out["vocab"] = g.input_vocab
    return out


def _network(g: Graph) -> dict:
    layers = []
    for n in g.nodes:
        body = {"id": n.name, "from": n.inputs if len(n.inputs) > 1 else n.inputs[0]}
        body.update({k: _plain(v) for k, v in n.attrs.items()})
        if not n.meta.get("trainable", True):
            body["trainable"] = False
        if "init" in n.meta:
            body["init"] = _plain(n.meta["init"])
        if "tie" in n.meta:
            body["tie"] = n.meta["tie"][0]  # the layer whose weight this one shares
        layers.append({n.op: body})
    return {"input": _input(g), "outputs": list(g.outputs), "layers": layers}


def _dump(doc: dict) -> str:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=100)


def _header(g: Graph) -> str:
    """Where the expansion came from: the file, the variant (preset, --set) and the hash."""
    return " ".join(["# expanded from", g.file, *variant.args(g), f"(spec hash {g.spec_hash})"]) + "\n"


def render(g: Graph) -> str:
    return _header(g) + _dump({"archc": 1, "name": g.name, **_network(g)})


def render_all(graphs: list[Graph]) -> str:
    """One network as `render`; several (a file's `networks:`) as one spec holding them all."""
    if len(graphs) == 1:
        return render(graphs[0])
    g = graphs[0]
    doc = {"archc": 1, "networks": {g.name: _network(g) for g in graphs}}
    return _header(g) + _dump(doc)
