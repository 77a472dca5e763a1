"""Read an ONNX file into plain data: nodes, constant tensors, value shapes.

Initialisers are read whether they sit inside the file or beside it (external data, the
form of files over 2 GiB); ONNX shape inference fills the shape of every value, so the
op table can turn ONNX's batch-first axes into archc's batch-free ones. Opsets 13 to 25
are read as they are; an older file is converted to opset 13 first
(onnx.version_converter), so the op table only knows the opset-13+ forms of each op.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from archc.errors import Pos, SpecErrors

MIN_OPSET, MAX_OPSET = 13, 25
FLOAT, INT64 = 1, 7  # onnx.TensorProto element types archc's inputs can have


@dataclass
class OnnxGraph:
    """One ONNX graph as the importer sees it. Shapes include the batch (``None`` where a
    dimension is symbolic); ``consts`` holds initialisers and folded constants (numpy)."""

    file: str
    name: str
    opset: int
    nodes: list
    consts: dict
    shapes: dict
    input: str
    input_shape: tuple
    input_dtype: int
    outputs: list
    elem_types: dict = field(default_factory=dict)

    def pos(self) -> Pos:
        return Pos(self.file)


def fail(file: str, message: str, fix: str = "", path: str = "") -> SpecErrors:
    return SpecErrors.one(message, Pos(file), path, fix)


def read_onnx(path) -> OnnxGraph:
    """Load ``path`` (with its external data) and infer the shape of every value."""
    import onnx

    file = str(path)
    try:
        model = onnx.load(file, load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends: not a model
        raise fail(file, f"not an ONNX model ({type(exc).__name__})",
                   "give a .onnx file written by torch.onnx, tf2onnx or another exporter") from None
    _load_external_data(model, file)
    model = _at_supported_opset(model, file)
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as exc:  # inference failed: go on with the shapes the file states
        del exc
    return _graph(model, file)


def _load_external_data(model, file: str) -> None:
    """Read the initialisers kept in files beside the model, saying which one is missing."""
    from onnx.external_data_helper import load_external_data_for_model, uses_external_data

    folder = Path(file).parent
    for t in model.graph.initializer:
        if uses_external_data(t):
            location = next((e.value for e in t.external_data if e.key == "location"), "")
            if not (folder / location).is_file():
                raise fail(file, f"its external data file is missing: {folder / location}",
                           "keep the data file beside the model, under the name the model gives")
    try:
        load_external_data_for_model(model, str(folder))
    except Exception as exc:
        raise fail(file, f"its external data could not be read ({type(exc).__name__}: {exc})",
                   "re-export the model with its data") from None


def default_opset(model) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _at_supported_opset(model, file: str):
    import onnx

    opset = default_opset(model)
    if opset > MAX_OPSET:
        raise fail(file, f"opset {opset} is newer than archc reads ({MIN_OPSET} to {MAX_OPSET})",
                   f"re-export at opset {MAX_OPSET} or lower")
    if opset < MIN_OPSET:
        try:
            model = onnx.version_converter.convert_version(model, MIN_OPSET)
        except Exception as exc:
            raise fail(file, f"opset {opset} could not be converted to {MIN_OPSET}: {type(exc).__name__}",
                       f"re-export at opset {MIN_OPSET} or newer") from None
    return model


def _graph(model, file: str) -> OnnxGraph:
    from onnx import numpy_helper

    g = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    inputs = [v for v in g.input if v.name not in consts]  # old exports list weights as inputs
    if len(inputs) != 1:
        names = ", ".join(v.name for v in inputs) or "none"
        raise fail(file, f"the graph has {len(inputs)} inputs ({names}); an archc network has one",
                   "export a model with a single input tensor")
    shapes, types = {}, {}
    for v in list(g.input) + list(g.value_info) + list(g.output):
        t = v.type.tensor_type
        types[v.name] = t.elem_type
        if t.HasField("shape"):
            shapes[v.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)
    for name, array in consts.items():
        shapes[name] = tuple(array.shape)
    x = inputs[0]
    return OnnxGraph(file, g.name or Path(file).stem, default_opset(model), list(g.node), consts,
                     shapes, x.name, shapes.get(x.name, ()), types.get(x.name, 0),
                     [v.name for v in g.output], types)
