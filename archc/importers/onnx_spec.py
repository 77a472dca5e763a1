"""The imported network as a spec text and a state_dict.

The spec is flat — one layer per line, ``from:`` only where a layer does not read the one
above it, attributes at archc's defaults left out — so that it reads like one written by
hand, and the state_dict's keys are ``<id>.<tensor>``, the names ``archc.build`` gives.
"""

from __future__ import annotations

import yaml

from archc.importers.onnx_table import Layer
from archc.ops.registry import get_op


def _flow(value) -> str:
    """``value`` as one line of flow-style YAML (a scalar as it would sit in a list)."""
    if isinstance(value, (dict, list)):
        return yaml.safe_dump(value, default_flow_style=True, width=10**9, sort_keys=False).strip()
    return yaml.safe_dump([value], default_flow_style=True, width=10**9).strip()[1:-1]


def _attrs(layer: Layer) -> dict:
    """The attributes that differ from the op's defaults, in the op's own order."""
    op = get_op(layer.op)
    shown = {}
    for key, attr in op.attrs.items():
        if key in layer.attrs and layer.attrs[key] != attr.default:
            shown[key] = layer.attrs[key]
    return shown


def layer_lines(layers: list[Layer], ids: list[str], producer: dict, input_name: str) -> list[str]:
    lines, previous = [], input_name
    for layer, id_ in zip(layers, ids):
        entry = _attrs(layer)
        sources = [producer.get(i, "input") for i in layer.inputs]
        if sources != [producer.get(previous, "input")]:
            entry["from"] = sources[0] if len(sources) == 1 else sources
        if layer.tie:
            entry["tie"] = producer[layer.tie]
        entry["id"] = id_
        lines.append(f"  - {layer.op}: {_flow(entry)}")
        previous = layer.output
    return lines


def spec_text(name: str, header: list[str], input_shape, input_ids: bool, layers, ids, producer,
              input_name: str, outputs: list[str]) -> str:
    """The whole spec: header comments, name, input, layers, outputs when not the last."""
    shape = [int(d) for d in input_shape]
    text = [f"# {line}" for line in header]
    text += ["archc: 1", f"name: {_flow(name)}", f"description: {_flow(header[0])}",
             f"input: {_flow({'shape': shape, 'dtype': 'int64'}) if input_ids else _flow(shape)}",
             "layers:"]
    text += layer_lines(layers, ids, producer, input_name)
    out_ids = [producer.get(o, "input") for o in outputs]
    if out_ids != [ids[-1]]:
        text.append(f"outputs: {_flow(out_ids)}")
    return "\n".join(text) + "\n"


def state_dict(layers: list[Layer], ids: list[str]) -> dict:
    """``{"<id>.weight": array, ...}``: every tensor a layer owns, under archc's name."""
    return {f"{id_}.{key}": value for layer, id_ in zip(layers, ids) for key, value in layer.tensors.items()}
