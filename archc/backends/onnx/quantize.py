"""int8 and fp16 ONNX files, with what they cost measured (``archc export --quantize``).

archc writes no quantiser of its own: int8 is onnxruntime's static post-training
quantisation (``onnxruntime.quantization.quantize_static``: QDQ format, per-channel int8
weights, activations calibrated by min/max on examples of the spec's training split,
preprocessed as training preprocesses them); fp16 is onnxruntime's float16 converter
(``onnxruntime.transformers.float16``, inputs and outputs kept fp32 unless asked).
Ops onnxruntime does not quantise stay fp32 between DequantizeLinear and QuantizeLinear.

The fp32 model is exported first, checked against torch as any export is, and kept beside
the result as ``M.fp32.onnx``: it is the reference of every measurement, and a user
compares the two with ``archc evaluate``. The measurements, on the test split (never the
calibration examples): top-1 agreement with the fp32 model, the largest output difference,
the accuracy of both; file sizes; latency at batch 1, the two models run alternately in
one process with the same provider and threads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from archc.backends.onnx import OnnxError

PRECISIONS = ("int8", "fp16")
DEFAULT_CALIBRATE = 300    # examples: min/max calibration settles well before this
DEFAULT_MAX_DROP = 1.0     # accuracy points
CALIBRATION_BATCH = 32
LATENCY_BUDGET_S = 2.0     # per precision pair: enough paired runs for a stable median
LATENCY_RUNS = (5, 200)    # at least, at most


def reference_path(output) -> Path:
    """Where the fp32 reference goes: ``M.onnx`` -> ``M.fp32.onnx`` beside it."""
    output = Path(output)
    return output.with_name(output.stem + ".fp32" + (output.suffix or ".onnx"))


def classifier_problem(graph) -> str | None:
    """Why ``graph`` has no head --quantize can measure (a [classes] output trained as
    classification), or None."""
    train = graph.train if isinstance(graph.train, dict) else {}
    task = train.get("task", "classification")
    shape = list(graph.shape_of(graph.outputs[0]))
    if len(shape) == 1 and shape[0] >= 2 and task == "classification":
        return None
    why = f"its task is {task}" if task != "classification" else f"its output {graph.outputs[0]} is {shape}"
    return (f"--quantize needs a classification head — an output of shape [classes] and train.task "
            f"classification — to measure top-1 agreement and accuracy, and {graph.name} has none ({why}); "
            f"export it without --quantize")


@dataclass
class QuantizeReport:
    """What ``--quantize`` measured; ``lines()`` is the CLI's verdict, ``ok`` its status."""

    precision: str
    path: Path
    reference: Path
    calibration: int          # examples (0 for fp16)
    source: str               # the data source
    examples: int             # of the test split
    agreement: float          # top-1, fraction
    max_abs: float            # largest |quantised - fp32| output difference
    before: float             # top-1 accuracy of the fp32 file on the test split
    after: float              # ... of the converted file
    size_ratio: float
    latency: tuple            # (fp32 s, quantised s, median ratio of paired runs, runs)
    device: str               # "CPU, 2 threads" or "CUDA"
    max_drop: float = DEFAULT_MAX_DROP

    @property
    def drop(self) -> float:
        """Accuracy points lost (negative: gained)."""
        return 100 * (self.before - self.after)

    @property
    def ok(self) -> bool:
        return self.drop <= self.max_drop

    def lines(self) -> list[str]:
        how = (f"QDQ, per-channel weights, calibrated on {self.calibration} {self.source} training examples"
               if self.precision == "int8" else "float16 weights and activations")
        fp32_s, q_s, ratio, runs = self.latency
        out = [f"wrote {self.path}: {self.precision} ({how}); fp32 reference: {self.reference}",
               f"check: {self.precision} vs fp32 on {self.examples} {self.source} test examples: top-1 agreement "
               f"{100 * self.agreement:.2f}%, max |diff| {self.max_abs:.3g}",
               f"check: latency at batch 1 ({self.device}, median of {runs} paired runs): fp32 "
               f"{1e3 * fp32_s:.3g} ms, {self.precision} {1e3 * q_s:.3g} ms",
               f"verdict: {self.precision}: {self.size_ratio:.2f}× the size, {ratio:.2f}× the latency of fp32; "
               f"test accuracy {100 * self.before:.2f}% → {100 * self.after:.2f}% "
               f"({0.0 - self.drop:+.2f} points)"]
        if not self.ok:
            out.append(f"FAIL: test accuracy fell {self.drop:.2f} points, more than --max-drop {self.max_drop:g}; "
                       f"{self.path} is written all the same")
        return out


