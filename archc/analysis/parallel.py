"""The memory of one training process among N (``archc plan --nproc N --strategy ddp|fsdp``).

``batch_size`` is the global batch: each process takes ``batch / N`` examples per step
(archc/train/distributed.py ``rank_config``; N must divide it), so its activations are those
of the one-process plan at that batch (archc/analysis/memory.py).

**DDP** (``torch.nn.parallel.DistributedDataParallel`` as archc builds it, without
``gradient_as_bucket_view``): every process holds the whole model, its gradients and
optimizer state, and besides the gradients DDP's reducer keeps its own flat *buckets*
holding one more copy of every trainable gradient (it all-reduces there and copies back
into ``p.grad``: the two do not share storage — measured on CPU gloo,
tests/analysis/test_parallel.py). So DDP counts the gradients twice.

**FSDP2** (``torch.distributed.fsdp.fully_shard``, archc/train/fsdp.py): every parameter
is split along dim 0 in ``c = ceil(rows / N)`` rows per process (torch.chunk's rule; the
last processes may get fewer rows or none) and each process allocates ``c`` rows, padded
(FSDP2's ``padded_sharded_param_size``). A parameter's gradient is the same padded shard
(a view into the unit's reduce-scatter output). The optimizer state is created like the
local shard, unpadded: process 0 holds the most (``c`` rows of each), and the figures
here are process 0's — the largest. Buffers are whole on every process. While a unit runs
forward or backward its full parameters are gathered (padded: ``c * N`` rows each), and
FSDP2 prefetches the next unit's (the previous one's in backward), so two neighbouring
units are whole at once; the root unit (the layers outside every wrapped block) stays
gathered from the start of forward to the end of backward. In backward a unit's full
gradients exist until they are reduce-scattered, and the root's until the end of backward.
The peak adds all of that: an upper bound, as the one-process plan's is.

Not counted: the all-gather's flat buffer (copied out into the unit's parameters, then
freed), the reduce-scatter's input, NCCL's own buffers, fragmentation. The units and
their parameter shapes come from the module built on torch's ``meta`` device with archc's
own wrapping rules (:func:`fsdp_layout`: the one place torch is imported here).
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field, replace

from archc.analysis.memory import FP32, MARGIN, MemoryPlan, Settings, largest_batch, optimizer_bytes, plan, \
    step_temporaries
from archc.ir.graph import Graph

STRATEGIES = ("ddp", "fsdp")


@dataclass(frozen=True)
class Param:
    shape: tuple
    trainable: bool

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Unit:
    """An FSDP wrapping unit: its module path ("" for the root) and its parameters."""

    name: str
    params: tuple[Param, ...]


@dataclass
class ProcessPlan:
    """One process's share (process 0's, the largest), every size in bytes."""

    strategy: str
    nproc: int
    batch: int  # examples per process and step
    params: int
    gradients: int
    optimizer_state: int
    buffers: int
    activations: int
    transient: int
    buckets: int = 0  # DDP's gradient buckets
    gathered: int = 0  # FSDP: full parameters of the root and of the two largest neighbouring units
    unsharded_gradients: int = 0  # FSDP: the root's and the largest unit's full gradients in backward
    largest_unit: str | None = None
    units: int = 0
    one: MemoryPlan | None = field(default=None, repr=False)  # the one-process plan at this batch

    @property
    def peak(self) -> int:
        return (self.params + self.gradients + self.optimizer_state + self.buffers + self.activations
                + self.transient + self.buckets + self.gathered + self.unsharded_gradients)


def process_batch(batch: int, nproc: int) -> int:
    """Examples per process: the global batch split as training splits it."""
    if batch % nproc:
        raise ValueError(f"train.batch_size {batch} (the global batch) does not split over {nproc} "
                         f"processes — use a multiple of {nproc}")
    return batch // nproc


def ddp(graph: Graph, settings: Settings, nproc: int) -> ProcessPlan:
    """Each process: the whole model at batch / N, plus DDP's buckets (one more copy of the gradients)."""
    one = plan(graph, replace(settings, batch=process_batch(settings.batch, nproc)))
    return ProcessPlan("ddp", nproc, one.settings.batch, one.params, one.gradients, one.optimizer_state,
                       one.buffers, one.activations, one.transient, buckets=one.gradients if nproc > 1 else 0,
                       one=one)


