"""The work behind ``archc export`` and ``archc infer`` (archc/cli/export.py stays a thin shell).

Both return the lines to print and raise OnnxError (one line, exit 1) or SpecErrors.
"""

from __future__ import annotations

from pathlib import Path

from archc.backends.onnx import OnnxError


def export_lines(graph, output, weights, opset, dynamic, external, optimize, check,
                 progress=None) -> tuple[list[str], bool]:
    """Export ``graph``; (lines to print, whether every check passed). ``progress`` is told
    each stage as it starts (see export_onnx)."""
    from archc.backends.onnx.export import export_onnx

    if external and optimize != "none":
        raise OnnxError("--optimize rewrites a single file: leave out --external-data or use --optimize none")
    result = export_onnx(graph, output, weights=weights, opset=opset, dynamic_batch=dynamic,
                         external_data=external, optimize=optimize, check=check, progress=progress)
    lines = [summary_line(result, dynamic)]
    if optimize != "none":
        lines.append(f"optimised with onnxruntime's {optimize} graph optimisations")
    if result.check is None:
        return lines, True
    return lines + result.check.lines(), result.check.ok


def summary_line(result, dynamic: bool) -> str:
    """"wrote FILE: opset, batch, size, nodes by op type" for an ExportResult."""
    size = result.path.stat().st_size + (result.data_path.stat().st_size if result.data_path else 0)
    ops = ", ".join(f"{op} {n}" for op, n in result.op_counts.items())
    where = f" + {result.data_path.name}" if result.data_path else ""
    return (f"wrote {result.path}{where}: opset {result.opset}, {'dynamic' if dynamic else 'static'} batch, "
            f"{size / 1e6:.1f} MB, {result.node_count} nodes ({ops})")


def is_onnx_file(model: str) -> bool:
    """An ``.onnx`` path (or a file that is not YAML) goes to onnxruntime; anything else is a spec."""
    path = Path(model)
    return path.suffix.lower() == ".onnx" or (path.is_file() and path.suffix.lower() not in (".yaml", ".yml"))


def infer_onnx(model, input_file, provider: str, topk: int, output) -> tuple[list[str], str]:
    """Run an .onnx file on ``input_file``; (lines to print, notes for stderr: one per line,
    "" when none). The notes say when the weights are an untrained initialisation and which
    metadata was ignored."""
    from archc.backends.onnx.inputs import read_input
    from archc.backends.onnx.runtime import OnnxModel

    session = OnnxModel(model, provider=provider)
    shape = session.input_shape[1:]
    if not all(isinstance(d, int) for d in shape):
        raise OnnxError(f"{model}: the input's shape {session.input_shape} is not fixed beyond the batch")
    meta, notes = fitting_metadata(session, model)
    array = read_input(input_file, shape, meta.get("normalize"))
    out = session.run(array)
    outs = meta.get("outputs") or [{}]
    lines = infer_lines(out, outs[0].get("op"), meta.get("classes"), topk, output)
    return lines, "\n".join([session.note] * bool(session.note) + notes)


def fitting_metadata(session, model) -> tuple[dict, list[str]]:
    """The file's metadata without what does not fit this model (normalisation for other
    channels, class names for another width), and the warnings to print."""
    meta = dict(session.metadata)
    notes = [f"warning: {model}: {p}" for p in session.metadata_problems]
    channels = session.input_shape[1] if len(session.input_shape) == 4 else None
    norm = meta.get("normalize")
    if norm and len(norm["mean"]) not in (1, channels):
        notes.append(f"warning: {model}: ignored metadata archc.normalize ({len(norm['mean'])} means "
                     f"for an input of {channels} channel{'s' * (channels != 1)})")
        meta.pop("normalize")
    width = session.session.get_outputs()[0].shape[-1]
    classes = meta.get("classes")
    if classes and isinstance(width, int) and len(classes) != width:
        notes.append(f"warning: {model}: ignored metadata archc.classes ({len(classes)} names "
                     f"for {width} outputs)")
        meta.pop("classes")
    weights = meta.get("weights")
    if weights and weights["source"] == "init":
        from archc.backends.onnx.metadata import weights_line

        notes.append(f"warning: {model} holds untrained weights ({weights_line(weights)}): its "
                     "predictions mean nothing — export with --weights CKPT from archc train")
    return meta, notes


def infer_spec(graph, weights, input_file, topk: int, output) -> list[str]:
    """Run the spec's torch module with ``weights`` on ``input_file``."""
    from archc.backends.onnx.export import run_data
    from archc.backends.onnx.inputs import read_input
    from archc.backends.onnx.metadata import train_data

    train = graph.train if isinstance(graph.train, dict) else {}
    known = train_data(train) | (run_data(weights) if weights else {})
    array = read_input(input_file, graph.input_shape, known.get("normalize"))
    out = run_spec(graph, weights, array)
    from archc.backends.onnx.metadata import output_op

    return infer_lines(out, output_op(graph, graph.outputs[0]), known.get("classes"), topk, output)


def run_spec(graph, weights, array):
    """The spec's torch module with ``weights`` on ``array`` (first output, NumPy)."""
    import torch

    from archc.backends.onnx.export import build_module

    if not weights:
        raise OnnxError("a spec needs --weights CKPT (fresh random weights predict nothing); "
                        "or give an exported .onnx file")
    if array.dtype.kind not in "fiu":
        raise OnnxError(f"input dtype {array.dtype} does not fit: the network takes float32")
    if list(array.shape[1:]) != list(graph.input_shape):
        raise OnnxError(f"input shape {list(array.shape)} does not fit: the network takes "
                        f"[batch, {', '.join(map(str, graph.input_shape))}]")
    module, _, _ = build_module(graph, weights, seed=0)
    with torch.no_grad():
        out = module(torch.as_tensor(array, dtype=torch.float32))
    return (out[0] if isinstance(out, tuple) else out).numpy()


def infer_lines(array, out_op, classes, topk: int, output) -> list[str]:
    """Save the output, or read it as a classifier's top-k."""
    import numpy as np

    if output:
        try:
            np.save(output, array) if not str(output).endswith(".npz") else np.savez(output, output=array)
        except OSError as exc:
            raise OnnxError(f"cannot write {output}: {exc.strerror or exc}") from None
        return [f"wrote {output}: output of shape {list(array.shape)}"]
    if array.ndim != 2:
        return [f"output of shape {list(array.shape)} (not (batch, classes): save it with -o out.npy)"]
    from archc.backends.onnx.inputs import topk_lines

    return topk_lines(array, topk, out_op, classes)