def export_quantized(graph, output, precision: str, *, weights=None, opset=None, dynamic_batch=True,
                     calibrate: int = DEFAULT_CALIBRATE, data=None, max_drop: float = DEFAULT_MAX_DROP,
                     fp16_io: bool = False, check: bool = True, threads: int | None = None, progress=None):
    """Export ``graph`` (an analysed Graph) in fp32 to :func:`reference_path`, convert it
    to ``precision`` at ``output`` and measure both; (ExportResult of the reference, a
    QuantizeReport, or None when the reference failed its checks). Raises OnnxError for a
    network without a classification head, missing data or a conversion onnxruntime refuses.

    >>> import archc                                                    # doctest: +SKIP
    >>> ref, report = export_quantized(archc.load("lenet5"), "l.onnx", "int8",
    ...                                weights="runs/lenet5/best.pt")  # doctest: +SKIP
    >>> report.agreement, report.drop, report.size_ratio              # doctest: +SKIP
    """
    from archc.backends.onnx.export import export_onnx

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    problem = classifier_problem(graph)
    if problem:
        raise OnnxError(problem)
    say = progress or (lambda stage: None)
    say("reading the data")
    cfg, splits, test = _data(graph, data, precision)
    result = export_onnx(graph, reference_path(output), weights=weights, opset=opset,
                         dynamic_batch=dynamic_batch, check=check, progress=progress)
    if result.check is not None and not result.check.ok:
        return result, None
    say(f"converting to {precision}")
    calibration = calibration_sample(splits.train, calibrate) if precision == "int8" else None
    if precision == "int8":
        to_int8(result.path, output, calibration)
    else:
        to_fp16(result.path, output, keep_io=not fp16_io)
    say("measuring both on the test split")
    measured = measure(result.path, output, test, cfg.batch_size, threads or cpu_count(),
                       "cpu" if precision == "int8" else "auto")  # fp16 is for GPUs: CUDA where it runs
    return result, QuantizeReport(precision, Path(output), result.path,
                                  0 if calibration is None else len(calibration), str(cfg.data.source),
                                  max_drop=max_drop, **measured)


def _data(graph, data, precision: str):
    """(config, splits, test split) for calibration and measurement, or an OnnxError
    saying what data is missing and how to give it."""
    from archc.backends.onnx.evaluation import pick_split, prepare_data
    from archc.train.errors import TrainError

    train = graph.train if isinstance(graph.train, dict) else {}
    fix = "give --data SOURCE (digits, an .npz file, an image folder, an MNIST or CIFAR-10 folder)"
    why = (f"--quantize {precision} {'calibrates on the training data and ' if precision == 'int8' else ''}"
           "measures on the test split")
    if data is None and not train.get("data"):
        raise OnnxError(f"{why}, and {graph.name} names no data (train.data) — {fix}")
    try:
        cfg, _, splits = prepare_data(graph, {"data": data})
        return cfg, splits, pick_split(splits, "test")
    except TrainError as exc:
        raise OnnxError(f"{why}, but {exc.message} — {exc.fix or fix}") from None


