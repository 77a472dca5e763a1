"""``archc import MODEL.onnx``: an ONNX graph becomes a spec and a weights file.

The path: read the file (:mod:`.onnx_read`), fold the exporter's noise (:mod:`.onnx_fold`),
map each node through the op table (:mod:`.onnx_ops`), name the layers (:mod:`.onnx_names`),
write the spec text and the state_dict (:mod:`.onnx_spec`). The spec is then loaded by
archc itself and every layer's shape compared with ONNX's shape inference, so what is
written validates and computes the graph's values. Every problem found is collected and
raised as one :class:`~archc.errors.SpecErrors`; nothing is written unless all went well.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from archc.errors import Pos, SpecError, SpecErrors
from archc.importers import onnx_ops, onnx_ops_tensor  # noqa: F401  (registers the op table)
from archc.importers.check import check_weights
from archc.importers.onnx_attention import recognise as recognise_attention
from archc.importers.onnx_tokens import recognise as recognise_class_tokens
from archc.importers.onnx_fold import fold
from archc.importers.onnx_fold_pool import recognise as recognise_adaptive_pools
from archc.importers.onnx_names import make_ids
from archc.importers.onnx_ops_seq import recognise as recognise_recurrent
from archc.importers.onnx_read import INT64, FLOAT, OnnxGraph, fail, read_onnx
from archc.importers.onnx_spec import spec_text, state_dict
from archc.importers.onnx_table import MAPPERS, Context, Unsupported
from archc.importers.onnx_tie import tie_weights

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth")
BUG = "this is a bug in archc's importer; please report it with the model"  # the fix of an inconsistency


def weights_path(output, weights_out=None) -> Path:
    """Where an import writes its weights: ``weights_out``, else beside the spec (``output``
    with .safetensors). ValueError for another suffix, or for the spec's own path (the
    second file written would replace the first)."""
    output = Path(output)
    path = Path(weights_out) if weights_out else output.with_suffix(".safetensors")
    if path.suffix.lower() not in WEIGHT_SUFFIXES:
        raise ValueError(f"{path}: the weights file ends in one of {' '.join(WEIGHT_SUFFIXES)}")
    if path.resolve() == output.resolve():
        raise ValueError(f"{path}: the weights would be written over the spec — give the weights another name"
                         if weights_out else f"{path}: the weights, named after the spec, would be written "
                         "over it — give the spec a .yaml name")
    return path

# what archc would need for ONNX ops the table does not map (the fix of the error)
NEEDS = {
    "GlobalMaxPool": "a global max pool op",
    "Einsum": "the einsum's pattern as one archc op (attention is recognised as MatMul/Softmax only)",
    "Loop": "control flow, which archc's static graphs do not have",
    "If": "control flow, which archc's static graphs do not have",
    "Scan": "control flow, which archc's static graphs do not have",
    "Erf": "gelu as one op: re-export at opset 20, where Gelu is an ONNX op",
    "Div": "the pattern it belongs to as one archc op (a layer norm, attention's scaling)",
    "Sub": "the pattern it belongs to as one archc op (a layer norm, a normalisation)",
    "Pow": "the pattern it belongs to as one archc op (a layer norm, rmsnorm)",
    "Sqrt": "the pattern it belongs to as one archc op (a layer norm, attention's scaling)",
    "GatherND": "an op for this gather: archc imports GatherND only as torch's adaptive average "
                "pooling, whose indices, masks and sums it checks against torch's windows",
}


@dataclass
class ImportResult:
    """The spec ``text``, its ``weights`` (state_dict of numpy arrays), the analysed
    ``graph``, where they were written (None if not), and node counts for the summary."""

    text: str
    weights: dict
    graph: object
    onnx_nodes: int
    spec_path: Path | None = None
    weights_path: Path | None = None

    @property
    def layers(self) -> int:
        return len(self.graph.nodes)


def import_onnx(model, output, weights_out=None) -> ImportResult:
    """Import ``model`` (an .onnx path) and write the spec to ``output`` and the weights to
    ``weights_out`` (``.safetensors``, ``.pt`` or ``.pth``; default: ``output`` with
    ``.safetensors``). Raises SpecErrors, having written nothing, when archc cannot express
    the graph.

    >>> import archc, tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> _ = archc.export_onnx(archc.loads("archc: 1\\ninput: [4]\\nlayers:\\n  - linear: {out: 2}\\n  - relu\\n"),
    ...                       os.path.join(d, "tiny.onnx"), check=False)
    >>> r = import_onnx(os.path.join(d, "tiny.onnx"), os.path.join(d, "tiny.yaml"))
    >>> r.graph.summary.total_params, r.weights_path.name
    (10, 'tiny.safetensors')
    """
    output = Path(output)
    weights_out = weights_path(output, weights_out)
    result = onnx_to_spec(model, weights_name=os.path.relpath(weights_out, output.parent))
    _write_both(output, result.text, weights_out, result.weights)
    result.spec_path, result.weights_path = output, weights_out
    return result


def onnx_to_spec(model, weights_name: str | None = None) -> ImportResult:
    """Import ``model`` without writing anything (``archc diff`` of an .onnx file)."""
    g = read_onnx(model)
    nodes = recognise_class_tokens(g, recognise_attention(g, fold(g)))
    nodes = recognise_recurrent(g, recognise_adaptive_pools(g, nodes))
    input_ids = _check_input(g)
    ctx = Context(g, nodes)
    layers, errors = [], []
    for node in nodes:
        if id(node) in ctx.skipped or node.attrs.get("archc.beside"):  # part of another node's error
            continue
        mapper = MAPPERS.get(node.op)
        try:
            if mapper is None:
                raise Unsupported(f"archc has no op for ONNX's {node.op}",
                                  NEEDS.get(node.op, f"an op computing {node.op} (`archc ops` lists those it has)"))
            layers += mapper(node, ctx)
        except Unsupported as exc:
            errors.append(SpecError(exc.message, Pos(g.file), node.label(),
                                    f"archc would need {exc.need}"))
    if errors:
        raise SpecErrors(errors)
    tie_weights(layers)
    if not layers:
        raise fail(g.file, "the graph computes nothing archc keeps (its output is its input)")
    return _assemble(g, layers, ctx, input_ids, weights_name, len(nodes))


def _check_input(g: OnnxGraph) -> bool:
    """True for token ids (int64); the input's dimensions after the batch must be fixed."""
    if g.input_dtype not in (FLOAT, INT64):
        raise fail(g.file, f"the input {g.input!r} has ONNX element type {g.input_dtype}",
                   "archc networks take float32 values or int64 token ids")
    if not g.input_shape or any(d is None for d in g.input_shape[1:]):
        dims = ["?" if d is None else d for d in g.input_shape]
        raise fail(g.file, f"the input {g.input!r} has dynamic dimensions besides the batch: {dims}",
                   "archc specs have fixed sizes: fix them at export (or with onnxruntime's "
                   "make_dynamic_shape_fixed tool)")
    return g.input_dtype == INT64


