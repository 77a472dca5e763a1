"""``archc plan``: the memory of one training step, as a table, Markdown or JSON.

The settings come from the spec's ``train:`` section (archc/train/config.py: batch_size,
optimizer, amp), the flags override them; the numbers from archc/analysis/memory.py.
Torch is imported only to read a device's free memory (``--device cuda:0``)."""

from __future__ import annotations

import json

from archc.analysis.memory import MARGIN, MemoryPlan, Settings, largest_batch, plan, precision_of
from archc.ir.graph import Graph
from archc.printable import markdown_text, printable
from archc.report import numbers as N

FORMAT = "archc.plan/1"
PRECISIONS = ("fp32", "bf16", "fp16")
STRATEGIES = ("ddp", "fsdp")  # archc/train/config.py's; archc.analysis.parallel is imported only when used


def settings_for(graph: Graph, batch=None, optimizer=None, precision=None, device="cuda", freeze=None) -> Settings:
    """The plan's settings: the spec's train section, then the flags. Raises TrainError for
    a train section that training would refuse, ValueError for a freeze pattern that
    matches no layer."""
    cfg = _train_section(graph.train or {})
    opt = cfg["optimizer"]
    own = optimizer in (None, opt.get("name", "sgd"))  # momentum and decay belong to the spec's optimizer
    name = optimizer or opt.get("name", "sgd")
    if precision is None:  # train.amp: auto is bf16 on a GPU (AmpPolicy), off on the CPU
        precision = precision_of(cfg.get("amp", "auto"), device == "cuda")
    patterns = freeze if freeze is not None else cfg.get("freeze")
    frozen = frozenset()
    if patterns:
        from archc.analysis.parallel import frozen_nodes

        frozen = frozen_nodes(graph, patterns)
    return Settings(batch=batch or cfg.get("batch_size", 32), optimizer=name,
                    momentum=float(opt.get("momentum", 0.0)) if own else 0.0,
                    weight_decay=float(opt.get("weight_decay") or 0.0) if own else 0.0,
                    nesterov=bool(opt.get("nesterov", False)) and own, precision=precision, device=device,
                    frozen=frozen)


def strategy_for(graph: Graph, strategy=None) -> str:
    """``--strategy``, else train.strategy, else ddp (as archc train chooses)."""
    return strategy or _train_section(graph.train or {}).get("strategy", "ddp")


def _train_section(train: dict) -> dict:
    """The keys a plan reads, checked as training checks them (archc/train/config.py; its
    full conversion costs more than the whole plan, so only these are converted)."""
    from archc.spec.loader import plain
    from archc.train.errors import TrainError

    raw = plain(train)
    out = {"optimizer": _optimizer(raw.get("optimizer", {}))}
    for key, kinds in (("batch_size", int), ("amp", (bool, str)), ("strategy", str), ("freeze", (str, list))):
        if key in raw:
            if not isinstance(raw[key], kinds) or (key == "batch_size" and (isinstance(raw[key], bool) or raw[key] < 1)):
                raise TrainError(f"train.{key}: {raw[key]!r} is not valid")
            out[key] = raw[key]
    if out.get("strategy", "ddp") not in STRATEGIES:  # training's own message (archc/train/config.py)
        raise TrainError(f"train.strategy {out['strategy']!r} is not ddp or fsdp")
    if isinstance(out.get("freeze"), str):  # a string: comma-separated, as training reads it
        out["freeze"] = [f.strip() for f in out["freeze"].split(",") if f.strip()]
    if not all(isinstance(f, str) for f in out.get("freeze", ())):
        raise TrainError("train.freeze: expected a list of node names or globs")
    return out


# optimizer keys whose plain values training's conversion surely accepts as they are
_PLAIN = {"name": (str,), "momentum": (int, float), "nesterov": (bool,), "weight_decay": (int, float, type(None)),
          "lr": (int, float, type(None))}


def _optimizer(opt) -> dict:
    """train.optimizer's name, momentum, weight_decay, nesterov. A section of plain values
    of those keys (and lr) is read as it is; anything else goes through training's own
    conversion, for its defaults and its error messages. Importing archc/train/config.py
    (ten dataclasses) costs 13 ms, 5% of the plan, so the common case skips it."""
    if isinstance(opt, str):
        opt = {"name": opt}
    if isinstance(opt, dict) and all(k in _PLAIN and isinstance(v, _PLAIN[k]) and
                                     (k == "nesterov" or not isinstance(v, bool)) for k, v in opt.items()):
        return {"name": opt.get("name", "sgd"), "momentum": opt.get("momentum", 0.0),
                "weight_decay": opt.get("weight_decay"), "nesterov": opt.get("nesterov", False)}
    from archc.train.config import OptimizerConfig, convert

    converted = convert(OptimizerConfig, opt, "train.optimizer")
    return {k: getattr(converted, k) for k in ("name", "momentum", "weight_decay", "nesterov")}