def calibration_sample(train, n: int):
    """``n`` training inputs drawn by a seeded shuffle (a folder source lists its examples
    class by class: the first ``n`` could all be one class), as a NumPy array."""
    import torch

    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:n]
    return train.x[order.sort().values].numpy()


def cpu_count() -> int:
    """The CPUs this process may run on (a container's share, not the host's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@contextlib.contextmanager
def _quiet():
    """onnxruntime's quantisation tools log advice through the root logger; keep the CLI's
    output to its own lines."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


class _Calibration:
    """onnxruntime's CalibrationDataReader (by its ``get_next``) over an array, in batches."""

    def __init__(self, name: str, x):
        self.batches = iter([{name: x[i:i + CALIBRATION_BATCH]} for i in range(0, len(x), CALIBRATION_BATCH)])

    def get_next(self):
        return next(self.batches, None)


def to_int8(reference, output, calibration) -> None:
    """Static QDQ quantisation of ``reference`` to ``output`` (per-channel int8 weights,
    uint8 activations calibrated by min/max on ``calibration``)."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    from archc.backends.onnx.export import INPUT_NAME

    reader = _Calibration(INPUT_NAME, calibration)
    try:
        with _quiet():
            quantize_static(str(reference), str(output), reader, quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8)
    except Exception as exc:  # onnxruntime raises many kinds; name the node when it does
        raise OnnxError(f"onnxruntime could not quantise {Path(reference).name} to int8"
                        f"{_where(reference, exc)}: {type(exc).__name__}: {_first_line(exc)}") from None
    model = onnx.load(str(output))
    _mark(model, "int8")
    onnx.save_model(model, str(output))


def to_fp16(reference, output, keep_io: bool = True) -> None:
    """``reference`` with float16 weights and activations at ``output`` (fp32 inputs and
    outputs with ``keep_io``)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel as Graph

    try:
        with _quiet():
            model = convert_float_to_float16(onnx.load(str(reference)), keep_io_types=keep_io)
            # the converter appends the Casts of fp32 inputs after the nodes reading them: valid
            # for onnxruntime, not for onnx.checker (nodes must be in topological order)
            Graph.graph_topological_sort(model.graph, is_deterministic=True)
    except Exception as exc:
        raise OnnxError(f"onnxruntime could not convert {Path(reference).name} to fp16"
                        f"{_where(reference, exc)}: {type(exc).__name__}: {_first_line(exc)}") from None
    _mark(model, "fp16")
    onnx.save_model(model, str(output))


def _mark(model, precision: str) -> None:
    """Record the precision in a ModelProto's metadata (archc.precision), keeping the rest."""
    props = {p.key: p.value for p in model.metadata_props} | {"archc.precision": precision}
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def _first_line(exc) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]


def _where(reference, exc) -> str:
    """" at node NAME (OP)" when the exception names a node of ``reference``."""
    import onnx

    text = str(exc)
    try:
        nodes = onnx.load(str(reference), load_external_data=False).graph.node
    except Exception:  # the message stands without it
        return ""
    named = [n for n in nodes if n.name and n.name in text]
    if not named:
        return ""
    node = max(named, key=lambda n: len(n.name))  # "conv1" is in "layer1.0.conv1"'s text too
    return f" at node {node.name} ({node.op_type})"


def measure(reference, output, test, batch_size: int, threads: int, provider: str) -> dict:
    """Both files on the test split and side by side at batch 1 (same provider, threads):
    the measured fields of a QuantizeReport."""
    import numpy as np

    from archc.backends.onnx.evaluation import outputs
    from archc.backends.onnx.runtime import OnnxModel

    fp32, quant = OnnxModel(reference, provider, threads), OnnxModel(output, provider, threads)
    want, got = outputs(fp32, test, batch_size), outputs(quant, test, batch_size)
    agreement = float(np.mean(want.argmax(1) == got.argmax(1)))
    max_abs = float(np.abs(got.astype(np.float64) - want).max())
    labels = test.y.numpy()
    before, after = float(np.mean(want.argmax(1) == labels)), float(np.mean(got.argmax(1) == labels))
    size = Path(output).stat().st_size / Path(reference).stat().st_size
    latency = side_by_side(fp32, quant, test.x[:1].numpy())
    device = "CUDA" if fp32.provider.startswith("CUDA") else f"CPU, {threads} thread{'s' * (threads != 1)}"
    return {"examples": len(test), "agreement": agreement, "max_abs": max_abs, "before": before,
            "after": after, "size_ratio": size, "latency": latency, "device": device}


