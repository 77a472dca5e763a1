"""Tasks: what the network's output means — its loss, its metrics, its checks of the data.

A task is a class registered with ``@register_task``. The supervised loop
(archc/train/loop.py) asks it for:

- ``check(splits, out_shape)``: refuse data that cannot fit (labels out of range...);
- ``loss(cfg, graph)``: the loss function ``(output, target) -> scalar``;
- ``meter(names)``: an accumulator of the metrics over batches;
- ``monitor``: the default value early stopping and the best checkpoint watch.

A task whose training is not "one loss, one optimizer" (GAN: two networks, alternating
steps) sets ``trainer`` to its own loop class (same interface as
:class:`archc.train.loop.SupervisedTrainer`); segmentation only needs its loss and meter
(per-pixel cross-entropy, pixel accuracy, mean IoU) — see docs/train.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from archc.train.errors import TrainError

TASKS: dict[str, type] = {}
LOSSES = {
    "cross_entropy": lambda cfg: lambda out, y: F.cross_entropy(out, y, label_smoothing=cfg.loss.label_smoothing),
    "nll": lambda cfg: lambda out, y: F.nll_loss(out, y),
    # the network ends with softmax: cross-entropy of probabilities
    "nll_of_probs": lambda cfg: lambda out, y: F.nll_loss(torch.log(out.clamp_min(1e-12)), y),
    "bce": lambda cfg: lambda out, y: F.binary_cross_entropy(out.reshape(y.shape), y),
    "bce_logits": lambda cfg: lambda out, y: F.binary_cross_entropy_with_logits(out.reshape(y.shape), y),
    "mse": lambda cfg: lambda out, y: F.mse_loss(out.reshape(y.shape), y),
    "l1": lambda cfg: lambda out, y: F.l1_loss(out.reshape(y.shape), y),
}


def register_task(name: str):
    def deco(cls):
        if name in TASKS:
            raise ValueError(f"task {name!r} registered twice")
        cls.name = name
        TASKS[name] = cls
        return cls

    return deco


def get_task(name: str):
    from archc.train import gan, language, segmentation  # noqa: F401  (their modules register those tasks)

    if name not in TASKS:
        raise TrainError(f"train.task {name!r} is not available", "tasks: " + ", ".join(sorted(TASKS)))
    return TASKS[name]()


def last_op(graph) -> str:
    """The op of the network's (first) output node."""
    out = graph.outputs[0]
    return next((n.op for n in graph.nodes if n.name == out), "")


class Meter:
    """Sums over batches: the loss (weighted by batch size) and each metric's count."""

    def __init__(self, metric_fns: dict):
        self.fns, self.n, self.loss = metric_fns, 0, 0.0
        self.sums = {k: 0.0 for k in metric_fns}

    @torch.no_grad()
    def update(self, out, y, loss) -> None:
        """Add one batch; sums stay tensors on the batch's device (no sync per step)."""
        b = len(y)
        self.n += b
        self.loss = self.loss + loss.detach().float() * b
        for k, fn in self.fns.items():
            self.sums[k] = self.sums[k] + fn(out, y)

    def totals(self) -> tuple:
        """(n, loss, sums), added over the processes of a DDP run (archc.train.distributed)."""
        from archc.train.distributed import all_reduce_totals

        return all_reduce_totals(self.n, self.loss, self.sums)

    def result(self, prefix: str = "") -> dict:
        n, loss, sums = self.totals()
        n = max(n, 1)
        return {f"{prefix}loss": float(loss) / n} | {f"{prefix}{k}": float(v) / n for k, v in sums.items()}


