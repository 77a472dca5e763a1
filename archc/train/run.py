"""A training run from end to end: spec -> config -> data -> model -> run directory -> trainer.

The run directory holds::

    config.json    the effective configuration (spec, overrides, the train settings)
    last.pt        the state after the last finished epoch (model, optimizer, schedule, RNG)
    best.pt        the model with the best monitored value so far
    metrics.jsonl  one line of metrics per epoch
    metrics.json   the final metrics (the best model on the test split)
    curves.png     loss and metric curves (when matplotlib is installed)
"""

from __future__ import annotations

import json
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from archc.printable import printable
from archc.train import checkpoint as ckpt
from archc.train.config import from_json, make_config, to_json
from archc.train.errors import TrainError


@dataclass
class Request:
    """What the user asked for (the CLI's arguments, or the Python API's)."""

    spec: str | None = None
    network: str | None = None
    overrides: dict | None = None
    preset: str | None = None
    flags: dict | None = None      # epochs, batch_size, lr, data, device, seed, init_from, freeze
    out: str | None = None
    resume: str | None = None
    progress: str = "auto"         # auto | plain | quiet
    overwrite: bool = False        # --out onto an existing run replaces it (else refused)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainError(f"--device {name}: no CUDA device is available here", "use --device cpu or auto")
    if name == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise TrainError("--device mps: not available here", "use --device cpu or auto")
    return torch.device(name)


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


SMALL_BATCH_MACS = 2e9  # below this, one CPU thread beats several (thread start-up per op)