def make(graph: Graph, settings: Settings, memory: int | None = None, nproc: int = 1,
         strategy: str = "ddp") -> dict:
    """The plan as plain data (what --format json prints; docs/json.md). With ``nproc`` > 1
    also one process's share under ``strategy`` (archc/analysis/parallel.py; fsdp imports
    torch to lay out the units)."""
    p = plan(graph, settings)
    doc = {"format": FORMAT, "name": graph.name, "file": graph.file,
           "settings": {"batch_size": settings.batch, "optimizer": settings.optimizer,
                        "momentum": settings.momentum, "precision": settings.precision,
                        "device": settings.device, "strategy": strategy, "nproc": nproc,
                        "frozen": sorted(settings.frozen)},
           "trainable_params": p.trainable_params, "bytes": totals(p), "largest_batch": None,
           "per_process": None,
           "layers": [{"id": n.name, "op": n.op, "output_bytes": n.output_bytes,
                       "saved_bytes": n.saved_bytes, "inplace": n.inplace, "estimate": n.estimate}
                      for n in p.nodes]}
    if memory is not None:
        batch, fit = largest_batch(graph, settings, memory)
        doc["largest_batch"] = {"memory": memory, "margin": MARGIN, "batch": batch,
                                "peak": fit.peak if fit else None}
    if nproc > 1:
        from archc.analysis import parallel

        doc["per_process"] = per_process(parallel.share(graph, settings, nproc, strategy))
        if memory is not None:
            batch, fit = parallel.largest_global_batch(graph, settings, nproc, strategy, memory)
            doc["per_process"]["largest_batch"] = {"memory": memory, "margin": MARGIN, "batch": batch,
                                                   "batch_per_process": batch // nproc,
                                                   "peak": fit.peak if fit else None}
    return doc


def per_process(share) -> dict:
    """A ProcessPlan (archc/analysis/parallel.py) as plain data."""
    parts = ("params", "buffers", "gradients", "optimizer_state", "activations", "transient", "buckets",
             "gathered", "unsharded_gradients")
    return {"strategy": share.strategy, "nproc": share.nproc, "batch_size": share.batch,
            "units": share.units, "largest_unit": share.largest_unit,
            "bytes": {**{k: getattr(share, k) for k in parts}, "peak": share.peak}, "largest_batch": None}


def totals(p: MemoryPlan) -> dict:
    return {"params": p.params, "buffers": p.buffers, "gradients": p.gradients,
            "optimizer_state": p.optimizer_state, "activations": p.activations,
            "transient": p.transient, "peak": p.peak}


LABELS = {"params": "Parameters (fp32)", "buffers": "Buffers", "gradients": "Gradients",
          "optimizer_state": "Optimizer state", "activations": "Activations kept for backward",
          "transient": "Largest transient", "peak": "Predicted peak of one step"}


PROCESS_LABELS = {
    "ddp": {"params": "Parameters (whole)", "buffers": "Buffers", "gradients": "Gradients",
            "buckets": "DDP's gradient buckets", "optimizer_state": "Optimizer state",
            "activations": "Activations kept for backward", "transient": "Largest transient",
            "peak": "Predicted peak per process"},
    "fsdp": {"params": "Parameters (shard)", "buffers": "Buffers (whole)", "gradients": "Gradients (shard)",
             "optimizer_state": "Optimizer state (shard)", "gathered": "Gathered parameters",
             "unsharded_gradients": "Unsharded gradients in backward",
             "activations": "Activations kept for backward", "transient": "Largest transient",
             "peak": "Predicted peak per process"},
}


def _title(doc: dict) -> str:
    s = doc["settings"]
    momentum = f" (momentum {s['momentum']:g})" if s["momentum"] else ""
    frozen = f", {len(s['frozen'])} layers frozen" if s.get("frozen") else ""
    return (f"{doc['name']}: batch {s['batch_size']}, {s['optimizer']}{momentum}, {s['precision']}, "
            f"on {s['device']}{frozen}")


def _process_head(share: dict) -> str:
    if share["strategy"] == "ddp":
        return f"Per process of {share['nproc']} (ddp, batch {share['batch_size']} each; every process the same)"
    units = f"; {share['units']} units + the root, the largest {share['largest_unit']}" if share["units"] else ""
    return (f"Per process of {share['nproc']} (fsdp, batch {share['batch_size']} each; "
            f"process 0, which holds the most{units})")


def _process_fit_line(share: dict) -> str | None:
    fit = share.get("largest_batch")
    if fit is None:
        return None
    if not fit["batch"]:
        return (f"Largest global batch: none — one example per process needs more than "
                f"{N.nbytes(fit['memory'])} less the {fit['margin']:.0%} margin")
    return (f"Largest global batch that fits in {N.nbytes(fit['memory'])} on each of {share['nproc']} processes: "
            f"{fit['batch']} ({fit['batch_per_process']} each; peak per process {N.nbytes(fit['peak'])}, "
            f"keeping {fit['margin']:.0%} free)")


def _process_rows(share: dict):
    for key, label in PROCESS_LABELS[share["strategy"]].items():
        yield label, N.nbytes(share["bytes"][key])


