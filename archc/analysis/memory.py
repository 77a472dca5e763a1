"""Training memory, predicted from the graph alone (``archc plan``; torch is not imported).

For a batch size, an optimizer and a precision this counts the bytes of

* **parameters** (float32, also under mixed precision: torch's autocast keeps fp32 weights
  and casts a half copy per use) and **buffers** (batch norm's statistics, its int64 counter);
* **gradients**: one float32 value per *trainable* parameter; frozen layers have none;
* **optimizer state**: per trainable value, SGD 0 (1 with momentum), Adam/AdamW 2 (the two
  moments), RMSProp 1 (+1 with momentum) — the tensors torch.optim creates at the first
  step; Adam and RMSProp add a float32 ``step`` per parameter tensor, which torch keeps on
  the CPU (counted for ``device="cpu"`` only);
* **activations saved for backward**: what autograd keeps, op by op — each op kind states
  it in its own file (``Op.saved`` in archc/ops/*.py: a convolution its input, an in-place
  ReLU its output, batch norm its input and two statistics per channel, max pooling int64
  indices, attention q, k, v, its output and a log-sum-exp, ...). Tensors are followed to
  their *storage*: a ReLU run in place shares its input's storage, a flatten is a view, so
  a tensor two ops keep is counted once — as ``saved_tensors_hooks`` deduplicated by
  storage measures it (tests/analysis/test_memory.py);
* the **peak of one step**: parameters + buffers + gradients + optimizer state + saved
  activations + the largest transient, the larger of (a) the gradients of the biggest
  layer's output and input, alive together in backward — twice the largest activation —
  and (b) the temporaries of the optimizer's step (torch's multi-tensor step on CUDA: a
  copy of the trainable values for Adam's and RMSProp's square root, one more for
  weight decay outside AdamW or Nesterov momentum). It is an upper bound of the allocator's
  ``max_memory_allocated``: gradients of early layers are allocated while their saved
  activations are freed, and both are counted in full here.

Not counted: the CUDA context (~300-500 MiB per process, outside torch's allocator),
cuDNN / cuBLAS workspaces, the allocator's cache and fragmentation (``memory_reserved``
minus ``memory_allocated``), data-loader batches in flight. The largest batch keeps a
safety margin (:data:`MARGIN`) for them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from archc.ir.graph import INPUT, Graph
from archc.ops.registry import FLOAT, SaveContext, get_op, numel

MARGIN = 0.10  # of the memory, kept free by largest_batch() for what is not counted
FP32, HALF, IDS_BYTES = 4, 2, 8

# values of optimizer state per trainable value (torch.optim's buffers)
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")


def precision_of(amp, cuda: bool) -> str:
    """The precision a run trains in for ``train.amp`` (archc/train/loop.py's AmpPolicy):
    auto is bf16 on a GPU and off on the CPU, where only an explicit bf16 applies."""
    if cuda:
        return "bf16" if amp in ("auto", True, "bf16") else "fp16" if amp == "fp16" else "fp32"
    return "bf16" if amp == "bf16" else "fp32"


@dataclass(frozen=True)
class Settings:
    """What a plan is for: the training step's batch, optimizer and precision."""

    batch: int = 32
    optimizer: str = "sgd"
    momentum: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False
    precision: str = "fp32"  # "fp32", "bf16" or "fp16" (autocast, fp32 weights)
    device: str = "cuda"  # "cuda" or "cpu": the kernels that differ (dropout, attention)
    input_grad: bool = False  # the input requires grad (a layer inside a network)
    frozen: frozenset = frozenset()  # node names train.freeze freezes (archc.analysis.parallel.frozen_nodes)


@dataclass
class NodeMemory:
    """One node's row: its output, what it keeps for backward (bytes first kept here)."""

    name: str
    op: str
    shape: tuple
    output_bytes: int
    saved_bytes: int
    inplace: bool
    estimate: bool = False  # the op's rule is an estimate (recurrent layers)


@dataclass
class MemoryPlan:
    settings: Settings
    params: int  # bytes
    trainable_params: int  # elements
    gradients: int
    optimizer_state: int
    buffers: int
    activations: int
    transient: int
    nodes: list[NodeMemory] = field(default_factory=list)

    @property
    def peak(self) -> int:
        return (self.params + self.buffers + self.gradients + self.optimizer_state
                + self.activations + self.transient)


def plan(graph: Graph, settings: Settings) -> MemoryPlan:
    """The memory of one training step of ``graph`` (analysed) under ``settings``."""
    if settings.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer {settings.optimizer!r}: one of {', '.join(OPTIMIZERS)}")
    nodes, saved = saved_activations(graph, settings)
    tensors, trainable = trainable_tensors(graph, settings.frozen)
    s = graph.summary
    state = optimizer_bytes(settings, trainable, tensors)
    largest = max((n.output_bytes for n in nodes), default=0)
    transient = max(2 * largest, step_temporaries(settings, trainable))
    return MemoryPlan(settings, FP32 * s.total_params, trainable, FP32 * trainable, state,
                      buffer_bytes(graph), saved, transient, nodes)


# --------------------------------------------------------------------------- weights


def _trainable(node, frozen) -> bool:
    """Not ``trainable: false`` in the spec, nor frozen by train.freeze."""
    return node.meta.get("trainable", True) and node.name not in frozen


def trainable_tensors(graph: Graph, frozen=frozenset()) -> tuple[int, int]:
    """(trainable parameter tensors, trainable values): what gets a gradient."""
    tensors = values = 0
    for n in graph.nodes:
        if _trainable(n, frozen) and n.meta["params"]:
            op = get_op(n.op)
            tensors += len(op.torch_params(n.attrs)) - (1 if "tie" in n.meta else 0)
            values += n.meta["params"]
    return tensors, values


def buffer_bytes(graph: Graph) -> int:
    total = 0
    for n in graph.nodes:
        op = get_op(n.op)
        total += op.buffer_bytes(n.attrs, n.meta["buffers"])
    return total


def optimizer_bytes(st: Settings, values: int, tensors: int) -> int:
    """torch.optim's state after the first step: buffers per value, and Adam's/RMSProp's
    float32 ``step`` per tensor, which lives on the CPU (so on the device only for CPU runs)."""
    per_value = {"sgd": 1 if st.momentum > 0 else 0, "adam": 2, "adamw": 2,
                 "rmsprop": 1 + (1 if st.momentum > 0 else 0)}[st.optimizer]
    steps = tensors * FP32 if st.optimizer != "sgd" and st.device == "cpu" else 0
    return per_value * values * FP32 + steps


def step_temporaries(st: Settings, values: int) -> int:
    """Copies of the trainable values torch's multi-tensor (foreach) step allocates at once
    on CUDA (torch/optim/adam.py, sgd.py, rmsprop.py: _foreach_sqrt, _foreach_add); on the
    CPU the step goes tensor by tensor and its temporaries are small."""
    if st.device == "cpu":
        return 0
    copies = {"sgd": 0, "adam": 1, "adamw": 1, "rmsprop": 1}[st.optimizer]
    if st.weight_decay and st.optimizer != "adamw":
        copies += 1
    if st.optimizer == "sgd" and st.nesterov:
        copies += 1
    return copies * values * FP32


# --------------------------------------------------------------------------- activations


@dataclass
class _Value:
    storage: str  # the key of the storage holding it
    contiguous: bool
    grad: bool  # requires grad
    itemsize: int


def saved_activations(graph: Graph, st: Settings) -> tuple[list[NodeMemory], int]:
    """(a row per node, bytes of every storage autograd keeps, each once)."""
    alias, overwrites = _inplace(graph)
    half = HALF if st.precision in ("bf16", "fp16") else 0
    in_size = IDS_BYTES if graph.input_dtype != FLOAT else FP32
    values = {INPUT: _Value(INPUT, True, st.input_grad and graph.input_dtype == FLOAT, in_size)}
    storages = {INPUT: st.batch * numel(graph.input_shape) * in_size}
    kept: set[str] = set()
    rows = []
    for node in graph.nodes:
        op = get_op(node.op)
        out = node.meta["shape"]
        if alias[node.name] != node.name:  # the code passes a value through (identity)
            values[node.name] = values[alias[node.name]]
            rows.append(NodeMemory(node.name, node.op, out, 0, 0, False))
            continue
        ins = [graph.shape_of(i) for i in node.inputs]
        inputs = [values[alias[i]] for i in node.inputs]
        trainable = bool(_trainable(node, st.frozen) and (node.meta["params"] or "tie" in node.meta))
        grad = trainable or any(v.grad for v in inputs)
        itemsize = _itemsize(op, node, inputs, half)
        over = overwrites.get(node.name)
        if over is not None:  # in place: the output is the overwritten input's storage
            values[node.name] = _Value(values[over].storage, values[over].contiguous, grad, itemsize)
        else:
            layout = op.layout(node.attrs, ins, out, inputs[0].contiguous if inputs else True)
            if layout in ("new", "transposed"):  # transposed: batch not outermost, contiguous at batch 1
                storages[node.name] = st.batch * numel(out) * itemsize
                values[node.name] = _Value(node.name, layout == "new" or st.batch == 1, grad, itemsize)
            else:
                values[node.name] = _Value(inputs[0].storage, layout == "view" and inputs[0].contiguous,
                                           grad, itemsize)
        mine = 0
        if grad:
            ctx = SaveContext(st.batch, st.device, tuple(v.grad for v in inputs), trainable,
                              over is not None, tuple(v.contiguous for v in inputs), itemsize)
            for key, nbytes in _resolve(op, node, ins, out, ctx, inputs, values[node.name], half):
                storages.setdefault(key, nbytes)
                if key not in kept:
                    kept.add(key)
                    mine += storages[key]
        rows.append(NodeMemory(node.name, node.op, out, st.batch * numel(out) * itemsize, mine,
                               over is not None, _estimate(op, st)))
    return rows, sum(storages[k] for k in kept)


def _estimate(op, st: Settings) -> bool:
    """The op's rule is a stated estimate (``saved_is_estimate``: a flag, or a function of
    the settings — recurrent layers are exact on the CPU in float32 only)."""
    flag = getattr(op, "saved_is_estimate", False)
    return flag(st) if callable(flag) else bool(flag)


def _inplace(graph: Graph):
    """The code generator's in-place decisions, once per graph (they do not depend on the
    batch; largest_batch() plans the same graph many times)."""
    from archc.backends.torch.codegen import inplace_plan

    cached = graph.__dict__.get("_inplace_plan")
    if cached is None or cached[0] is not graph.nodes:
        cached = (graph.nodes, inplace_plan(graph))
        graph.__dict__["_inplace_plan"] = cached
    return cached[1]


def _itemsize(op, node, inputs, half: int) -> int:
    """Bytes per value of the node's output: float32, int64 token ids, or under autocast
    half for the ops it runs in half precision and float32 for those it keeps in float32;
    the others compute in their inputs' type (the widest, as torch promotes)."""
    if node.meta.get("dtype") not in (None, FLOAT):
        return IDS_BYTES
    if half and op.autocast == "half":
        return half
    if not half or op.autocast == "float":
        return FP32
    floats = [v.itemsize for v in inputs if v.itemsize != IDS_BYTES]
    return max(floats) if floats else FP32


def _resolve(op, node, ins, out, ctx, inputs, output, half):
    """(storage key, bytes) of each tensor the op keeps. Under autocast an input of another
    precision than the op computes in is cast first, and the copy is what it keeps; a half
    op also keeps the half copy of its weight."""
    for k, s in enumerate(op.saved(node.attrs, ins, out, ctx)):
        if s.of == "output":
            yield output.storage, None
        elif s.of == "input":
            value = inputs[s.index]
            if half and op.autocast and value.itemsize not in (ctx.itemsize, IDS_BYTES):
                yield f"{node.name}@cast{s.index}", ctx.batch * numel(ins[s.index]) * ctx.itemsize
            else:
                yield value.storage, None
        else:
            yield f"{node.name}#{k}", s.elements * (s.itemsize or ctx.itemsize)
    if half and op.autocast == "half" and node.meta["params"]:
        yield f"{node.name}@weight", node.meta["params"] * half


# --------------------------------------------------------------------------- the largest batch


def largest_batch(graph: Graph, settings: Settings, memory: int, margin: float = MARGIN,
                  limit: int = 1 << 24, plan_of=None) -> tuple[int, MemoryPlan | None]:
    """The largest batch whose predicted peak fits in ``memory`` bytes less ``margin`` of
    it, and its plan; (0, None) when not even one sample fits. The peak grows with the
    batch (every term is constant or linear in it), so a binary search finds it.
    ``plan_of(batch)``: another plan with a ``peak`` (one process's among N,
    archc/analysis/parallel.py); by default :func:`plan` at that batch."""
    budget = memory * (1 - margin)
    plans: dict[int, MemoryPlan] = {}
    plan_of = plan_of or (lambda b: plan(graph, _with_batch(settings, b)))

    def fits(b: int) -> MemoryPlan | None:
        if b not in plans:
            plans[b] = plan_of(b)
        return plans[b] if plans[b].peak <= budget else None

    if fits(1) is None:
        return 0, None
    # every term is linear in the batch but the transient (the larger of two lines): solve
    # the line through batches 1 and 2, then step to the exact answer from there
    fits(2)
    one, two = plans[1].peak, plans[2].peak
    if two > one:
        guess = max(1, min(limit, int((budget - (2 * one - two)) // (two - one))))
        for _ in range(8):
            if fits(guess) is None:
                guess -= 1
            elif guess < limit and fits(guess + 1) is not None:
                guess += 1
            else:
                return guess, fits(guess)
    lo, hi = 1, 2
    while hi <= limit and fits(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo, fits(lo)


def _with_batch(st: Settings, batch: int) -> Settings:
    from dataclasses import replace

    return replace(st, batch=batch)


def parse_bytes(text: str) -> int:
    """'24GiB', '512MiB', '24GB', '1.5e9' -> bytes (KiB/MiB/GiB/TiB binary, KB/MB/GB/TB decimal)."""
    units = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
             "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "K": 2**10, "M": 2**20,
             "G": 2**30, "T": 2**40}
    s = str(text).strip().upper().replace(" ", "")
    number = s.rstrip("KMGTIB")
    unit = s[len(number):]
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    if unit not in units or not value > 0 or math.isinf(value):
        raise ValueError(f"{text!r} is not an amount of memory (e.g. 24GiB, 512MiB, 16GB)")
    return int(value * units[unit])
