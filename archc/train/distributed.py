"""Distributed data parallel training through torch's own launcher — nothing home-made.

Two ways to start N processes, the same run either way::

    torchrun --nproc-per-node 2 -m archc train specs/lenet5.yaml --batch-size 64
    archc train specs/lenet5.yaml --batch-size 64 --nproc 2   # starts the line above itself

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT in each process;
:func:`setup` joins the process group from them (``init_method="env://"``) with the NCCL
backend when the run is on CUDA (one GPU per process: ``cuda:LOCAL_RANK``) and gloo on the
CPU. Without those variables (or with WORLD_SIZE 1) nothing here does anything.

What is the same as one process, and what is not:

- ``batch_size`` is the **global** batch: each of the N processes takes
  ``batch_size / N`` examples per step (it must divide), and DDP averages the gradients,
  so a step sees the same examples and the same mean gradient as one process with that
  batch. The epoch's order is the trainer's seeded permutation; rank r takes every N-th
  example of it from position r (archc.train.data.epoch_order, DistributedSampler's
  rule, padded by repeating the first examples when N does not divide the training set),
  so the global batch i holds exactly the examples that batch i holds on one process.
  With the same seed and no batch norm, dropout or augmentation, N processes compute the
  same weights as one, up to float rounding (tests/train/test_distributed.py).
- Batch norm normalises by each process's own part of the batch (as torch's DDP does
  without SyncBatchNorm); dropout and augmentation draw their own random numbers.
- Metrics are exact: every process sums its loss, counts and metric totals, and the sums
  are added across processes (``all_reduce``) before any division; validation and test
  splits are sharded the same way (without padding, so every example counts once).
- Only rank 0 writes files (config, checkpoints, metrics, curves) and prints progress; the
  others stay quiet. Checkpoints hold the plain module's state_dict (no ``module.``
  prefix), so a DDP run resumes, evaluates and exports like any other.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from dataclasses import dataclass

import torch

from archc.train.errors import TrainError

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class World:
    """This process's place: rank of size; ``device`` its accelerator (None: decide as usual)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None
    device: torch.device | None = None

    @property
    def active(self) -> bool:
        return self.size > 1


def launched() -> bool:
    """Whether this process was started by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main() -> bool:
    """Rank 0 (or no distribution): the process that prints and writes."""
    return int(os.environ.get("RANK", "0")) == 0


def setup(device_setting: str = "auto") -> World:
    """Join torchrun's process group (a no-op outside torchrun). Raises TrainError."""
    import torch.distributed as dist

    if not launched():
        return World()
    missing = [v for v in ENV_VARS if v not in os.environ]
    if missing:
        raise TrainError(f"WORLD_SIZE is set but {', '.join(missing)} is not",
                         "start the processes with torchrun (or archc train --nproc N)")
    rank, size, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    cuda = device_setting != "cpu" and torch.cuda.is_available()
    if device_setting.startswith("cuda") and not cuda:
        raise TrainError(f"--device {device_setting}: no CUDA device is available here", "use --device cpu or auto")
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    backend = "nccl" if cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, init_method="env://")
    return World(rank, size, local, backend, device)