def _fit_line(doc: dict) -> str | None:
    fit = doc["largest_batch"]
    if fit is None:
        return None
    if not fit["batch"]:
        return (f"Largest batch: none — one sample needs more than {N.nbytes(fit['memory'])} "
                f"less the {fit['margin']:.0%} margin")
    return (f"Largest batch that fits in {N.nbytes(fit['memory'])}: {fit['batch']} "
            f"(peak {N.nbytes(fit['peak'])}, keeping {fit['margin']:.0%} free for what is not counted)")


def _layer_rows(doc: dict):
    total = doc["bytes"]["activations"] or 1
    for layer in doc["layers"]:
        if layer["saved_bytes"]:
            mark = " ~" if layer["estimate"] else (" (in place)" if layer["inplace"] else "")
            yield (printable(layer["id"]), layer["op"] + mark, N.nbytes(layer["output_bytes"]),
                   N.nbytes(layer["saved_bytes"]), f"{layer['saved_bytes'] / total:.1%}")


def render_text(doc: dict) -> str:
    head = ("Layer", "Op", "Output", "Kept for backward", "Share")
    rows = [head, *_layer_rows(doc)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [printable(_title(doc)), ""]
    for r in rows:
        lines.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    lines.append("")
    width = max(len(v) for v in LABELS.values())
    for key, label in LABELS.items():
        lines.append(f"{label:<{width}}  {N.nbytes(doc['bytes'][key]):>11}")
    lines += [line for line in [_fit_line(doc)] if line]
    share = doc.get("per_process")
    if share:
        rows = list(_process_rows(share))
        width = max(len(label) for label, _ in rows)
        lines += ["", printable(_process_head(share))] + [f"{label:<{width}}  {v:>11}" for label, v in rows]
        lines += [line for line in [_process_fit_line(share)] if line]
    return "\n".join(lines) + "\n"


def render_markdown(doc: dict) -> str:
    out = [f"### {markdown_text(_title(doc))}", "", "| Layer | Op | Output | Kept for backward | Share |",
           "|---|---|---:|---:|---:|"]
    out += [f"| `{markdown_text(r[0])}` | {r[1]} | {r[2]} | {r[3]} | {r[4]} |" for r in _layer_rows(doc)]
    out += ["", "| Total | |", "|---|---:|"]
    out += [f"| {label} | {N.nbytes(doc['bytes'][key])} |" for key, label in LABELS.items()]
    out += ["", fit] if (fit := _fit_line(doc)) else []
    share = doc.get("per_process")
    if share:
        out += ["", markdown_text(_process_head(share)), "", "| Per process | |", "|---|---:|"]
        out += [f"| {label} | {v} |" for label, v in _process_rows(share)]
        out += ["", line] if (line := _process_fit_line(share)) else []
    return "\n".join(out) + "\n"


def render_json(doc: dict) -> str:
    return json.dumps(doc, indent=2)


def device_memory(device: str) -> int:
    """Free bytes of a CUDA device (torch.cuda.mem_get_info); imports torch."""
    import torch

    if not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA device is available here; give --memory instead")
    free, _ = torch.cuda.mem_get_info(torch.device(device))
    return free


def auto_batch(graph: Graph, memory: int | None, device: str | None, nproc: int = 1, strategy: str | None = None,
               freeze=None) -> tuple[int, str]:
    """``archc train --batch-size auto``: the largest (global) batch of the plan for the
    run's optimizer, precision and frozen layers within ``memory`` bytes per process (else
    the CUDA device's free memory), and the line that says so. Under torchrun (``nproc``
    processes, ``strategy`` ddp or fsdp) each process's share is planned and the batch is a
    multiple of ``nproc``. Raises ValueError when nothing fits or no size is known."""
    cuda = (device or "auto") != "cpu" and memory is None
    if cuda:
        memory = device_memory(device if device and device.startswith("cuda") else "cuda")
    if memory is None:
        raise ValueError("--batch-size auto on the CPU needs --memory SIZE (e.g. --memory 8GiB)")
    import_cuda = device not in (None, "auto", "cpu") or cuda
    settings = settings_for(graph, 1, device="cuda" if import_cuda else "cpu", freeze=freeze)
    if nproc > 1:
        from archc.analysis import parallel

        strategy = strategy_for(graph, strategy)
        batch, fit = parallel.largest_global_batch(graph, settings, nproc, strategy, memory)
        where = f"per process of {nproc} ({strategy}, {batch // nproc or 0} each)"
    else:
        batch, fit = largest_batch(graph, settings, memory)
        where = ""
    if not batch:
        raise ValueError(f"--batch-size auto: not even one sample {'per process ' if nproc > 1 else ''}fits in "
                         f"{N.nbytes(memory)} (less {MARGIN:.0%} margin) by archc plan's prediction")
    return batch, (f"batch size auto: {batch}, the largest whose predicted peak ({N.nbytes(fit.peak)}"
                   f"{' ' + where if where else ''}, {settings.optimizer}, {settings.precision}) fits in "
                   f"{N.nbytes(memory)} less {MARGIN:.0%} (archc plan)")