class Task:
    """The base: a supervised task with one loss."""

    name = ""
    default_loss = "mse"
    metrics: dict = {}           # metric name -> fn(out, y) -> summed value over the batch
    default_metrics: list = []
    monitor = ("val_loss", "min")
    trainer = None               # None: archc.train.loop.SupervisedTrainer
    target_dtype = torch.float32

    def loss(self, cfg, graph):
        name = cfg.loss.name or self.loss_for(graph)
        if name not in LOSSES:
            raise TrainError(f"train.loss {name!r} is not available", "losses: " + ", ".join(sorted(LOSSES)))
        return LOSSES[name](cfg)

    def loss_for(self, graph) -> str:
        return self.default_loss

    def meter(self, names) -> Meter:
        names = self.default_metrics if names is None else names
        unknown = [m for m in names if m not in self.metrics]
        if unknown:
            raise TrainError(f"train.metrics: {unknown[0]!r} is not a metric of the {self.name} task",
                             "metrics: " + (", ".join(self.metrics) or "none"))
        return Meter({m: self.metrics[m] for m in names})

    def check(self, splits, out_shape) -> None:
        """Raise TrainError when the targets cannot match the output."""

    def targets(self, y: torch.Tensor) -> torch.Tensor:
        return y.to(self.target_dtype)

    def data_shape(self, graph, cfg) -> tuple:
        """The shape the data are fitted to: the network's input (GAN: the generator's output)."""
        return tuple(graph.input_shape)

    def augment(self, x, y, cfg, g):
        """Augment a batch (AugmentConfig ``cfg``, generator ``g``); segmentation moves the masks too."""
        from archc.train import augment

        return augment.augment(x, cfg, g), y


def _topk(k):
    def fn(out, y):
        top = out.topk(min(k, out.shape[1]), dim=1).indices
        return (top == y[:, None]).any(dim=1).sum()

    return fn


@register_task("classification")
class Classification(Task):
    """Class labels 0..K-1 against K outputs (logits)."""

    default_loss = "cross_entropy"
    metrics = {"accuracy": lambda out, y: (out.argmax(1) == y).sum(), "top5": _topk(5)}
    default_metrics = ["accuracy"]
    target_dtype = torch.long

    def loss_for(self, graph) -> str:
        return {"softmax": "nll_of_probs", "log_softmax": "nll"}.get(last_op(graph), "cross_entropy")

    def check(self, splits, out_shape) -> None:
        if len(out_shape) != 1:
            raise TrainError(f"classification needs an output of shape [classes], the network gives "
                             f"{list(out_shape)}", "end the network with flatten and linear")
        k = out_shape[0]
        for part, a in (("train", splits.train), ("validation", splits.val), ("test", splits.test)):
            if a is None or not len(a):
                continue
            if a.y.dtype != torch.long or a.y.dim() != 1:
                raise TrainError(f"the {part} targets are not class labels (integers)",
                                 "use task: regression for numeric targets")
            lo, hi = int(a.y.min()), int(a.y.max())
            if lo < 0 or hi >= k:
                raise TrainError(f"the {part} labels go from {lo} to {hi} but the network has {k} outputs",
                                 f"set the output size to {hi + 1} (e.g. --set classes={hi + 1})"
                                 if lo >= 0 else "labels must be 0..classes-1")


def _binary_accuracy(threshold):
    return lambda out, y: ((out.reshape(y.shape) > threshold).float() == y).sum()


@register_task("binary")
class Binary(Task):
    """Targets 0/1 against one output: a logit (bce_logits) or a probability (sigmoid, bce)."""

    default_loss = "bce_logits"
    default_metrics = ["accuracy"]

    def loss_for(self, graph) -> str:
        return "bce" if last_op(graph) == "sigmoid" else "bce_logits"

    def loss(self, cfg, graph):
        self.metrics = {"accuracy": _binary_accuracy(0.5 if self.loss_for(graph) == "bce" else 0.0)}
        return super().loss(cfg, graph)

    def check(self, splits, out_shape) -> None:
        for a in (splits.train, splits.val, splits.test):
            if a is not None and len(a) and not bool(((a.y == 0) | (a.y == 1)).all()):
                raise TrainError("binary targets must be 0 or 1", "use task: classification for class labels")
        if len(out_shape) != 1 or out_shape[0] != 1:
            raise TrainError(f"the binary task needs one output, the network gives {list(out_shape)}")


@register_task("regression")
class Regression(Task):
    """Numeric targets of the output's shape; mean squared error."""

    default_loss = "mse"
    metrics = {"mae": lambda out, y: (out.reshape(y.shape) - y).abs().flatten(1).mean(1).sum()
               if y.dim() > 1 else (out.reshape(y.shape) - y).abs().sum()}
    default_metrics = ["mae"]

    def check(self, splits, out_shape) -> None:
        per = tuple(splits.train.y.shape[1:])
        if max(1, splits.train.y[0].numel()) != max(1, torch.Size(out_shape).numel()):
            raise TrainError(f"targets have shape {list(per)} but the network's output is {list(out_shape)}")