def side_by_side(a, b, x, budget_s: float | None = None, runs: tuple = LATENCY_RUNS) -> tuple:
    """(median s of ``a``, median s of ``b``, median of the paired ratios b/a, pairs) on
    input ``x``, for about ``budget_s`` seconds (default LATENCY_BUDGET_S). The two run
    alternately, each going first in turn, so that a change in the machine's load falls
    on both; the ratio of each pair is taken before the median."""
    budget_s = LATENCY_BUDGET_S if budget_s is None else budget_s
    for model in (a, b, a, b):  # warm-up: first runs allocate and pack weights
        model.run(x)
    times_a, times_b = [], []
    start = time.perf_counter()
    while len(times_a) < runs[0] or (time.perf_counter() - start < budget_s and len(times_a) < runs[1]):
        pair = (a, b) if len(times_a) % 2 == 0 else (b, a)
        spent = {}
        for model in pair:
            t0 = time.perf_counter()
            model.run(x)
            spent[id(model)] = time.perf_counter() - t0
        times_a.append(spent[id(a)])
        times_b.append(spent[id(b)])
    ratio = statistics.median(tb / ta for ta, tb in zip(times_a, times_b))
    return statistics.median(times_a), statistics.median(times_b), ratio, len(times_a)


def quantize_lines(graph, output, precision: str, options: dict, progress=None) -> tuple[list[str], bool]:
    """``archc export --quantize``: (lines to print, whether the checks passed and the
    accuracy drop is within ``max_drop``). ``options``: export_quantized's keywords."""
    result, report = export_quantized(graph, output, precision, progress=progress, **options)
    from archc.backends.onnx.commands import summary_line

    lines = [summary_line(result, options.get("dynamic_batch", True))]
    lines += result.check.lines() if result.check is not None else []
    if report is None:
        return lines + [f"not converted to {precision}: the fp32 reference failed its checks"], False
    return lines + report.lines(), report.ok


def flag_problem(quantize, calibrate, data, max_drop, fp16_io, optimize: str, single_file: bool) -> str | None:
    """A combination of ``archc export`` flags that does not go together (a usage error), or None."""
    given = [name for name, value in (("--calibrate", calibrate), ("--data", data), ("--max-drop", max_drop),
                                      ("--fp16-io", fp16_io)) if value not in (None, False)]
    if quantize is None:
        return f"{given[0]} goes with --quantize int8|fp16" if given else None
    if quantize == "fp16" and calibrate is not None:
        return "--calibrate is for --quantize int8 (fp16 needs no calibration)"
    if quantize == "int8" and fp16_io:
        return "--fp16-io is for --quantize fp16"
    if optimize != "none":
        return "--quantize writes its own file from the fp32 export: leave out --optimize"
    if not single_file:
        return "--quantize writes single files: leave out --external-data"
    return None


def quantize_options(weights, opset, dynamic: bool, check: bool, calibrate, data, max_drop, fp16_io) -> dict:
    """export_quantized's keywords from ``archc export``'s flags (None: the default)."""
    return {"weights": weights, "opset": opset, "dynamic_batch": dynamic, "check": check,
            "calibrate": DEFAULT_CALIBRATE if calibrate is None else calibrate, "data": data,
            "max_drop": DEFAULT_MAX_DROP if max_drop is None else max_drop, "fp16_io": fp16_io}