def _assemble(g, layers, ctx, input_ids, weights_name, onnx_nodes) -> ImportResult:
    ids = make_ids([layer.hint or layer.output for layer in layers])
    producer = {layer.output: id_ for layer, id_ in zip(layers, ids)}
    for value, same in ctx.alias.items():  # a no-op reshape: its readers read its input
        while same in ctx.alias:
            same = ctx.alias[same]
        if same in producer:
            producer[value] = producer[same]
    outputs = list(dict.fromkeys(ctx.alias.get(o, o) for o in g.outputs))
    missing = [o for o in outputs if o not in producer]
    if missing:
        raise fail(g.file, f"the output {missing[0]!r} is the input or a constant", "export a network that computes it")
    stem = Path(g.file).stem
    header = [f"Imported from {Path(g.file).name} by `archc import` (opset {g.opset}; "
              f"{onnx_nodes} ONNX nodes after folding, {len(layers)} layers).",
              f"Weights: {weights_name or 'not written'} — archc.load_weights(archc.build(SPEC), WEIGHTS)."]
    text = spec_text(stem, header, g.input_shape[1:], input_ids, layers, ids, producer, g.input, outputs)
    graph = _validated(g, text, layers, ids)
    weights = state_dict(layers, ids)
    check_weights(graph, weights, Pos(g.file), BUG)  # what is written pairs with the spec, or nothing is
    return ImportResult(text, weights, graph, onnx_nodes)


def _validated(g: OnnxGraph, text: str, layers, ids):
    """The spec loaded by archc, each layer's shape checked against ONNX's."""
    import archc

    try:
        graph = archc.load(text=text)
    except SpecErrors as exc:
        raise SpecErrors([SpecError(f"the imported spec does not validate: {e.message}", Pos(g.file), e.path, BUG)
                          for e in exc.errors]) from None
    errors = []
    for layer, id_ in zip(layers, ids):
        onnx_shape = g.shapes.get(layer.output)
        ours = graph.node(id_).meta.get("shape")
        if onnx_shape is not None and ours is not None and (len(onnx_shape) != len(ours) + 1 or any(
                d is not None and d != o for d, o in zip(onnx_shape[1:], ours))):
            errors.append(SpecError(f"layer {id_} ({layer.op}) gives {list(ours)} where ONNX gives "
                                    f"{list(onnx_shape[1:])}", Pos(g.file), id_, BUG))
    if errors:
        raise SpecErrors(errors)
    return graph


def _write_both(spec_path: Path, text: str, weights_path: Path, weights: dict) -> None:
    """Write the weights, then the spec, each to a temporary name renamed into place: an
    interrupted import leaves no half spec."""
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_w = weights_path.with_name(weights_path.name + ".part")
    tmp_s = spec_path.with_name(spec_path.name + ".part")
    try:
        save_weights(weights, tmp_w)
        tmp_s.write_text(text, encoding="utf-8")
        os.replace(tmp_w, weights_path)
        os.replace(tmp_s, spec_path)
    finally:
        for tmp in (tmp_w, tmp_s):
            tmp.unlink(missing_ok=True)


def save_weights(weights: dict, path: Path) -> None:
    import numpy as np

    arrays = {k: np.ascontiguousarray(v) for k, v in weights.items()}
    if path.name.lower().endswith(".safetensors") or path.name.lower().endswith(".safetensors.part"):
        from safetensors.numpy import save_file

        save_file(arrays, str(path))
    else:
        import torch

        torch.save({k: torch.from_numpy(v.copy()) for k, v in arrays.items()}, str(path))


def import_lines(model, output, weights_out=None) -> list[str]:
    """``archc import``'s report: what was written and the imported network's totals."""
    from archc.report import numbers as N

    r = import_onnx(model, output, weights_out)
    s = r.graph.summary
    return [f"wrote {r.spec_path}: {r.layers} layers from {r.onnx_nodes} ONNX nodes, "
            f"{N.count(s.total_params)} parameters, {N.si(s.macs)} MACs, output {N.shape(s.output_shapes[0])}",
            f"wrote {r.weights_path}: {len(r.weights)} tensors"]