def cpu_threads(cfg, graph, device) -> int | None:
    """The CPU threads for torch: ``train.threads`` if given; else, on the CPU and when
    OMP_NUM_THREADS is not set, 1 for a small network (a batch under 2 GMACs — LeNet-5's
    is 0.01), whose ops are too short to share between threads (3× slower with 2 threads on
    a busy 2-core machine, docs/benchmarks.md); otherwise torch's default. Returns what it set."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
        return cfg.threads
    if device.type != "cpu" or "OMP_NUM_THREADS" in os.environ:
        return None
    if graph.summary.macs * cfg.batch_size < SMALL_BATCH_MACS:
        torch.set_num_threads(1)
        return 1
    return None


def new_run_dir(name: str) -> Path:
    """runs/NAME, or runs/NAME-2 ... when taken. NAME is the spec's free-text ``name``: only
    its letters, digits, ``-``, ``_`` and inner dots are kept, so that a name such as
    ``../../x`` or ``/etc`` cannot put the run outside runs/ (SECURITY.md)."""
    base = Path("runs")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip(".") or "run"
    for n in range(1, 10_000):
        d = base / (name if n == 1 else f"{name}-{n}")
        if not d.exists():
            return d
    raise TrainError("runs/ is full of runs of this name", "give --out RUN_DIR")


def make_run_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrainError(f"cannot create the run directory {path}: {exc.strerror or exc}",
                         "choose a writable place with --out") from None
    if not os.access(path, os.W_OK):
        raise TrainError(f"the run directory {path} is not writable", "choose a writable place with --out")
    return path


def _settings(req: Request):
    """(graph, cfg, run_dir, resume state or None)."""
    from archc.backends.torch.codegen import as_graph
    from archc.train.gan import main_network

    if req.resume:
        run_dir = Path(req.resume)
        saved = _read_config(run_dir)
        spec = req.spec or saved["spec"]
        # the run's own network, overrides and preset (config.json is rewritten with them)
        req.network, req.overrides, req.preset = (req.network or saved.get("network"), saved.get("overrides") or None,
                                                  saved.get("preset"))
        graph = as_graph(spec, req.network or main_network(spec, req.overrides, req.preset), req.overrides,
                         req.preset)
        if saved.get("spec_hash") and graph.spec_hash != saved["spec_hash"]:
            raise TrainError(f"the spec {spec} changed since the run in {run_dir} started",
                             "resume with the same spec, or start a new run")
        for stale in run_dir.glob(".*.tmp"):  # a write the kill interrupted: never a checkpoint
            stale.unlink(missing_ok=True)
        cfg = from_json(saved["train"])
        if req.flags and req.flags.get("epochs"):
            cfg.epochs = req.flags["epochs"]  # more epochs: a setting a resume may change
        if req.flags and req.flags.get("strategy"):
            cfg.strategy = req.flags["strategy"]  # and how processes share the work (not what they compute)
        state = ckpt.load(run_dir / "last.pt")
        done = state.get("epoch", 0) if isinstance(state, dict) else 0
        if done >= cfg.epochs:  # nothing left to run: say so rather than only re-test
            asked = f" (--epochs {cfg.epochs} asks for no more)" if req.flags and req.flags.get("epochs") else ""
            raise TrainError(f"--resume {run_dir}: the run already finished its {done} epochs{asked}",
                             f"give --epochs M, more than {done}, to go on (e.g. --epochs {2 * done})")
        return graph, cfg, run_dir, state
    network = req.network or main_network(req.spec, req.overrides, req.preset)  # a GAN file: its generator
    graph = as_graph(req.spec, network, req.overrides, req.preset)
    cfg = make_config(graph.train, req.flags)
    run_dir = Path(req.out) if req.out else new_run_dir(graph.name)
    if req.out and not req.overwrite and os.environ.get("RANK", "0") == "0":
        refuse_existing_run(run_dir)  # rank 0 only: under torchrun, rank 0 may have begun writing it
    return graph, cfg, run_dir, None


RUN_FILES = ("config.json", "last.pt", "best.pt", "metrics.csv", "metrics.jsonl")


def refuse_existing_run(run_dir: Path) -> None:
    """A run directory that already holds a run is never silently replaced."""
    found = [name for name in RUN_FILES if (run_dir / name).exists()]
    if found:
        raise TrainError(f"--out {run_dir} already holds a run ({', '.join(found)})",
                         f"continue it with --resume {run_dir}, replace it with --overwrite, "
                         "or leave --out out for a fresh runs/NAME-N")


# config.json's keys a resume reads, and the JSON types they must have
CONFIG_TYPES = {"spec": str, "train": dict, "network": (str, type(None)), "overrides": (dict, type(None)),
                "preset": (str, type(None))}


def _read_config(run_dir: Path) -> dict:
    path = run_dir / "config.json"
    if not run_dir.is_dir():
        raise TrainError(f"--resume {run_dir}: no such run directory", "give the folder archc train wrote")
    if not (run_dir / "last.pt").exists():
        raise TrainError(f"--resume {run_dir}: no last.pt there (no epoch had finished)",
                         "start the run again without --resume")
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TrainError(f"--resume {run_dir}: cannot read config.json ({exc})") from None
    wrong = [key for key, kind in CONFIG_TYPES.items() if not isinstance(saved, dict)
             or not isinstance(saved.get(key), kind)]
    if wrong:
        what = "not a JSON object" if not isinstance(saved, dict) else f"wrong or missing {', '.join(wrong)}"
        raise TrainError(f"--resume {run_dir}: config.json is not an archc run's ({what})",
                         "resume a folder written by archc train, or start the run again without --resume")
    return saved


def train(req: Request) -> tuple[dict, Path]:
    """Run the request; returns (final metrics, run directory). Raises TrainError/SpecErrors.

    Under torchrun this process is one rank of a DDP run (archc/train/distributed.py)."""
    from archc.train import distributed

    settings = _settings(req)
    world = distributed.setup(settings[1].device)  # rank 0 of 1 unless torchrun started us
    threads = torch.get_num_threads()
    try:
        return _train(req, *settings, world)
    finally:
        torch.set_num_threads(threads)  # cpu_threads' choice ends with the run (API callers)
        distributed.teardown(world)


def _train(req: Request, graph, cfg, run_dir: Path, resume_state, world) -> tuple[dict, Path]:
    from archc.analysis.budget import check_training
    from archc.train import distributed
    from archc.train.loop import Context, make_trainer
    from archc.train.progress import Progress

    progress = distributed.progress_for(Progress(req.progress), world)
    device = world.device or pick_device(cfg.device)
    partner = None
    if cfg.task == "gan" and graph.name in (cfg.gan.generator, cfg.gan.discriminator):
        from archc.train.gan import partner_graph

        partner = partner_graph(graph, cfg, req)  # trained in the same step: counted with it
    check_training(graph, cfg, str(device), world.size, partner)  # a step that cannot fit: refused before the data
    progress.message(_banner(graph, cfg, device, run_dir))  # before the data and the model: a second after torch
    seed_everything(cfg.seed, cfg.deterministic)
    cpu_threads(cfg, graph, device)
    task, splits, model = _task_data_model(graph, cfg, device, progress, fresh=resume_state is None)
    if world.rank == 0:
        make_run_dir(run_dir)
        ckpt.write_json(run_dir / "config.json", _config_json(req, graph, cfg, splits))
    distributed.shard_model(model, graph, cfg, world)  # FSDP: before the optimizer sees the parameters
    ctx = Context(distributed.rank_config(cfg, world), graph, model, splits, task, device, run_dir, progress,
                  world.rank, world.size, {"request": req})
    trainer = make_trainer(ctx)
    distributed.wrap(trainer, world)
    if resume_state is not None:
        trainer.load_state_dict(resume_state)
        progress.message(f"resuming {run_dir} after epoch {trainer.epoch}")
    progress.message(_data_line(cfg, splits))
    try:
        if world.rank == 0:
            from archc.train.plot import preload

            preload()
        metrics = trainer.fit()
    finally:
        progress.close()
    if world.rank != 0:
        return metrics, run_dir
    ckpt.write_json(run_dir / "metrics.json", metrics)
    _curves(run_dir, trainer.history, progress)
    return metrics, run_dir


def _task_data_model(graph, cfg, device, progress, fresh: bool):
    """The task, the checked data splits, and the model on its device (transfer applied)."""
    from archc.backends.torch.build import build
    from archc.train.data import prepare
    from archc.train.tasks import get_task
    from archc.train.transfer import freeze, init_from

    task = get_task(cfg.task)
    splits = prepare(cfg, task.data_shape(graph, cfg))
    task.check(splits, tuple(graph.shape_of(graph.outputs[0])))
    model = build(graph, seed=cfg.seed)
    if cfg.init_from and fresh:
        init_from(model, cfg.init_from, progress.message)
    if cfg.freeze:
        freeze(model, cfg.freeze, progress.message)
    model = model.to(device)
    if cfg.channels_last and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return task, splits, model


def _config_json(req: Request, graph, cfg, splits) -> dict:
    import archc

    spec = str(Path(graph.file).resolve()) if graph.file and Path(graph.file).exists() else req.spec
    return {"archc": archc.__version__, "spec": spec,
            "network": req.network, "overrides": req.overrides or {}, "preset": req.preset,
            "spec_hash": graph.spec_hash, "train": to_json(cfg),
            "data": {"train": len(splits.train), "val": len(splits.val) if splits.val is not None else 0,
                     "test": len(splits.test) if splits.test is not None else 0,
                     "classes": splits.classes, "normalize": splits.normalize}}


def _banner(graph, cfg, device, run_dir) -> str:
    # the name and the data source are the spec's text: shown escaped on the terminal
    return printable(f"training {graph.name} ({graph.summary.total_params:,} parameters) on {cfg.data.source} "
                     f"for {cfg.epochs} epochs on {device}; run: {run_dir}")


def _data_line(cfg, splits) -> str:
    n = lambda a: len(a) if a is not None else 0  # noqa: E731
    notes = "".join(f"; {note}" for note in splits.notes)
    return printable(f"data: {cfg.data.source}: {n(splits.train)} train, {n(splits.val)} val, {n(splits.test)} test"
                     + notes)


def _curves(run_dir: Path, history: list, progress) -> None:
    from archc.train.plot import write_curves

    note = write_curves(run_dir / "curves.png", history)
    if note:
        progress.message(note)
