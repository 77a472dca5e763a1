"""`archc expand`: the resolved network as YAML, one entry per node, every attribute
evaluated and every input explicit. It is what the backends will build."""

from __future__ import annotations

import yaml

from archc.ir.graph import Graph


def _plain(v):
    return list(v) if isinstance(v, tuple) else v


def render(g: Graph) -> str:
    layers = []
    for n in g.nodes:
        body = {"id": n.name, "from": n.inputs if len(n.inputs) > 1 else n.inputs[0]}
        body.update({k: _plain(v) for k, v in n.attrs.items()})
        if not n.meta.get("trainable", True):
            body["trainable"] = False
        layers.append({n.op: body})
    doc = {"name": g.name, "input": list(g.input_shape), "outputs": list(g.outputs), "layers": layers}
    text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=100)
    return f"# expanded from {g.file} (spec hash {g.spec_hash})\n" + text
