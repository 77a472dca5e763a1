"""The language_model task: predict the next token at every position.

The network reads L token ids (an int64 input) and outputs (L, V) logits — at position i
the scores of the token at i + 1. The targets are the input shifted by one (the
``pysource`` windows, archc/train/data/text.py).

- Loss: cross-entropy over every position of the batch (``F.cross_entropy`` of the
  (N·L, V) logits against the (N·L) next tokens), in nats per token; ``nll`` when the
  network ends with ``log_softmax``.
- Metrics, from the mean loss (not averaged per batch): ``perplexity`` = e^loss and
  ``bpc`` = loss / ln 2, bits per character (per byte: the tokens are bytes). A model
  that knows nothing (uniform over 256 bytes) has loss ln 256 = 5.545, perplexity 256,
  8 bits per character. ``accuracy``: the share of next tokens that are the argmax.
- Training windows are drawn afresh every epoch from (seed, epoch), so a resumed run sees
  the windows the uninterrupted one saw.
"""

from __future__ import annotations

import math

import torch

from archc.train.errors import TrainError
from archc.train.loop import SupervisedTrainer, seeded
from archc.train.tasks import LOSSES, Meter, Task, last_op, register_task

LM_METRICS = ("perplexity", "bpc", "accuracy")


class LanguageModelMeter(Meter):
    """The mean loss per token, with perplexity and bits per character derived from it."""

    def __init__(self, names):
        fns = {"accuracy": lambda out, y: (out.argmax(-1) == y).float().mean(-1).sum()}
        super().__init__({k: v for k, v in fns.items() if k in names})
        self.names = list(names)

    def result(self, prefix: str = "") -> dict:
        out = super().result(prefix)
        loss = out[f"{prefix}loss"]
        derived = {"perplexity": math.exp(min(loss, 700.0)), "bpc": loss / math.log(2)}
        return out | {f"{prefix}{k}": v for k, v in derived.items() if k in self.names}


class LanguageModelTrainer(SupervisedTrainer):
    """The supervised loop, with new random training windows every epoch."""

    def train_epoch(self, epoch: int) -> dict:
        train = self.ctx.splits.train
        if hasattr(train, "draw"):  # TokenWindows: same draw on every DDP rank, then sharded
            train.draw(seeded(self.cfg.seed, epoch, 3))
        return super().train_epoch(epoch)


@register_task("language_model")
class LanguageModel(Task):
    """Next-token prediction: (L, V) logits against the input shifted by one."""

    default_loss = "cross_entropy"
    metrics = dict.fromkeys(LM_METRICS)
    default_metrics = ["perplexity", "bpc"]
    target_dtype = torch.long
    trainer = LanguageModelTrainer

    def loss_for(self, graph) -> str:
        return {"log_softmax": "nll"}.get(last_op(graph), "cross_entropy")

    def loss(self, cfg, graph):
        name = cfg.loss.name or self.loss_for(graph)
        if name not in ("cross_entropy", "nll"):
            raise TrainError(f"train.loss {name!r} does not apply to the language_model task",
                             "use cross_entropy (logits) or nll (log_softmax outputs)")
        per_token = LOSSES[name](cfg)
        return lambda out, y: per_token(out.reshape(-1, out.shape[-1]), y.reshape(-1))  # (N·L, V), (N·L)

    def meter(self, names) -> Meter:
        names = self.default_metrics if names is None else names
        unknown = [m for m in names if m not in LM_METRICS]
        if unknown:
            raise TrainError(f"train.metrics: {unknown[0]!r} is not a metric of the language_model task",
                             "metrics: " + ", ".join(LM_METRICS))
        return LanguageModelMeter(names)

    def data_shape(self, graph, cfg) -> tuple:
        if graph.input_dtype != "int64" or len(graph.input_shape) != 1:
            raise TrainError(f"the language_model task reads a sequence of token ids, but the spec's input "
                             f"is {list(graph.input_shape)} of {graph.input_dtype}",
                             "declare input: {shape: [L], dtype: int64, vocab: 256}")
        return tuple(graph.input_shape)

    def check(self, splits, out_shape) -> None:
        length = splits.train.x.shape[1]
        if len(out_shape) != 2 or out_shape[0] != length:
            raise TrainError(f"the language_model task needs logits of shape [{length}, vocab] (one row per "
                             f"input position), the network gives {list(out_shape)}",
                             "end the network with linear: {out: VOCAB} on the [L, width] features")
        top = max(int(a.y.max()) for a in (splits.train, splits.val) if a is not None)
        if top >= out_shape[1]:
            raise TrainError(f"the data's tokens go up to {top} but the network scores {out_shape[1]} tokens",
                             f"set the vocabulary to {top + 1} or more (bytes: 256)")
