"""Lint: legal specs that are probably not what their author meant.

Unlike errors, these findings never stop a build. Each is a :class:`SpecError` with a
``severity`` (rendered ``FILE:LINE:COL: warning: PATH: message — fix``):

* ``warning`` — a layer whose output is never used (it feeds no layer and is not a
  network output: a dead branch, usually a forgotten ``from:``); a ``linear`` applied to a
  channels-first map such as (C, H, W), which acts on the last axis (the width) only —
  legal, but usually a missing ``flatten``. Token sequences (L, D) and channels-last maps
  (after a ``permute``, as in ConvNeXt) are what ``linear`` is for and are not flagged.
* ``info`` — a convolution or linear layer whose output channels are not a multiple of 8:
  NVIDIA's tensor cores run fp16/bf16 matrix products on tiles of 8 (NVIDIA's "Deep
  Learning Performance Guide": channel counts divisible by 8). A hint, not a mistake:
  `archc validate` prints info findings only with ``--hints``; the JSON report always
  carries them (docs/spec.md#warnings).

A finding in a block template is reported once, naming every instance, since the fix is
one edit. Pure and torch-free, like the rest of `validate`.
"""

from __future__ import annotations

from archc.errors import SpecError
from archc.ir.graph import INPUT, Graph, Node

WARNING, INFO = "warning", "info"
TENSOR_CORE_MULTIPLE = 8

# Ops after which the last axis is no longer a channels-first map's width: linear's input
# is then features or channels-last on purpose (a permute first is ConvNeXt's layout).
_REARRANGE = {"permute", "transpose", "reshape", "flatten", "linear", "attention", "embedding",
              "pos_embedding", "class_token", "sinusoidal_encoding", "lstm", "gru", "select",
              "slice", "split", "chunk", "mean"}
# Ops whose output is a channels-first map (C, L), (C, H, W) or (C, D, H, W).
_MAP_PREFIXES = ("conv", "maxpool", "avgpool", "adaptive_avgpool", "global_avgpool", "upsample",
                 "zeropad2d", "crop", "batchnorm2d", "batchnorm3d", "dropout2d", "instancenorm",
                 "groupnorm", "local_response_norm")
# Ops that end a classifier without computing a new width (their input's channels are
# the class count or image channels, which the data fixes, not the designer).
_HEAD_TAIL = {"identity", "dropout", "flatten", "softmax", "log_softmax", "sigmoid", "tanh", "reshape"}


def lint(graph: Graph) -> list[SpecError]:
    """Every finding of ``graph`` (warnings and info notes), in node order."""
    consumers, live = _consumers(graph), _live(graph)
    found: list[tuple[Node, str, str, str]] = []  # node, severity, message, fix
    for node in graph.nodes:
        found += [(node, *f) for f in _unused(node, graph, consumers, live)]
        found += [(node, *f) for f in _linear_on_map(node, graph)]
        found += [(node, *f) for f in _channels(node, graph, consumers)]
    return _grouped(found)


def visible(findings: list[SpecError], hints: bool = False) -> list[SpecError]:
    """What the text output shows: warnings always, info notes only with ``--hints``."""
    return [f for f in findings if hints or f.severity != INFO]


def _consumers(graph: Graph) -> dict[str, list[Node]]:
    out: dict[str, list[Node]] = {n.name: [] for n in graph.nodes}
    for n in graph.nodes:
        for i in dict.fromkeys(n.inputs):  # a node reading x twice consumes it once
            if i != INPUT:
                out[i].append(n)
    return out


def _live(graph: Graph) -> set[str]:
    """Every node a network output depends on."""
    live: set[str] = set()
    stack = list(graph.outputs)
    while stack:
        name = stack.pop()
        if name != INPUT and name not in live:
            live.add(name)
            stack += graph.node(name).inputs
    return live


def _unused(node: Node, graph: Graph, consumers, live) -> list[tuple[str, str, str]]:
    if consumers[node.name] or node.name in graph.outputs:
        return []
    feeding = _dead_ancestors(node, graph, live)
    extra = f" (nor that of {feeding} layer{'s' if feeding != 1 else ''} feeding only it)" if feeding else ""
    return [(WARNING, "the output of {ids} is never used: no layer reads it and it is not a network "
             f"output{extra}", f"read it with `from: {node.local_name}`, list it in `outputs:`, "
             "or remove it")]


