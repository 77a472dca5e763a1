"""Is an exported file right? Three independent checks, each with a one-line verdict:

1. ``onnx.checker`` with ``full_check`` (which includes ONNX's strict shape inference);
2. ONNX shape inference, run afresh on the file with the exporter's shape annotations
   removed, compared value by value with archc's static shapes wherever a value carries a
   spec node's name (archc/backends/onnx/names.py), graph outputs included;
3. onnxruntime (CPU) against torch on the same random inputs, at two batch sizes when the
   batch is dynamic: every output within ``|ort - torch| <= ATOL + RTOL * |torch|``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RTOL, ATOL = 1e-3, 1e-5  # fp32
CHECK_BATCHES = (1, 3)


@dataclass
class Run:
    batch: int
    max_abs: float
    ok: bool


@dataclass
class CheckReport:
    checker: str = "ok"  # "ok" or the checker's message
    shapes_compared: int = 0
    shape_mismatches: list = field(default_factory=list)
    # named values whose dims ONNX inference leaves unknown (a reshape to sizes computed at
    # run time, as torch's LSTM/GRU lowering does): not a disagreement; the runs check them
    shapes_undetermined: list = field(default_factory=list)
    runs: list = field(default_factory=list)
    after_optimize: list | None = None

    @property
    def max_abs(self) -> float:
        return max((r.max_abs for r in self.runs + (self.after_optimize or [])), default=0.0)

    @property
    def ok(self) -> bool:
        runs = self.runs + (self.after_optimize or [])
        return self.checker == "ok" and not self.shape_mismatches and bool(runs) and all(r.ok for r in runs)

    def lines(self) -> list[str]:
        """The verdict, a few short lines; the last says PASS or FAIL."""
        out = [f"check: onnx.checker (full): {self.checker}"]
        shapes = (f"{self.shapes_compared} named values agree with archc's shapes" if not self.shape_mismatches
                  else f"{len(self.shape_mismatches)} of {self.shapes_compared} named values disagree: "
                  + "; ".join(self.shape_mismatches[:3]))
        if self.shapes_undetermined:
            shapes += (f" ({len(self.shapes_undetermined)} more left partly unknown by inference, "
                       f"computed at run time: {', '.join(self.shapes_undetermined[:3])})")
        out.append(f"check: ONNX shape inference: {shapes}")
        for label, runs in (("onnxruntime vs torch", self.runs), ("optimised file vs torch", self.after_optimize)):
            if runs:
                text = ", ".join(f"batch {r.batch} max |diff| {r.max_abs:.2g}{'' if r.ok else ' (too large)'}"
                                 for r in runs)
                out.append(f"check: {label}: {text} (rtol {RTOL:g}, atol {ATOL:g})")
        out.append(f"verdict: {'PASS' if self.ok else 'FAIL'} — max abs difference {self.max_abs:.3g}")
        return out


def check_export(result, model, dynamic_batch: bool, batch: int) -> CheckReport:
    report = CheckReport(checker=run_checker(result.path))
    report.shapes_compared, report.shape_mismatches = compare_shapes(
        result.path, result.graph, result.names, dynamic_batch, batch, report.shapes_undetermined)
    report.runs = compare_outputs(result.path, model, result.graph, dynamic_batch, batch)
    return report


def run_checker(path) -> str:
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # ValidationError, InferenceError: the message is the verdict
        return "failed: " + (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return "ok"


def inferred_shapes(path) -> dict[str, list]:
    """value name -> dims (ints, or names for symbolic ones) by ONNX shape inference alone."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)  # shapes need no weight values
    del model.graph.value_info[:]
    for out in model.graph.output:
        out.type.tensor_type.ClearField("shape")
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    shapes = {}
    for info in list(model.graph.value_info) + list(model.graph.output):
        t = info.type.tensor_type
        if t.HasField("shape"):
            shapes[info.name] = [d.dim_param if d.HasField("dim_param") else
                                 d.dim_value if d.HasField("dim_value") else "?" for d in t.shape.dim]
    return shapes


def compare_shapes(path, graph, names: dict, dynamic_batch: bool, batch: int,
                   undetermined: list | None = None) -> tuple[int, list]:
    """(values compared, mismatches as text) between inference and archc's shapes. A value
    whose non-batch dims inference leaves unknown (``unk__N``, ``?``) but whose known dims
    agree goes to ``undetermined`` (its name) instead of the mismatches."""
    try:
        shapes = inferred_shapes(path)
    except Exception as exc:
        return 0, ["shape inference failed: " + (str(exc).strip().splitlines() or ["?"])[0]]
    compared, bad = 0, []
    for spec, value in names.items():
        got = shapes.get(value)
        want = list(graph.shape_of(spec))
        if got is None:
            bad.append(f"{spec}: no inferred shape")
            continue
        compared += 1
        lead_ok = isinstance(got[0], str) and got[0] != "?" if dynamic_batch else got[0] == batch
        if got and lead_ok and len(got) == len(want) + 1 and got[1:] != want and all(
                g == w or _unknown(g) for g, w in zip(got[1:], want)):
            if undetermined is not None:
                undetermined.append(spec)
                compared -= 1
                continue
        if not got or not lead_ok or got[1:] != want:
            bad.append(f"{spec}: ONNX {got}, archc {['batch' if dynamic_batch else batch, *want]}")
    return compared, bad


def _unknown(dim) -> bool:
    """A dim ONNX inference could not determine: onnx names it ``unk__N``; we write ``?``."""
    return dim == "?" or (isinstance(dim, str) and dim.startswith("unk__"))


def compare_outputs(path, model, graph, dynamic_batch: bool, batch: int) -> list[Run]:
    """onnxruntime on CPU against torch on the same random inputs."""
    import numpy as np
    import torch

    from archc.backends.onnx.runtime import OnnxModel
    from archc.backends.torch.build import example_input

    session = OnnxModel(path, provider="cpu")
    runs = []
    for b in (CHECK_BATCHES if dynamic_batch else (batch,)):
        x = example_input(graph, b, seed=b)
        with torch.no_grad():
            want = model(x)
        want = [t.numpy() for t in (want if isinstance(want, tuple) else (want,))]
        got = session.run_all(x.numpy())
        diffs = [np.abs(g.astype(np.float64) - w) for g, w in zip(got, want)]
        ok = len(got) == len(want) and all(
            g.shape == w.shape and bool(np.all(d <= ATOL + RTOL * np.abs(w))) for g, w, d in zip(got, want, diffs))
        runs.append(Run(b, max((float(d.max()) for d in diffs if d.size), default=0.0), ok))
    return runs