def teardown(world: World) -> None:
    """Leave the process group cleanly (every rank, also after an error).

    The DDP wrapper must be gone first: one still alive when the group is destroyed aborts
    the process at exit ("terminate called without an active exception") while another
    rank is still running; it sits in a reference cycle, hence the collection."""
    import gc

    import torch.distributed as dist

    if world.active and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def rank_config(cfg, world: World):
    """The configuration one process trains with: ``batch_size`` its part of the global batch."""
    if not world.active:
        return cfg
    check_split(cfg.batch_size, world.size)
    return dataclasses.replace(cfg, batch_size=cfg.batch_size // world.size)


def check_split(batch_size: int, processes: int) -> None:
    """The global batch must split evenly over the processes (TrainError)."""
    if batch_size % processes:
        raise TrainError(f"train.batch_size {batch_size} (the global batch) does not split over "
                         f"{processes} processes", f"use a multiple of {processes}")


def check_before_launch(train_section, flags: dict, nproc: int) -> None:
    """What every worker would refuse at its first step, refused once before torchrun starts
    ``nproc`` of them (else each prints it, then torchrun its own traceback): the train
    section with the command's flags must convert, and its batch split over ``nproc``."""
    from archc.train.config import make_config

    check_split(make_config(train_section, flags).batch_size, nproc)


# --------------------------------------------------------------------------- progress


class Silent:
    """Progress of ranks other than 0: prints nothing. It keeps rank 0's ``mode``, because
    the loop reads the mode to choose how often it computes running metrics, and computing
    them is collective (every rank must do it as often)."""

    def __init__(self, mode: str):
        self.mode = mode

    def message(self, text: str) -> None:
        pass

    def start_epoch(self, *args) -> None:
        pass

    def update(self, *args) -> None:
        pass

    def end_epoch(self, *args) -> None:
        pass

    def close(self) -> None:
        pass


def progress_for(progress, world: World):
    """Rank 0's progress as it is; on the other ranks a silent one with rank 0's mode."""
    if not world.active:
        return progress
    import torch.distributed as dist

    mode = [progress.mode]
    dist.broadcast_object_list(mode, src=0)
    if world.rank == 0:
        return progress
    progress.close()
    return Silent(mode[0])


# --------------------------------------------------------------------------- the model


class _Forward:
    """Training forwards go through DDP (its backward all-reduces the gradients);
    evaluation forwards (no grad) call the plain module, so ranks may run different numbers
    of evaluation batches without waiting on each other."""

    def __init__(self, ddp, plain):
        self.ddp, self.plain = ddp, plain

    def __call__(self, x):
        return (self.ddp if torch.is_grad_enabled() else self.plain)(x)


def shard_model(model, graph, cfg, world: World) -> None:
    """``train.strategy: fsdp`` on several processes: shard ``model`` in place with FSDP2
    (archc/train/fsdp.py), before the trainer builds its optimizer over the shards."""
    if world.active and cfg.strategy == "fsdp":
        from archc.train import fsdp

        fsdp.shard(model, graph, world)


def wrap(trainer, world: World) -> None:
    """Make ``trainer`` (a SupervisedTrainer) train through DistributedDataParallel, or
    through its FSDP-sharded module (``train.strategy: fsdp``, sharded by :func:`shard_model`).

    ``trainer.model`` stays the plain module, so state_dicts keep their names."""
    if not world.active:
        return
    if not hasattr(trainer, "forward"):
        raise TrainError(f"the {trainer.ctx.task.name} task trains on one process", "leave out --nproc / torchrun")
    if trainer.cfg.strategy == "fsdp":
        from archc.train.fsdp import Sharding

        trainer.sharding = Sharding(trainer.model, world)  # its forward gathers, its backward reduce-scatters
        return
    from torch.nn.parallel import DistributedDataParallel

    ids = [world.device.index] if world.backend == "nccl" else None
    ddp = DistributedDataParallel(trainer.model, device_ids=ids)
    from archc.train.compiling import compiled

    ddp = compiled(ddp, trainer.cfg.compile)
    trainer.forward = _Forward(ddp, trainer.forward)


def sync_weights(model: torch.nn.Module, size: int) -> None:
    """Every rank takes rank 0's parameters and buffers (after rank 0 restored best.pt).
    FSDP's sharded parameters (DTensors) are left alone: each rank holds its own part."""
    if size <= 1:
        return
    import torch.distributed as dist
    from torch.distributed.tensor import DTensor

    with torch.no_grad():
        for tensor in list(model.parameters()) + list(model.buffers()):
            if not isinstance(tensor, DTensor):
                dist.broadcast(tensor.data, src=0)


# --------------------------------------------------------------------------- data and metrics


def shard(n: int, rank: int, size: int):
    """Every ``size``-th index of 0..n-1 from ``rank``, no padding (evaluation); None for one process."""
    if size <= 1:
        return None
    return torch.arange(rank, n, size)


def all_reduce_totals(n: int, loss, sums: dict):
    """(n, loss, sums) added over the ranks; unchanged on one process. One all_reduce of
    one float64 tensor; the sums may be numbers or tensors of any shape (a confusion matrix)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() <= 1:
        return n, loss, sums
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    values = [torch.as_tensor(n), torch.as_tensor(loss)] + [torch.as_tensor(v) for v in sums.values()]
    shapes = [v.shape for v in values]
    flat = torch.cat([v.detach().to(device, torch.float64).reshape(-1) for v in values])
    dist.all_reduce(flat)
    out, start = [], 0
    for shape, v in zip(shapes, values):
        size = shape.numel()  # 1 for a number
        out.append(flat[start:start + size].reshape(shape))
        start += size
    sums = {k: (t.round().long() if not torch.as_tensor(sums[k]).is_floating_point() else t)
            for k, t in zip(sums, out[2:])}
    return int(out[0].round()), out[1], sums


# --------------------------------------------------------------------------- the launcher


def launch_command(args: list[str], nproc: int) -> tuple[list[str], dict]:
    """The torchrun command line of ``archc ARGS`` in ``nproc`` processes, and its environment.

    ``python -m`` puts the current folder first on sys.path, so a ``click.py`` (or
    ``torch.py``) of the user's would be imported instead of the package, in the launcher
    and in each worker torchrun starts with ``python -m archc``: PYTHONSAFEPATH (Python
    3.11's ``-P``) is inherited by all of them and leaves the current folder out."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
               "-m", "archc", *args]
    return command, {**os.environ, "PYTHONSAFEPATH": "1"}


def launch(args: list[str], nproc: int) -> int:
    """Run ``archc ARGS`` in ``nproc`` processes through torchrun (``python -m
    torch.distributed.run --standalone``: one machine, a free port); returns its exit status."""
    command, env = launch_command(args, nproc)
    try:
        return subprocess.call(command, env=env)
    except KeyboardInterrupt:
        return 130


def passthrough_args(ctx, drop: tuple = ("nproc",)) -> list[str]:
    """The command line of click context ``ctx`` rebuilt from its parsed values, without
    the options named in ``drop`` (the launcher's own ``--nproc``)."""
    args = [ctx.info_name]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if param.name in drop or value is None or value is False or value == ():
            continue
        if param.param_type_name == "argument":
            args.append(str(value))
            continue
        flag = max(param.opts, key=len)
        if getattr(param, "is_flag", False):
            args.append(flag)
        else:
            for item in value if getattr(param, "multiple", False) else [value]:
                args += [flag, str(item)]
    return args