# --------------------------------------------------------------------------- FSDP


def shard_rows(rows: int, nproc: int, rank: int = 0) -> int:
    """Rows of dim 0 that process ``rank`` holds (torch.chunk: ceil(rows / N) each, the last fewer)."""
    c = -(-rows // nproc)
    return max(0, min(c, rows - rank * c))


def shard_numel(p: Param, nproc: int, rank: int = 0) -> int:
    """Values of ``p`` on process ``rank``, unpadded (what ``p.to_local()`` holds)."""
    if not p.shape:
        return p.numel if rank == 0 else 0
    return shard_rows(p.shape[0], nproc, rank) * (p.numel // p.shape[0])


def padded_numel(p: Param, nproc: int) -> int:
    """Values allocated per process for ``p``'s shard: ceil(rows / N) rows on every process."""
    return shard_numel(p, nproc, 0)


def shard_bytes(units: list[Unit], nproc: int, rank: int, settings: Settings) -> dict:
    """Bytes of process ``rank``'s local shards (unpadded) after one step: parameters,
    gradients, optimizer state — what ``to_local()`` of each DTensor holds."""
    params = [p for u in units for p in u.params]
    trainable = [p for p in params if p.trainable]
    values = sum(shard_numel(p, nproc, rank) for p in trainable)
    return {"params": FP32 * sum(shard_numel(p, nproc, rank) for p in params),
            "gradients": FP32 * values,
            "optimizer_state": optimizer_bytes(settings, values, len(trainable))}


def fsdp(graph: Graph, settings: Settings, nproc: int, units: list[Unit] | None = None) -> ProcessPlan:
    """Process 0's memory under FSDP2 with archc's wrapping units (``units``: :func:`fsdp_layout`)."""
    units = units if units is not None else fsdp_layout(graph, settings.frozen)
    one = plan(graph, replace(settings, batch=process_batch(settings.batch, nproc)))
    params = [p for u in units for p in u.params]
    trainable = [p for p in params if p.trainable]
    values = sum(padded_numel(p, nproc) for p in trainable)  # the padded gradient shards
    gathered, unsharded, largest = _gathered(units, nproc)
    largest_activation = max((n.output_bytes for n in one.nodes), default=0)
    return ProcessPlan(
        "fsdp", nproc, one.settings.batch,
        params=FP32 * sum(padded_numel(p, nproc) for p in params), gradients=FP32 * values,
        optimizer_state=optimizer_bytes(settings, sum(shard_numel(p, nproc) for p in trainable), len(trainable)),
        buffers=one.buffers, activations=one.activations,
        transient=max(2 * largest_activation, step_temporaries(settings, values)),
        gathered=gathered, unsharded_gradients=unsharded, largest_unit=largest,
        units=sum(1 for u in units if u.name), one=one)


def _gathered(units: list[Unit], nproc: int) -> tuple[int, int, str | None]:
    """(full parameters gathered at once, full gradients before their reduce-scatter, the
    largest unit): the root's whole step long, plus the two largest neighbouring units (the
    running one and the prefetched one), and in backward the largest unit's gradients."""
    def full(ps) -> int:  # all-gathered: the padded shard of every process
        return FP32 * sum(padded_numel(p, nproc) * nproc for p in ps)

    root = next((u for u in units if u.name == ""), Unit("", ()))
    wrapped = [u for u in units if u.name]
    if not wrapped:
        return full(root.params), full(p for p in root.params if p.trainable), None
    pairs = [full(a.params) + full(b.params) for a, b in zip(wrapped, wrapped[1:])] or [full(wrapped[0].params)]
    grads = max(full(p for p in u.params if p.trainable) for u in wrapped)
    largest = max(wrapped, key=lambda u: full(u.params)).name
    return (full(root.params) + max(pairs), full(p for p in root.params if p.trainable) + grads, largest)


def fsdp_layout(graph: Graph, frozen=()) -> list[Unit]:
    """The root and the wrapping units archc/train/fsdp.py makes, with their parameters'
    shapes, from the module built on the ``meta`` device (no memory, no initialisation).
    ``frozen``: node names whose parameters do not train (train.freeze, resolved)."""
    try:
        import torch
    except ImportError:
        raise ValueError("--strategy fsdp lays out its units with torch, which is not installed here "
                         "— install torch, or plan --strategy ddp") from None

    from archc.backends.torch.build import build
    from archc.train.fsdp import _shared_outside, unit_layers, wrapping_units

    with torch.device("meta"):
        model = build(graph)
    for name in frozen:
        for p in model.get_submodule(name).parameters():
            p.requires_grad_(False)
    taken: set[int] = set()
    units = []
    for path in wrapping_units(graph):
        layers = unit_layers(model, path)
        if layers and not _shared_outside(model, path):
            mine = [p for layer in layers for p in layer.parameters() if id(p) not in taken]
            taken.update(id(p) for p in mine)
            units.append(Unit(path, tuple(Param(tuple(p.shape), p.requires_grad) for p in mine)))
    rest = [p for p in model.parameters() if id(p) not in taken]
    return [Unit("", tuple(Param(tuple(p.shape), p.requires_grad) for p in rest)), *units]


def share(graph: Graph, settings: Settings, nproc: int, strategy: str, units: list[Unit] | None = None) -> ProcessPlan:
    """One process's plan under ``strategy`` ("ddp" or "fsdp")."""
    if strategy == "fsdp":
        return fsdp(graph, settings, nproc, units)
    return ddp(graph, settings, nproc)


def largest_global_batch(graph: Graph, settings: Settings, nproc: int, strategy: str, memory: int,
                         margin: float = MARGIN) -> tuple[int, ProcessPlan | None]:
    """The largest global batch (a multiple of ``nproc``) whose peak per process fits in
    ``memory`` bytes less ``margin`` on every process, and that process's plan; (0, None)
    when one example per process does not fit."""
    units = fsdp_layout(graph, settings.frozen) if strategy == "fsdp" else None
    per, fit = largest_batch(graph, settings, memory, margin, plan_of=lambda b: share(
        graph, replace(settings, batch=b * nproc), nproc, strategy, units))
    return per * nproc, fit


# --------------------------------------------------------------------------- train.freeze


def frozen_nodes(graph: Graph, patterns) -> frozenset:
    """The nodes with parameters that ``train.freeze``'s names or globs freeze, matched as
    archc/train/transfer.py matches module names: a pattern may name a layer or any block
    instance around it (``layer1``, ``layer1.0``, ``layer1.*``). Raises ValueError for a
    pattern that matches no layer, with training's message."""
    nodes = [n for n in graph.nodes if n.meta.get("params")]
    frozen = set()
    for pattern in patterns or ():
        hits = {n.name for n in graph.nodes if any(fnmatch.fnmatchcase(prefix, pattern) for prefix in _paths(n.name))}
        if not hits:
            raise ValueError(f"--freeze {pattern!r} matches no layer — " + _names_hint(graph, pattern))
        frozen |= {n.name for n in nodes if n.name in hits}
    return frozenset(frozen)


def _names_hint(graph: Graph, pattern: str) -> str:
    import difflib

    names = list(dict.fromkeys(p for n in graph.nodes for p in _paths(n.name)))
    close = difflib.get_close_matches(pattern, names, n=3)
    if close:
        return "did you mean " + ", ".join(close) + "?"
    return "layer names: " + ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")


def _paths(name: str):
    """'layer1.0.conv1' -> 'layer1', 'layer1.0', 'layer1.0.conv1': the modules around a layer."""
    parts = name.split(".")
    return (".".join(parts[:i]) for i in range(1, len(parts) + 1))
