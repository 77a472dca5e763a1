"""The supervised training loop: epochs of mini-batches, validation, checkpoints, stopping.

:class:`SupervisedTrainer` is the loop for every task with one network and one loss
(classification, binary, regression; segmentation only changes the task). A task with a
different loop (GAN) provides its own trainer class with the same four methods
(``fit``, ``evaluate``, ``state_dict``, ``load_state_dict``); :func:`make_trainer` picks it.

Reproducibility: the example order and the augmentation/gradient-noise draws of epoch e
come from generators seeded by (seed, e); dropout uses torch's global generator, whose
state is saved in every checkpoint. So a run resumed from the checkpoint of epoch e
computes exactly what the uninterrupted run computed (on CPU, deterministic algorithms).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from archc.train import augment as aug
from archc.train import checkpoint as ckpt
from archc.train.compiling import compiled
from archc.train.data import Arrays, batches, epoch_order
from archc.train.distributed import shard, sync_weights
from archc.train.errors import TrainError
from archc.train.fsdp import by_index
from archc.train.optim import Schedule, add_grad_noise, make_optimizer, penalty


@dataclass
class Context:
    """Everything a trainer needs. ``rank``/``world`` are the DDP hooks: rank 0 writes
    files; each rank trains on its shard of the epoch order."""

    cfg: object                  # TrainConfig
    graph: object                # the analysed Graph
    model: torch.nn.Module
    splits: object               # archc.train.data.Splits
    task: object                 # archc.train.tasks.Task
    device: torch.device
    run_dir: Path | None
    progress: object             # archc.train.progress.Progress
    rank: int = 0
    world: int = 1
    extra: dict = field(default_factory=dict)

    @property
    def writes(self) -> bool:
        return self.run_dir is not None and self.rank == 0


def make_trainer(ctx: Context):
    cls = getattr(ctx.task, "trainer", None) or SupervisedTrainer
    return cls(ctx)


def seeded(seed: int, epoch: int, stream: int) -> torch.Generator:
    """A CPU generator for one purpose (stream) of one epoch."""
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 7 + stream)


def monitor_of(cfg, task, has_val: bool) -> tuple[str, str]:
    """(name, mode) of the value that early stopping and best.pt watch."""
    name = cfg.early_stopping.monitor or (task.monitor[0] if has_val else "train_loss")
    mode = cfg.early_stopping.mode or ("min" if any(w in name for w in ("loss", "mae", "mse", "error", "perplexity", "bpc")) else "max")
    return name, mode


class AmpPolicy:
    """Mixed precision: bf16 on GPUs that support it, fp16 with a GradScaler otherwise; off on CPU."""

    def __init__(self, setting, device: torch.device):
        self.dtype = None
        if device.type == "cuda" and setting not in (False, "off", "false"):
            if setting in ("auto", True, "bf16") and torch.cuda.is_bf16_supported():
                self.dtype = torch.bfloat16
            elif setting in ("auto", True, "fp16", "bf16"):
                self.dtype = torch.float16
        elif setting in ("bf16",) and device.type == "cpu":
            self.dtype = torch.bfloat16  # asked for explicitly: CPU autocast supports bf16
        self.device_type = device.type
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype is torch.float16 else None

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)


class SupervisedTrainer:
    def __init__(self, ctx: Context):
        self.ctx, cfg = ctx, ctx.cfg
        self.cfg, self.model, self.device = cfg, ctx.model, ctx.device
        self.loss_fn = ctx.task.loss(cfg, ctx.graph)
        self.metric_names = cfg.metrics if cfg.metrics is not None else ctx.task.default_metrics
        ctx.task.meter(self.metric_names)  # refuses unknown metrics before any training
        self.optimizer = make_optimizer(self.model.parameters(), cfg.optimizer)
        self.monitor, self.mode = monitor_of(cfg, ctx.task, ctx.splits.val is not None)
        self.schedule = Schedule(self.optimizer, cfg.schedule, cfg.epochs, self.mode)
        self.amp = AmpPolicy(cfg.amp, self.device)
        self.forward = compiled(self.model, cfg.compile)  # after channels_last: the graph sees NHWC
        self.channels_last = cfg.channels_last and self.device.type == "cuda"
        self.epoch, self.step, self.history = 0, 0, []
        self.best, self.best_epoch, self.bad_epochs = None, None, 0
        self.sharding = None  # FSDP (archc/train/fsdp.py): states are gathered, evaluation runs in lockstep

    # ----------------------------------------------------------------- state

    def state_dict(self) -> dict:
        """The trainer's state; under FSDP a collective call, complete on rank 0 only."""
        model, optimizer = (self.sharding.states(self.optimizer) if self.sharding
                            else (self.model.state_dict(), self.optimizer.state_dict()))
        return {"model": model, "optimizer": optimizer,
                "schedule": self.schedule.state_dict(), "epoch": self.epoch, "step": self.step,
                "history": self.history, "best": self.best, "best_epoch": self.best_epoch,
                "bad_epochs": self.bad_epochs, "rng": ckpt.rng_state(),
                "scaler": self.amp.scaler.state_dict() if self.amp.scaler else None}

    def load_state_dict(self, state: dict) -> None:
        if self.sharding:
            self.sharding.load(self.optimizer, state["model"], state["optimizer"])
        else:  # an FSDP run's optimizer state is keyed by parameter name
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(by_index(self.model, self.optimizer, state["optimizer"]))
        self.schedule.load_state_dict(state["schedule"])
        self.epoch, self.step, self.history = state["epoch"], state["step"], list(state["history"])
        self.best, self.best_epoch, self.bad_epochs = state["best"], state["best_epoch"], state["bad_epochs"]
        if self.amp.scaler and state.get("scaler"):
            self.amp.scaler.load_state_dict(state["scaler"])
        ckpt.set_rng_state(state["rng"])

    # ----------------------------------------------------------------- one epoch

    def _inputs(self, x):
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def train_epoch(self, epoch: int) -> dict:
        ctx, cfg = self.ctx, self.cfg
        train = ctx.splits.train
        order = epoch_order(len(train), cfg.seed, epoch, ctx.rank, ctx.world)
        g_aug, g_noise = seeded(cfg.seed, epoch, 1), seeded(cfg.seed, epoch, 2)
        meter = ctx.task.meter(self.metric_names)
        steps = math.ceil(len(order) / cfg.batch_size)
        every = max(1, steps // 50) if ctx.progress.mode == "rich" else steps
        ctx.progress.start_epoch(epoch + 1, cfg.epochs, steps)
        self.model.train()
        params = [p for p in self.model.parameters() if p.requires_grad]
        do_aug = aug.active(cfg.augment)
        for i, (x, y) in enumerate(self.loader(train, order), 1):
            if do_aug:
                x, y = ctx.task.augment(x, y, cfg.augment, g_aug)
            y = ctx.task.targets(y)
            loss, out = self.train_step(self._inputs(x), y, params, g_noise)
            meter.update(out.detach(), y, loss.detach())
            if i % every == 0 or i == steps:
                running = meter.result()
                self._check_finite(running["loss"], epoch, i)
                metric = next(((k, v) for k, v in running.items() if k != "loss"), None)
                ctx.progress.update(i, meter.n, running["loss"], metric)
        return meter.result("train_")

    def train_step(self, x, y, params, g_noise):
        """One optimisation step; returns (loss, output)."""
        cfg = self.cfg
        self.optimizer.zero_grad(set_to_none=True)
        with self.amp.autocast():
            out = self.forward(x)
            loss = self.loss_fn(out.float() if self.amp.dtype else out, y)
        extra = penalty(self.model, cfg.penalties)
        total = loss if extra is None else loss + extra
        scaler = self.amp.scaler
        (scaler.scale(total) if scaler else total).backward()
        if scaler and (cfg.clip_grad_norm or cfg.grad_noise.std):
            scaler.unscale_(self.optimizer)
        if cfg.grad_noise.std:
            add_grad_noise(params, cfg.grad_noise, self.step, g_noise)
        if cfg.clip_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad_norm)
        if scaler:
            scaler.step(self.optimizer)
            scaler.update()
        else:
            self.optimizer.step()
        self.step += 1
        return loss, out

    def loader(self, a: Arrays, order=None):
        """Batches on the device: straight from memory, or through a DataLoader with
        ``workers`` processes (and pinned memory on CUDA)."""
        pin = self.device.type == "cuda"
        if self.cfg.workers <= 0:
            return batches(a, self.cfg.batch_size, order, self.device, pin)
        from torch.utils.data import DataLoader, TensorDataset

        index = order if order is not None else torch.arange(len(a))
        chunks = [index[i:i + self.cfg.batch_size].tolist() for i in range(0, len(index), self.cfg.batch_size)]
        dl = DataLoader(TensorDataset(a.x, a.y), batch_sampler=chunks, num_workers=self.cfg.workers,
                        pin_memory=pin, persistent_workers=False)
        return ((x.to(self.device, non_blocking=pin), y.to(self.device, non_blocking=pin)) for x, y in dl)

    def _check_finite(self, loss: float, epoch: int, step: int) -> None:
        if not math.isfinite(loss):
            where = f"{self.ctx.run_dir / 'last.pt'}" if self.ctx.writes and self.history else None
            keep = f"the last good checkpoint is {where}" if where else "no checkpoint was written"
            raise TrainError(f"the loss became {loss} in epoch {epoch + 1} (batch {step}); training stopped, "
                             f"{keep}", "lower the learning rate, or clip gradients (train.clip_grad_norm)")

    @torch.no_grad()
    def evaluate(self, a: Arrays, prefix: str = "val_") -> dict:
        """Loss and metrics over ``a`` (eval mode, no augmentation)."""
        meter = self.ctx.task.meter(self.metric_names)
        self.model.eval()
        batches = 0
        for x, y in self.loader(a, shard(len(a), self.ctx.rank, self.ctx.world)):  # DDP: this rank's part
            y = self.ctx.task.targets(y)
            with self.amp.autocast():
                out = self.forward(self._inputs(x))
                loss = self.loss_fn(out.float() if self.amp.dtype else out, y)
            meter.update(out.float(), y, loss)
            batches += 1
        if self.sharding:  # FSDP: forwards are collective; follow rank 0's batch count
            with self.amp.autocast():
                self.sharding.lockstep(self.forward, a, self.cfg.batch_size, batches, self._inputs)
        return meter.result(prefix)

    # ----------------------------------------------------------------- the run

    def fit(self) -> dict:
        """Train from ``self.epoch`` to the configured epochs (or an early stop); returns
        the final metrics (the best model's, on the test split when there is one)."""
        ctx, cfg = self.ctx, self.cfg
        stop = False
        while self.epoch < cfg.epochs and not stop:
            t0 = time.perf_counter()
            lr = self.schedule.start_epoch(self.epoch)
            record = {"epoch": self.epoch + 1} | self.train_epoch(self.epoch)
            if ctx.splits.val is not None:
                record |= self.evaluate(ctx.splits.val)
            self._check_finite(record["train_loss"], self.epoch, -1)
            record |= {"lr": lr, "time": round(time.perf_counter() - t0, 4)}
            self.history.append(record)
            self.epoch += 1
            improved = self._watch(record)
            stop = cfg.early_stopping.patience is not None and self.bad_epochs > cfg.early_stopping.patience
            self.schedule.observe(record.get(self.monitor))
            self._save(improved)
            ctx.progress.end_epoch(record)
        if stop:
            ctx.progress.message(f"early stop: {self.monitor} did not improve for {self.bad_epochs} epochs")
        return self.final_metrics(stopped_early=stop)

    def _watch(self, record: dict) -> bool:
        value = record.get(self.monitor)
        if value is None:
            raise TrainError(f"train.early_stopping.monitor {self.monitor!r} is not a metric of this run",
                             "metrics: " + ", ".join(k for k in record if k not in ("epoch",)))
        delta = self.cfg.early_stopping.min_delta
        better = self.best is None or (value < self.best - delta if self.mode == "min" else value > self.best + delta)
        if better:
            self.best, self.best_epoch, self.bad_epochs = value, self.epoch, 0
        else:
            self.bad_epochs += 1
        return better

    def _save(self, improved: bool) -> None:
        """best.pt (when the monitored value improved), then last.pt, then metrics.jsonl."""
        if not self.ctx.writes and not (self.sharding and self.ctx.run_dir is not None):
            return
        state = self.state_dict()  # FSDP: every rank takes part in the gathering
        if not self.ctx.writes:
            return
        d = self.ctx.run_dir
        if improved:
            ckpt.save(d / "best.pt", {"model": state["model"], "epoch": self.epoch, "metrics": self.history[-1]})
        ckpt.save(d / "last.pt", state)
        lines = "".join(json.dumps(r) + "\n" for r in self.history)
        ckpt.write_atomic(d / "metrics.jsonl", lines.encode())

    def final_metrics(self, stopped_early: bool = False) -> dict:
        """Restore the best model (hold-out) and measure it on the test split."""
        ctx = self.ctx
        out = {"epochs_run": self.epoch, "stopped_early": stopped_early, "monitor": self.monitor,
               "best_epoch": self.best_epoch, "best": self.best}
        if self.sharding and ctx.run_dir is not None and self.best_epoch not in (None, self.epoch):
            best = ckpt.load(ctx.run_dir / "best.pt")["model"] if ctx.writes else None
            self.sharding.load_from_rank0(best)  # FSDP: every rank's shards of rank 0's best model
        elif ctx.writes and (ctx.run_dir / "best.pt").exists() and self.best_epoch != self.epoch:
            self.model.load_state_dict(ckpt.load(ctx.run_dir / "best.pt", self.device)["model"])
        sync_weights(self.model, ctx.world)  # DDP: every rank measures rank 0's (best) model
        if self.history:
            out |= {k: v for k, v in self.history[(self.best_epoch or self.epoch) - 1].items()
                    if k.startswith(("train_", "val_"))}
        if ctx.splits.test is not None:
            out |= self.evaluate(ctx.splits.test, "test_")
        return out
