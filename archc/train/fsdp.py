"""``train.strategy: fsdp``: parameters, gradients and optimizer state sharded over the
processes with PyTorch's FSDP2 (``torch.distributed.fsdp.fully_shard``), under the same
torchrun launch as DDP (archc/train/distributed.py: gloo on the CPU, NCCL on GPUs)::

    archc train specs/gpt2.yaml --nproc 8 --strategy fsdp

What is sharded, per process of N (FSDP2's documented behaviour): every parameter is a
DTensor holding 1/N of its rows (dim 0, padded to a multiple of N); its gradient after
each step is the same 1/N (reduce-scattered); the optimizer's state (SGD momentum, Adam's
two moments) follows the parameter's shard. Buffers (batch norm statistics) are not
sharded. A wrapping unit's full parameters exist on each process only while the unit runs
forward, and again while it runs backward (all-gathered, then freed), so the peak holds
the sharded whole plus about one unit's full parameters (plus the prefetched next unit's).
The root unit (the layers outside any wrapped block) keeps its parameters gathered from
the start of forward to the end of backward, as FSDP2 does for its root.

Wrapping units are the spec's **block instances** (:func:`wrapping_units`): the outermost
instances, except that an instance holding repeated instances (ViT's ``encoder`` with its
``layers.encoder_layer_0`` … ``_11``) is opened and its repeats become the units. A block instance
is a namespace in the built module (``layer1.0``: a ``Block`` container with no forward;
the network's forward calls its layers one by one), so a unit is FSDP2's grouped form,
``fully_shard([its layers...])``: the first of its layers to run gathers the whole unit,
the last one frees it. A unit whose parameters are shared with a layer outside it (a tied
embedding) stays in the root unit.

Checkpoints gather a full state on rank 0 (``get_model_state_dict`` /
``get_optimizer_state_dict`` with ``full_state_dict=True, cpu_offload=True``): ``best.pt``
and ``last.pt`` hold the plain module's state_dict, so evaluate, export and a resume on
any number of processes read them as any other run's; the optimizer state is keyed by
parameter name there (:func:`by_index` turns it back for a one-process run).

Evaluation under FSDP: every forward gathers parameters, a collective, so a process with
fewer evaluation batches than rank 0 runs filler forwards until rank 0 is done
(:meth:`Sharding.lockstep`); the metrics count only real examples.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import torch
from torch import nn

INDEX = re.compile(r"\.\d+$")  # the scope entry of a repeat's copy: "layers.3"
DIGITS = re.compile(r"\d+")


def wrapping_units(graph) -> list[str]:
    """The module paths of the block instances that become FSDP units, in forward order.

    A repeat's copy is an instance named ``X.3``, or one of several instances of one block
    in one parent whose names differ only in their numbers — a repeat whose id holds
    ``$index`` (ViT's ``layers.encoder_layer_3``), or such calls written out one by one."""
    seen = {}  # path -> (parent, block, name with numbers masked, named X.N), outermost first
    for node in graph.nodes:
        for depth in range(1, len(node.scope) + 1):
            path = ".".join(node.scope[:depth])
            if path not in seen:
                local = node.scope[depth - 1]
                seen[path] = (".".join(node.scope[:depth - 1]), node.blocks[depth - 1],
                              DIGITS.sub("#", local), bool(INDEX.search(local)))
    alike = Counter(key[:3] for key in seen.values())
    instances = [(path, key[3] or ("#" in key[2] and alike[key[:3]] > 1)) for path, key in seen.items()]
    units = []
    for path, _ in instances:
        if any(path == u or path.startswith(u + ".") for u in units):
            continue  # inside a unit already
        holds_repeats = any(q.startswith(path + ".") and repeat for q, repeat in instances)
        if not holds_repeats:
            units.append(path)
    return units


def _runs_forward(module: nn.Module) -> bool:
    """A layer (its forward is called), not a Block container (it has none)."""
    return type(module).forward is not nn.Module.forward


def unit_layers(model: nn.Module, path: str) -> list[nn.Module]:
    """The layers with parameters inside block instance ``path`` (through nested containers)."""
    out = []

    def walk(module):
        for child in module.children():
            if _runs_forward(child):
                if any(True for _ in child.parameters()):
                    out.append(child)
            else:
                walk(child)

    walk(model.get_submodule(path))
    return out


def _shared_outside(model: nn.Module, path: str) -> bool:
    """Whether a parameter of ``path`` is also a parameter of a layer outside it (a tie)."""
    owners = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        owners.setdefault(id(p), set()).add(name)
    inside = {id(p) for p in model.get_submodule(path).parameters()}
    return any(not n.startswith(path + ".") for i in inside for n in owners[i])


def shard(model: nn.Module, graph, world) -> list[str]:
    """Apply FSDP2 to ``model`` in place: each wrapping unit, then the root. Returns the
    units wrapped (module paths)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(world.device.type, (world.size,))
    wrapped = []
    for path in wrapping_units(graph):
        layers = unit_layers(model, path)
        if layers and not _shared_outside(model, path):
            fully_shard(layers if len(layers) > 1 else layers[0], mesh=mesh)
            wrapped.append(path)
    fully_shard(model, mesh=mesh)
    return wrapped


# --------------------------------------------------------------------------- state


def _options(**kw):
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, **kw)


def by_name(model: nn.Module, optimizer, state: dict) -> dict:
    """An optimizer state_dict keyed by parameter index (torch's own) keyed by name instead."""
    if not state.get("state") and not state.get("param_groups"):
        return state
    groups = state["param_groups"]
    if not groups or not groups[0]["params"] or isinstance(groups[0]["params"][0], str):
        return state  # by name already
    names = _order(model, optimizer)
    return {"state": {names[i]: s for i, s in state["state"].items()},
            "param_groups": [{**g, "params": [names[i] for i in g["params"]]} for g in groups]}


def by_index(model: nn.Module, optimizer, state: dict) -> dict:
    """The inverse of :func:`by_name`: what ``optimizer.load_state_dict`` of a plain module reads."""
    groups = state.get("param_groups") or []
    if not groups or not groups[0]["params"] or not isinstance(groups[0]["params"][0], str):
        return state
    index = {name: i for i, name in enumerate(_order(model, optimizer))}
    return {"state": {index[n]: s for n, s in state["state"].items()},
            "param_groups": [{**g, "params": [index[n] for n in g["params"]]} for g in groups]}


def _order(model: nn.Module, optimizer) -> list[str]:
    """The names of the optimizer's parameters in its own order (index i -> name)."""
    names = {id(p): n for n, p in model.named_parameters()}
    return [names[id(p)] for g in optimizer.param_groups for p in g["params"]]


class Sharding:
    """What the supervised trainer does differently when its module is sharded."""

    def __init__(self, model: nn.Module, world):
        self.model, self.world = model, world

    def states(self, optimizer) -> tuple[dict, dict]:
        """(model, optimizer) full state_dicts on rank 0 (empty elsewhere). Collective."""
        from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

        options = _options(cpu_offload=True)
        return (get_model_state_dict(self.model, options=options),
                get_optimizer_state_dict(self.model, optimizer, options=options))

    def load(self, optimizer, model_state: dict, optimizer_state: dict | None) -> None:
        """Every rank loads the same full states (a checkpoint each rank read). Collective."""
        from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_optimizer_state_dict

        set_model_state_dict(self.model, model_state, options=_options())
        if optimizer_state is not None:
            set_optimizer_state_dict(self.model, optimizer, by_name(self.model, optimizer, optimizer_state),
                                     options=_options())

    def load_from_rank0(self, model_state: dict | None) -> None:
        """Rank 0's full model state (best.pt), sent to every rank's shards. Collective."""
        from torch.distributed.checkpoint.state_dict import set_model_state_dict

        set_model_state_dict(self.model, model_state if self.world.rank == 0 else {},
                             options=_options(broadcast_from_rank0=True))

    def lockstep(self, forward, split, batch_size: int, batches_run: int, inputs) -> None:
        """Filler forwards until this rank has run as many evaluation batches as rank 0
        (which holds the most examples of the unpadded shard: ceil(n / N))."""
        most = math.ceil(math.ceil(len(split) / self.world.size) / batch_size)
        if batches_run >= most:
            return
        x = inputs(split.x[:1].to(self.world.device))
        for _ in range(most - batches_run):
            forward(x)
