"""An ONNX file scored on a data split: ``archc evaluate M.onnx`` and the accuracy that
``archc export --quantize`` measures before and after.

The numbers are the ones ``archc evaluate SPEC --weights CKPT`` reports for a checkpoint:
the same data (the spec's ``train.data`` or ``--data``, split, fitted and normalised by
archc/train/data exactly as training did), the same loss and metric functions (the task's,
archc/train/tasks.py). Only the forward pass differs: onnxruntime instead of torch.

A file carries what this needs in its metadata (archc/backends/onnx/metadata.py): the
input shape, the output's shape and op, and the spec's train section (``archc.train``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

from archc.backends.onnx import OnnxError

SPLITS = ("test", "val", "train")


@dataclass
class FileGraph:
    """What the training code asks of a graph (input shape, outputs, the op of each
    output, the train section), read from an exported file's metadata instead."""

    name: str
    input_shape: list
    outputs: list
    shapes: dict
    nodes: list = field(default_factory=list)  # one (name, op) per output: tasks read the last op
    train: dict = field(default_factory=dict)

    def shape_of(self, name: str) -> list:
        return self.shapes[name]

    @classmethod
    def from_metadata(cls, meta: dict, path) -> "FileGraph":
        inputs, outputs = meta.get("inputs"), meta.get("outputs")
        if not inputs or not outputs:
            raise OnnxError(f"{path} carries no archc metadata (archc.inputs, archc.outputs): it was "
                            "not written by `archc export`; evaluate the spec with --weights instead")
        shapes = {o["name"]: list(o.get("shape", []))[1:] for o in outputs}
        nodes = [SimpleNamespace(name=o["name"], op=o.get("op", "")) for o in outputs]
        train = dict(meta.get("train") or {})
        if "task" not in train and isinstance(meta.get("task"), str):  # a file from before archc.train
            train["task"] = meta["task"]
        return cls(meta.get("spec.name", str(path)), list(inputs[0]["shape"])[1:],
                   [o["name"] for o in outputs], shapes, nodes, train)


def prepare_data(graph, flags: dict):
    """(config, task, splits) of ``graph``'s train section with ``flags`` (data,
    batch_size) over it: what ``archc train`` and ``archc evaluate`` would use. Raises
    TrainError (a missing data source, labels that do not fit the output...)."""
    from archc.train.config import make_config
    from archc.train.data import prepare
    from archc.train.tasks import get_task

    train = dict(graph.train) if isinstance(graph.train, dict) else {}
    if flags.get("data") is not None and isinstance(train.get("data"), dict):
        # another data set: the spec's separate val/test sources belong to its own data
        train["data"] = {k: v for k, v in train["data"].items() if k not in ("val", "test")}
    cfg = make_config(train, flags)
    task = get_task(cfg.task)
    splits = prepare(cfg, task.data_shape(graph, cfg))
    task.check(splits, tuple(graph.shape_of(graph.outputs[0])))
    return cfg, task, splits


def pick_split(splits, split: str):
    """The Arrays of ``split``, or a TrainError saying which splits there are."""
    from archc.train.errors import TrainError

    part = {"test": splits.test, "val": splits.val, "train": splits.train}.get(split)
    if part is None or not len(part):
        have = [s for s in SPLITS if getattr(splits, s) is not None and len(getattr(splits, s))]
        raise TrainError(f"the data has no {split} split", f"choose --split {' or '.join(have)}")
    return part


def outputs(model, part, batch_size: int):
    """The model's first output for every example of ``part`` (an OnnxModel; NumPy, float32)."""
    import numpy as np

    fixed = model.input_shape[0]  # a static-batch export takes its own batch size only
    step = fixed if isinstance(fixed, int) else batch_size
    chunks = [model.run(part.x[i:i + step].numpy()) for i in range(0, len(part), step)]
    return np.concatenate(chunks).astype(np.float32)  # an fp16 output is scored in fp32


def score(out, part, task, cfg, graph) -> dict:
    """The task's loss and metrics of ``out`` against ``part``'s targets, as a checkpoint's
    evaluation reports them (the same functions, over the whole split at once)."""
    import torch

    out = torch.from_numpy(out)
    loss_fn = task.loss(cfg, graph)  # before meter: a binary task picks its threshold here
    meter = task.meter(cfg.metrics)
    y = task.targets(part.y)
    with torch.no_grad():
        meter.update(out, y, loss_fn(out, y))
    return meter.result()


def evaluate_onnx(path, data=None, split: str = "test", batch_size: int | None = None,
                  provider: str = "cpu") -> dict:
    """``{"split", "examples", "loss", <metrics>}`` of the ONNX file at ``path`` on a split
    of its spec's data (``data`` overrides the source). Raises OnnxError or TrainError."""
    from archc.backends.onnx.runtime import OnnxModel

    model = OnnxModel(path, provider=provider)
    graph = FileGraph.from_metadata(model.metadata, path)
    cfg, task, splits = prepare_data(graph, {"data": data, "batch_size": batch_size})
    part = pick_split(splits, split)
    out = outputs(model, part, cfg.batch_size)
    return {"split": split, "examples": len(part)} | score(out, part, task, cfg, graph)
