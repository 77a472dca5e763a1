"""Spec -> ONNX file: build the torch module, trace it with torch.onnx's dynamo exporter,
name the graph after the spec, add metadata, save, and (by default) check it.

Why the dynamo exporter (``torch.onnx.export(..., dynamo=True)``, torch's default since
2.9, needs ``onnxscript``): it exports every archc op exactly, including the ones the
TorchScript exporter gets wrong or refuses (an adaptive average pool whose bins do not
divide the input), and its built-in optimiser folds batch norms into the convolutions
before them. archc passes it static heights and widths (only the batch is dynamic), so
any size it computes from the example input is the spec's own size.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from archc.backends.onnx import OnnxError
from archc.backends.onnx.target import DEFAULT_OPSET, target_errors
from archc.errors import SpecErrors

INPUT_NAME = "input"
OPTIMIZE_LEVELS = ("none", "basic", "extended")


@dataclass
class ExportResult:
    """What :func:`export_onnx` wrote: ``path`` (and ``data_path`` with external data),
    the opset, ONNX node counts by op type, spec node -> value name, and the check report."""

    path: Path
    graph: object
    opset: int
    op_counts: dict
    names: dict = field(default_factory=dict)
    data_path: Path | None = None
    check: object = None

    @property
    def node_count(self) -> int:
        return sum(self.op_counts.values())


def export_onnx(spec, output, network=None, overrides=None, preset=None, *, text: str | None = None, weights=None,
                opset: int | None = None, dynamic_batch: bool = True, batch: int = 1,
                external_data: bool = False, optimize: str = "none", check: bool = True,
                seed: int | None = 0, progress=None) -> ExportResult:
    """Export a spec to an ONNX file at ``output`` and, with ``check``, verify it.

    ``spec`` is what :func:`archc.build` takes (a path, ``FILE:NAME``, a zoo name or a
    Graph; ``spec=None, text=`` for YAML text). ``weights``: a state_dict file (``.pt``/``.pth``/``.safetensors``, an
    archc checkpoint) loaded strictly; otherwise the spec's initialisation with ``seed``.
    ``dynamic_batch=False`` fixes the batch to ``batch``. ``external_data`` writes the
    weights beside the model (``output + ".data"``). ``optimize`` rewrites the file with
    onnxruntime's graph optimisations (``basic``: standard ONNX ops only; ``extended``:
    onnxruntime's fused ops, runnable by onnxruntime only). Raises SpecErrors for a spec
    that cannot be exported, OnnxError for a failed export or check. ``progress``, if given,
    is called with the name of each stage as it starts (``archc export`` shows them on a
    terminal: tracing a large network takes a while).

    >>> import archc, tempfile, os
    >>> out = os.path.join(tempfile.mkdtemp(), "tiny.onnx")
    >>> r = archc.export_onnx(archc.loads("archc: 1\\ninput: [4]\\nlayers:\\n  - linear: {out: 2}\\n"), out)
    >>> r.check.ok, r.op_counts
    (True, {'Gemm': 1})
    """
    from archc.backends.torch.codegen import as_graph

    if optimize not in OPTIMIZE_LEVELS:
        raise ValueError(f"optimize must be one of {OPTIMIZE_LEVELS}, got {optimize!r}")
    graph = as_graph(spec, network, overrides, preset, text=text)
    opset = DEFAULT_OPSET if opset is None else opset
    errors = target_errors(graph, opset, single_file=not external_data)
    if errors:
        raise SpecErrors(errors)
    say = progress or (lambda stage: None)
    say("building the module" + (f" with {weights}" if weights else ""))
    model, source, extra = build_module(graph, weights, seed)
    say("tracing with torch.onnx (dynamo)")
    proto = _trace(model, graph, opset, dynamic_batch, batch)
    from archc.backends.onnx.names import forward_line_nodes, rename

    names = rename(proto, forward_line_nodes(graph, source))
    _add_metadata(proto, graph, dynamic_batch, batch, extra)
    say(f"writing {output}")
    path, data_path = _save(proto, Path(output), external_data)
    result = ExportResult(path, graph, opset, _op_counts(proto), names, data_path)
    if check:
        from archc.backends.onnx.check import check_export

        say("checking: onnx.checker, shape inference, onnxruntime against torch")
        result.check = check_export(result, model, dynamic_batch, batch)
    if optimize != "none":
        from archc.backends.onnx.runtime import optimize_file

        say(f"optimising ({optimize})")
        optimize_file(path, optimize)
        if check:
            from archc.backends.onnx.check import compare_outputs, run_checker

            result.check.after_optimize = compare_outputs(path, model, graph, dynamic_batch, batch)
            if optimize == "basic":  # extended files hold onnxruntime's own ops: no ONNX checker
                after = run_checker(path)
                result.check.checker += "" if after == "ok" else f"; the optimised file: {after}"
    return result


def build_module(graph, weights, seed):
    """The eval-mode module (its source, and what its run folder says about the data)."""
    from archc.analysis.budget import check_inference
    from archc.backends.torch.build import build
    from archc.backends.torch.codegen import generate

    source = generate(graph)
    check_inference(graph, 2)  # the weights and the example batch (2 samples) of the trace
    model = build(graph, seed=seed).eval()
    extra = {"weights": {"source": "init", "seed": seed}}
    if weights is not None:
        from archc.backends.torch.weights import WeightsError, load_weights, refusal

        try:
            load_weights(model, str(weights))
        except WeightsError as exc:
            raise OnnxError(refusal(exc, f"--weights {weights}")) from None
        except Exception as exc:  # torch.load's many ways to refuse a file that is no checkpoint
            raise OnnxError(f"--weights {weights}: not a readable state_dict ({type(exc).__name__})") from None
        extra = run_data(weights) | {"weights": checkpoint_origin(weights)}
    return model, source, extra


def checkpoint_origin(weights) -> dict:
    """{"source": "checkpoint", "path", "epoch"}: the path as given, and the number of
    finished epochs when the file is an ``archc train`` checkpoint (best.pt, last.pt)."""
    origin = {"source": "checkpoint", "path": str(weights)}
    path = Path(weights)
    if path.suffix.lower() == ".safetensors":
        return origin  # tensors only: no epoch to read
    try:
        import torch

        # mmap: the tensors were read once already by load_weights; only "epoch" is wanted here
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # an old (non-zip) format cannot be mapped; its epoch stays unknown
        return origin
    epoch = state.get("epoch") if isinstance(state, dict) else None
    if isinstance(epoch, int) and not isinstance(epoch, bool):
        origin["epoch"] = epoch
    return origin


def run_data(weights) -> dict:
    """classes and normalisation recorded by ``archc train`` in the run folder of a checkpoint."""
    config = Path(weights).resolve().parent / "config.json"
    try:
        data = json.loads(config.read_text(encoding="utf-8")).get("data", {})
    except (OSError, ValueError, AttributeError):
        return {}
    from archc.backends.onnx.metadata import checked

    if not isinstance(data, dict):
        return {}
    found = {k: checked(k, data.get(k)) for k in ("classes", "normalize")}
    return {k: v for k, v in found.items() if v is not None}  # a hand-edited config.json: skip, not fail


def _trace(model, graph, opset: int, dynamic_batch: bool, batch: int):
    """torch.onnx's dynamo export of ``model`` as a ModelProto (its chatter silenced)."""
    import torch

    from archc.backends.torch.build import example_input

    example_batch = 2 if dynamic_batch else batch  # torch.export fixes a batch of 1
    x = example_input(graph, example_batch, seed=0)
    dims = ({0: torch.export.Dim("batch", min=1)},) if dynamic_batch else None
    quiet = io.StringIO()
    try:
        with contextlib.redirect_stdout(quiet), warnings.catch_warnings(), _quiet_loggers():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(model, (x,), dynamo=True, input_names=[INPUT_NAME],
                                        output_names=list(graph.outputs), opset_version=opset,
                                        dynamic_shapes=dims, external_data=False, verbose=False)
    except Exception as exc:  # the exporter raises many kinds; say which and why in one line
        raise OnnxError(f"torch.onnx could not export {graph.name}: {type(exc).__name__}: "
                        f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from None
    return program.model_proto


@contextlib.contextmanager
def _quiet_loggers():
    names = ("torch.onnx", "torch.export", "onnxscript", "torch._dynamo", "torch.fx")
    saved = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)


def _add_metadata(proto, graph, dynamic_batch: bool, batch: int, extra: dict) -> None:
    from archc.backends.onnx.metadata import metadata

    props = metadata(graph, INPUT_NAME, dynamic_batch, batch, extra)
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = f"{graph.name}: exported by archc {props['archc.version']} through torch.onnx"


def _save(proto, path: Path, external_data: bool):
    """One self-contained file, or the model plus ``<name>.data`` beside it."""
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    data_path = path.with_name(path.name + ".data") if external_data else None
    try:
        if data_path and data_path.exists():
            data_path.unlink()  # onnx appends to an existing data file
        onnx.save_model(proto, str(path), save_as_external_data=external_data,
                        all_tensors_to_one_file=True, location=data_path.name if data_path else None,
                        size_threshold=1024)
    except (OSError, ValueError) as exc:
        raise OnnxError(f"cannot write {path}: {exc}") from None
    return path, data_path


def _op_counts(proto) -> dict:
    counts = {}
    for node in proto.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

