"""The JSON report: archc's machine contract (docs/json.md), versioned by ``format``.

Shapes exclude the batch dimension. Unknown counts are ``null``, never 0."""

from __future__ import annotations

import json

from archc.analysis.lint import lint
from archc.gcpause import gc_paused
from archc.ir.graph import Graph
from archc.report import variant
from archc.report.errors_json import error_dict

FORMAT = "archc.report/1"


def graph_dict(g: Graph) -> dict:
    s = g.summary
    outs = [list(x) if x is not None else None for x in s.output_shapes]
    return {
        "name": g.name,
        "file": g.file,
        "spec_hash": g.spec_hash,
        "preset": g.preset,
        "overrides": variant.overrides_json(g),
        "variant_hash": variant.variant_hash(g),
        "input_shape": list(g.input_shape),
        "input_dtype": g.input_dtype,
        "output_shape": outs[0] if len(outs) == 1 else None,
        "outputs": [{"id": o, "shape": sh} for o, sh in zip(g.outputs, outs)],
        "total_params": s.total_params,
        "trainable_params": s.trainable_params,
        "non_trainable": s.non_trainable,
        "frozen_params": s.frozen_params,
        "buffers": s.buffers,
        "macs": s.macs,
        "weight_bytes": s.weight_bytes,
        "activation_bytes": s.activation_bytes,
        "layers": [{
            "id": n.name,
            "op": n.op,
            "inputs": n.inputs,
            "output_shape": list(n.meta["shape"]) if n.meta.get("shape") is not None else None,
            "dtype": n.meta.get("dtype"),
            "tied_to": n.meta["tie"][0] if "tie" in n.meta else None,
            "params": n.meta["params"],
            "trainable": n.meta.get("trainable", True),
            "buffers": n.meta["buffers"],
            "macs": n.meta["macs"],
            "activation_bytes": n.meta["activation_bytes"],
            "receptive_field": n.meta["rf"].as_json() if n.meta.get("rf") else None,
            "attrs": {k: list(v) if isinstance(v, tuple) else v for k, v in n.attrs.items()},
            "block": ".".join(n.scope) or None,
            "source": {"file": n.pos.file, "line": n.pos.line, "col": n.pos.col} if n.pos else None,
        } for n in g.nodes],
        # lint findings, info notes included (docs/spec.md#warnings); never errors here
        "diagnostics": [error_dict(f, g.file) for f in lint(g)],
    }


@gc_paused
def render(graphs: list[Graph]) -> str:
    """The report as JSON text: one key per line, one layer per line.

    ``json.dumps(indent=2)`` runs the pure-Python encoder and takes about half a second
    for 10,000 layers; objects below the top level are written by the C encoder instead,
    which keeps the text diffable (a changed layer is a changed line) and 10× faster."""
    if len(graphs) == 1:
        body = {"format": FORMAT, **graph_dict(graphs[0])}
    else:
        body = {"format": FORMAT, "networks": [graph_dict(g) for g in graphs]}
    return _object(body, "")


def _object(d: dict, pad: str) -> str:
    inner = pad + "  "
    items = [f"{inner}{json.dumps(k)}: {_value(k, v, inner)}" for k, v in d.items()]
    return "{\n" + ",\n".join(items) + "\n" + pad + "}"


def _value(key: str, value, pad: str) -> str:
    if key in ("layers", "networks") and isinstance(value, list) and value:
        inner = pad + "  "
        one = (lambda v: _object(v, inner)) if key == "networks" else json.dumps
        return "[\n" + ",\n".join(inner + one(v) for v in value) + "\n" + pad + "]"
    return json.dumps(value)
