"""Training a spec on real data (``archc train``, ``archc evaluate``); imports torch.

Modules: config (the effective, typed configuration), data/ (sources, splits, fitting,
batches), augment, tasks (loss + metrics + checks per task, a registry), optim
(optimizers, schedules, penalties, gradient noise), loop (the supervised trainer),
checkpoint (atomic files, RNG states), transfer (init-from, freeze), progress, plot,
run (a run from end to end). See docs/train.md.

>>> from archc.train import train                                    # doctest: +SKIP
>>> metrics, run_dir = train("specs/lenet5.yaml", epochs=2, out="runs/demo")  # doctest: +SKIP
"""

from __future__ import annotations

from archc.train.errors import TrainError

__all__ = ["train", "evaluate", "TrainError"]


def train(spec: str, network: str | None = None, *, overrides: dict | None = None, preset: str | None = None,
          out: str | None = None, resume: str | None = None, progress: str = "plain", overwrite: bool = False,
          **flags):
    """Train ``spec`` (path, ``FILE:NAME`` or zoo name) from its ``train:`` section; keyword
    ``flags`` override it as the command-line flags do (epochs, batch_size, lr, data, device,
    seed, init_from, freeze). ``out`` holding a run already is refused unless ``overwrite``.
    Returns (final metrics, run directory)."""
    from archc.train.run import Request
    from archc.train.run import train as run

    return run(Request(spec, network, overrides, preset, flags, out, resume, progress, overwrite))


def evaluate(spec: str, weights: str, network: str | None = None, *, overrides: dict | None = None,
             preset: str | None = None, split: str = "test", **flags) -> dict:
    """The loss and metrics of ``weights`` (a checkpoint or state_dict) on a split of the
    data (``test``, ``val``, ``train``) given by the spec's train: section and ``flags``."""
    import torch

    from archc.backends.torch.codegen import as_graph
    from archc.train import checkpoint as ckpt
    from archc.train.config import make_config
    from archc.train.loop import Context, SupervisedTrainer
    from archc.train.progress import Progress
    from archc.train.run import _task_data_model, pick_device

    graph = as_graph(spec, network, overrides, preset)
    cfg = make_config(graph.train, flags)
    device, quiet = pick_device(cfg.device), Progress("quiet")
    task, splits, model = _task_data_model(graph, cfg, device, quiet, fresh=False)
    part = {"test": splits.test, "val": splits.val, "train": splits.train}.get(split)
    if part is None:
        raise TrainError(f"the data has no {split} split", "choose --split test, val or train")
    from archc.backends.torch.weights import WeightsError, load_weights, refusal

    try:  # names, then order and shape, as everywhere (archc/backends/torch/weights.py)
        load_weights(model, ckpt.model_state(ckpt.load(weights, device)))
    except WeightsError as exc:
        raise TrainError(refusal(exc, f"--weights {weights}")) from None
    ctx = Context(cfg, graph, model, splits, task, device, None, quiet)
    with torch.no_grad():
        return {"split": split, "examples": len(part)} | SupervisedTrainer(ctx).evaluate(part, "")
