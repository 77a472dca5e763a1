"""The importers' last check: the weights about to be written are the spec's own tensors.

An importer writes a spec and a weights file that must pair: ``archc.build(spec)`` then
``archc.load_weights(module, weights)``. Every tensor an op mapping produces is named and
shaped by that mapping, while the spec's tensors follow from its layers' attributes (each
op's ``state``, archc/ops/registry.py); a mapping that gets one wrong (an LSTM whose gates
were sized from another dimension) would only be found when the file is loaded. So both
importers compare, before writing anything, the weights with the spec's static state_dict
(:func:`archc.backends.torch.state.state_dict_shapes`, torch-free): every key present, no
other key, the same shape, floating point. A mismatch is the importer's bug, said as such.

BatchNorm's ``num_batches_tracked`` counter is a step count, not a weight: ONNX does not
keep it, ``archc.load_weights`` keeps the module's own when the file lacks it, and torch
stores it as an int64. It may be absent, and is an integer when present.

>>> import archc, numpy as np
>>> g = archc.loads("archc: 1\\ninput: [4]\\nlayers:\\n  - linear: {out: 2, id: fc}\\n")
>>> check_weights(g, {"fc.weight": np.zeros((2, 4), np.float32), "fc.bias": np.zeros(2, np.float32)},
...               Pos("m.onnx"), "a bug")
>>> try:
...     check_weights(g, {"fc.weight": np.zeros((4, 2), np.float32)}, Pos("m.onnx"), "a bug")
... except SpecErrors as exc:
...     print("\\n".join(e.message for e in exc.errors))
layer fc (linear): its weight is written with shape [4, 2] where the spec's layer holds [2, 4]
layer fc (linear): its bias [2] is not written
"""

from __future__ import annotations

from archc.backends.torch.state import state_dict_shapes
from archc.errors import Pos, SpecError, SpecErrors

COUNTER = "num_batches_tracked"  # BatchNorm's step count (archc/backends/torch/weights.py)


def check_weights(graph, weights: dict, where: Pos, fix: str) -> None:
    """Raise SpecErrors, one error per wrong tensor, unless ``weights`` (name -> numpy
    array or torch tensor) holds exactly the tensors of ``archc.build(graph)``'s
    state_dict with their shapes. ``fix`` ends each error (the importer's "a bug" line)."""
    expected = state_dict_shapes(graph)
    owner = _owners(graph)
    errors = []
    for key, want in expected.items():
        layer, tensor = _split(key, owner)
        value = weights.get(key)
        if value is None:
            if tensor != COUNTER:
                errors.append(_error(layer, graph, f"its {tensor} {_shape(want)} is not written", where, fix))
        elif tuple(value.shape) != want:
            errors.append(_error(layer, graph, f"its {tensor} is written with shape {_shape(value.shape)} "
                                 f"where the spec's layer holds {_shape(want)}", where, fix))
        elif _floating(value) == (tensor == COUNTER):
            kind = "an integer" if tensor == COUNTER else "a floating-point"
            errors.append(_error(layer, graph, f"its {tensor} is written as {value.dtype}, not {kind} tensor",
                                 where, fix))
    for key in [k for k in weights if k not in expected]:  # in the importer's order
        layer, tensor = _split(key, owner)
        if layer:
            errors.append(_error(layer, graph, f"its {tensor} is written ({_shape(weights[key].shape)}) but the "
                                 "spec's layer has no such tensor", where, fix))
        else:
            errors.append(SpecError(f"the weights hold {key} ({_shape(weights[key].shape)}), which no layer "
                                    "of the spec owns", where, "", fix))
    if errors:
        raise SpecErrors(errors)


def _owners(graph) -> set[str]:
    return {n.name for n in graph.nodes}


def _split(key: str, owner: set[str]) -> tuple[str, str]:
    """``layer1.0.conv1.weight`` -> (``layer1.0.conv1``, ``weight``): the longest prefix
    that is a layer (a tensor's own name may hold dots: ``out_proj.weight``)."""
    parts = key.split(".")
    for i in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:i])
        if head in owner:
            return head, ".".join(parts[i:])
    return "", key


def _error(layer: str, graph, what: str, where: Pos, fix: str) -> SpecError:
    return SpecError(f"layer {layer} ({graph.node(layer).op}): {what}", where, layer, fix)


def _shape(shape) -> str:
    return str([int(d) for d in shape])


def _floating(value) -> bool:
    """A numpy array's or a torch tensor's dtype is floating point (no torch import)."""
    is_float = getattr(value, "is_floating_point", None)  # torch.Tensor
    return bool(is_float()) if callable(is_float) else value.dtype.kind == "f"