def _dead_ancestors(node: Node, graph: Graph, live: set[str]) -> int:
    """How many layers upstream of ``node`` reach no network output (but through it)."""
    dead, stack = set(), list(node.inputs)
    while stack:
        name = stack.pop()
        if name != INPUT and name not in live and name not in dead:
            dead.add(name)
            stack += graph.node(name).inputs
    return len(dead)


def _linear_on_map(node: Node, graph: Graph) -> list[tuple[str, str, str]]:
    if node.op != "linear" or not node.inputs:
        return []
    shape = graph.shape_of(node.inputs[0])
    if shape is None or len(shape) < 2 or not _channels_first(node.inputs[0], graph):
        return []
    axes = {2: "(C, L)", 3: "(C, H, W)", 4: "(C, D, H, W)"}.get(len(shape), f"rank {len(shape)}")
    return [(WARNING, f"{{ids}} reads a {axes} map {list(shape)} and acts on its last axis only "
             f"({shape[-1]} of {_numel(shape):,} values), giving {list(node.meta.get('shape') or ())}",
             "did you mean to flatten first? add `- flatten` before it (or `global_avgpool: "
             "{keepdims: false}`); to act on channels, `permute` them last first")]


def _channels_first(name: str, graph: Graph) -> bool:
    """Whether ``name``'s output is a channels-first map: follow first inputs back through
    layout-keeping ops (activations, norms, adds) to a convolution or pool, or the input."""
    for _ in range(len(graph.nodes) + 1):
        if name == INPUT:  # (C, H, W) images; a rank-2 input may be (L, D) tokens
            return graph.input_dtype == "float32" and len(graph.input_shape) >= 3
        node = graph.node(name)
        if node.op in _REARRANGE or not node.inputs:
            return False
        if node.op.startswith(_MAP_PREFIXES):
            return True
        name = node.inputs[0]
    return False


def _channels(node: Node, graph: Graph, consumers) -> list[tuple[str, str, str]]:
    out = node.meta.get("shape")
    if out is None or not node.op.startswith(("conv", "linear")) or node.attrs.get("groups", 1) != 1:
        return []
    width = out[0] if node.op.startswith("conv") else out[-1]
    if width % TENSOR_CORE_MULTIPLE == 0 or _is_head(node, graph, consumers):
        return []
    better = -(-width // TENSOR_CORE_MULTIPLE) * TENSOR_CORE_MULTIPLE
    return [(INFO, f"{{ids}} gives {width} channels, not a multiple of {TENSOR_CORE_MULTIPLE}; "
             "tensor cores (fp16/bf16 on NVIDIA GPUs) work on tiles of 8",
             f"{better} would use them fully, if the design allows")]


def _is_head(node: Node, graph: Graph, consumers) -> bool:
    """A network output, or a layer that reaches one only through softmax-like tails."""
    if node.name in graph.outputs:
        return True
    nxt = consumers[node.name]
    return bool(nxt) and all(n.op in _HEAD_TAIL and _is_head(n, graph, consumers) for n in nxt)


def _numel(shape) -> int:
    total = 1
    for s in shape:
        total *= s
    return total


def _grouped(found) -> list[SpecError]:
    """One finding per (place in the spec, message): a block template's finding names
    every instance instead of repeating itself."""
    groups: dict[tuple, list] = {}
    for node, severity, message, fix in found:
        groups.setdefault((node.pos, node.path, severity, message, fix), []).append(node)
    out = []
    for (pos, path, severity, message, fix), nodes in groups.items():
        ids = f"`{nodes[0].name}`"
        if len(nodes) > 1:
            more = len(nodes) - 1
            ids += f" (and {more} more instance{'s' if more > 1 else ''}, the last `{nodes[-1].name}`)"
        out.append(SpecError(message.replace("{ids}", ids), pos, path, fix, severity=severity))
    return out
