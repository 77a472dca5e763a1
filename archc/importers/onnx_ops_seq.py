"""Recurrent layers: ONNX ``LSTM`` / ``GRU`` nodes, with the exporter's layout noise around
them, as archc's ``lstm`` / ``gru`` (archc/ops/recurrent.py: nn.LSTM / nn.GRU, batch first).

ONNX's recurrent nodes are time-major: X [L, B, D], Y [L, dirs, B, H], Y_h / Y_c [dirs, B, H].
torch.onnx wraps them in Transpose / Squeeze / Reshape / Slice / Split / Concat nodes to go
to and from batch-first values, and writes one node per stacked layer. :func:`recognise`
(run after folding) takes none of that layout on trust: it runs the nodes that move values
around on *labelled* tensors (every element of a recurrent output a distinct integer, two
samples), and accepts an arrangement only when it comes out exactly as

* each node's X: its input value transposed to [L, B, D], or the layer below's sequence,
* each value read by the rest of the graph: archc's ``output: sequence`` [B, L, dirs·H]
  (directions side by side) or ``output: last`` [B, dirs·H] (the final hidden states: the
  forward direction's after the last step, the backward one's after the first).

A chain of nodes of one kind, each read only by the next, becomes one layer with
``layers: N``; other chains become one layer per node. Where both the sequence and the final
states are read (``y, (h, c) = lstm(x)``), the layer gives the sequence and the final states
are taken from it (select / slice / concat: the same values). The weights are re-ordered into
torch's names and gate order (``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``,
``bias_hh_l{k}``, ``_reverse``): ONNX's LSTM gates are i, o, f, c where torch's are i, f, g, o;
ONNX's GRU gates are z, r, h where torch's are r, z, n, and ONNX's B is [Wb; Rb] per direction.
What archc's ops cannot compute (peepholes, clipping, other activations, a given initial
state, sequence lengths, a reverse-only direction, GRU's ``linear_before_reset=0``) is an
error at the node naming what differs (the onnx.ai operator docs define each attribute).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

import numpy as np

from archc.importers.onnx_fold import BATCH, Node, _live
from archc.importers.onnx_table import Layer, Unsupported, maps

FUSED = "archc.recurrent"  # the op type of a recognised stack: never an ONNX op type
SAMPLES = 2  # the labelled tensors' batch: a rearrangement that mixes samples cannot pass
# op type -> archc op, gates, torch's gate order as indices into ONNX's, default activations
KINDS = {"LSTM": ("lstm", 4, [0, 2, 3, 1], ["Sigmoid", "Tanh", "Tanh"]),
         "GRU": ("gru", 3, [1, 0, 2], ["Sigmoid", "Tanh"])}
# nodes that only move values around (what the exporters write between recurrent nodes)
MOVES = {"Transpose", "Squeeze", "Unsqueeze", "Reshape", "Slice", "Concat", "Split", "Gather", "Flatten",
         "Identity"}
# what a zero initial state is computed with (a batch-sized tensor of zeros)
STATE_OPS = MOVES | {"ConstantOfShape", "Expand", "Tile", "Cast"}


class _Refused(Exception):
    """A recurrent node that cannot be part of a recognised stack: ``node`` and why."""

    def __init__(self, node: Node, message: str, need: str):
        self.node, self.message, self.need = node, message, need
        super().__init__(message)


@dataclass(eq=False)  # compared and hashed by identity
class _Rnn:
    """One recurrent node, its labelled outputs and what reads them."""

    node: Node
    hidden: int
    dirs: int
    length: int = 0  # steps, from the labelled input
    source: object = None  # the batch-first value it reads, or the _Rnn below it
    seq: np.ndarray | None = None  # labels as [B, L, dirs·H] (archc's sequence)
    last: np.ndarray | None = None  # labels as [B, dirs·H] (archc's last)
    time_major: np.ndarray | None = None  # labels as the next layer's X [L, B, dirs·H]
    exits: list = field(default_factory=list)  # (value, "sequence" | "last")
    above: list = field(default_factory=list)  # the _Rnn reading its sequence


def recognise(g, nodes: list[Node]) -> list[Node]:
    """``nodes`` with every LSTM / GRU and the layout nodes around it replaced by one node
    per archc layer; when anything does not fit, ``nodes`` as they were, the reason kept on
    the node for the op table's error."""
    if not any(n.op in KINDS for n in nodes):
        return nodes
    try:
        rnns, absorbed = _label(nodes, g)
        stacks = _stacks(rnns)
    except _Refused as exc:
        exc.node.attrs["archc.refused"] = (exc.message, exc.need)
        return _beside(nodes)
    except Exception as exc:  # noqa: BLE001 - ONNX's reference evaluator refusing a layout node
        first = next(n for n in nodes if n.op in KINDS)
        first.attrs["archc.refused"] = (f"the nodes around it could not be run on labelled tensors ({exc})",
                                        "layout nodes ONNX's reference evaluator runs")
        return _beside(nodes)
    fused = {id(found[0][-1].node): _fused(*found) for found in stacks}
    dropped = absorbed | {id(r.node) for r in rnns}
    kept = [fused.get(id(n), n) for n in nodes if id(n) in fused or id(n) not in dropped]
    return _live(kept, g.outputs)  # the layout nodes only the recurrent ones read go too


def _beside(nodes: list[Node]) -> list[Node]:
    """``nodes``, the layout nodes around the recurrent ones marked ``archc.beside``: the
    moves that only feed them and the moves of their outputs. Every recurrent node is an
    error when the stack is not recognised; the batch-axis errors of its layout would only
    repeat it (the importer skips marked nodes)."""
    readers: dict[str, list[Node]] = {}
    for n in nodes:
        for i in n.inputs:
            readers.setdefault(i, []).append(n)
    producer = {o: n for n in nodes for o in n.outputs}
    rnns = [n for n in nodes if n.op in KINDS]
    marked: set[int] = {id(n) for n in rnns}
    # backwards: a move whose every reader is recurrent or marked
    todo = list(rnns)
    while todo:
        for m in (producer[i] for i in todo.pop().inputs if i in producer):
            if m.op in MOVES and id(m) not in marked and all(
                    id(r) in marked for o in m.outputs for r in readers.get(o, [])):
                marked.add(id(m))
                todo.append(m)
    # forwards: every move reading a recurrent or marked output
    todo = list(rnns)
    while todo:
        for m in (r for o in todo.pop().outputs if o for r in readers.get(o, [])):
            if m.op in MOVES and id(m) not in marked:
                marked.add(id(m))
                todo.append(m)
    for n in nodes:
        if id(n) in marked and n.op not in KINDS:
            n.attrs["archc.beside"] = True
    return nodes


# --------------------------------------------------------------------------- labelling


def _label(nodes, g):
    """Run the layout nodes on labelled tensors; the recurrent nodes with their sources and
    exits, and the ids of the layout nodes that only moved recurrent outputs around."""
    producer = {o: n for n in nodes for o in n.outputs}
    labels, owner, rnns, absorbed = {}, {}, [], set()
    sizes = {}  # shape arithmetic on labelled values (dynamo's Reshape targets), made concrete
    next_label = [0]
    for node in nodes:
        touched = [i for i in node.inputs if i in labels]
        known = [i for i in node.inputs if i in sizes]
        if node.op in KINDS:
            rnn = _check(node, g, producer)
            _source(rnn, g, producer, labels, owner)
            _outputs(rnn, labels, owner, next_label)
            rnns.append(rnn)
        elif (touched or known) and all(not i or i in labels or i in sizes or i in g.consts for i in node.inputs) \
                and (node.op in MOVES or node.op == "Shape" or not touched):
            feeds = {i: labels[i] if i in labels else sizes[i] if i in sizes else _concrete(g.consts[i])
                     for i in node.inputs if i}
            owners = tuple(dict.fromkeys(r for i in touched + known for r in owner[i]))
            into = labels if touched and node.op != "Shape" else sizes
            for name, value in zip(node.outputs, _run(node, feeds, g)):
                into[name], owner[name] = np.asarray(value), owners
            absorbed.add(id(node))
        elif known:
            raise _Refused(owner[known[0]][0].node, f"{node.label()} reads the shape of its outputs",
                           "the graph to read the recurrent outputs' values only")
        else:
            for value in touched:
                _exit(value, labels, owner)
    for value in g.outputs:
        if value in labels:
            _exit(value, labels, owner)
    return rnns, absorbed


def _check(node: Node, g, producer) -> _Rnn:
    """The node's attributes and constant inputs, refused where archc's op differs."""
    kind, gates, _, acts = KINDS[node.op]
    an = {"lstm": "an lstm", "gru": "a gru"}[kind]
    a = node.attrs

    def refuse(message, need):
        raise _Refused(node, message, need)

    direction = a.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction == "reverse":
        refuse("it reads the sequence backwards only (direction reverse)",
               f"a backward-only {kind} (archc's is forward or bidirectional)")
    if direction not in ("forward", "bidirectional"):  # no other value is ONNX (onnxruntime refuses it)
        refuse(f"its direction is {direction!r}", f"a forward or bidirectional {kind}")
    dirs = 2 if direction == "bidirectional" else 1
    given = [v.decode() if isinstance(v, bytes) else v for v in a.get("activations", [])]
    if given and [v.lower() for v in given] != [v.lower() for v in acts * dirs]:
        refuse(f"its activations are {given}", f"{an} with other activations (archc's are "
               f"torch's: {', '.join(acts)})")
    if "clip" in a:
        refuse(f"it clips its cell input to ±{a['clip']:g}", f"{an} with clipping")
    if a.get("input_forget", 0):
        refuse("it couples the input and forget gates (input_forget=1)", "an lstm with coupled gates")
    if a.get("layout", 0):
        refuse("it is batch-major (layout=1)", "a time-major node (layout=0, what torch.onnx writes)")
    if node.op == "GRU" and a.get("linear_before_reset", 0) != 1:
        refuse("it applies the reset gate before the recurrent product (linear_before_reset=0)",
               "a gru of that variant (archc's is torch's nn.GRU: linear_before_reset=1)")
    for i, what in ((1, "W"), (2, "R")) + (((3, "B"),) if _given(node, 3) else ()):
        if node.inputs[i] not in g.consts or g.consts[node.inputs[i]].dtype == object:
            refuse(f"its {what} input is computed in the graph", f"{an} with constant weights")
        if g.consts[node.inputs[i]].dtype.kind != "f":
            refuse(f"its {what} input holds {g.consts[node.inputs[i]].dtype} values", f"{an} with float weights")
    if _given(node, 4):
        refuse("it is given sequence lengths", f"{an} over padded sequences of several lengths")
    if node.op == "LSTM" and _given(node, 7) and not _is_zero(node.inputs[7], g, producer):
        refuse("it has peephole weights", "an lstm with peepholes")
    for i in (5, 6) if node.op == "LSTM" else (5,):
        if _given(node, i) and not _is_zero(node.inputs[i], g, producer):
            refuse(f"it starts from a given {'cell' if i == 6 else 'hidden'} state (input {i})",
                   f"{an} with initial states (archc's start from zeros)")
    r = g.consts[node.inputs[2]]
    hidden = int(a.get("hidden_size", r.shape[-1]))
    if r.shape != (dirs, gates * hidden, hidden):
        refuse(f"its R input has shape {list(r.shape)}", f"R of shape [{dirs}, {gates * hidden}, {hidden}]")
    w = g.consts[node.inputs[1]]  # [dirs, gates·H, D]: D is checked against the input (_source)
    if w.ndim != 3 or w.shape[:2] != (dirs, gates * hidden):
        refuse(f"its W input has shape {list(w.shape)}", f"W of shape [{dirs}, {gates * hidden}, input width]")
    if _given(node, 3) and g.consts[node.inputs[3]].shape != (dirs, 2 * gates * hidden):
        refuse(f"its B input has shape {list(g.consts[node.inputs[3]].shape)}",
               f"B of shape [{dirs}, {2 * gates * hidden}]")
    return _Rnn(node, hidden, dirs)


def _given(node: Node, i: int) -> bool:
    return i < len(node.inputs) and bool(node.inputs[i])


def _source(rnn: _Rnn, g, producer, labels, owner) -> None:
    """What ``rnn``'s X is: the layer below's sequence, or a batch-first value transposed."""
    x = rnn.node.inputs[0]
    if x in labels:
        for below in owner[x]:
            if _same(labels[x], below.time_major):
                rnn.source, rnn.length = below, below.length
                below.above.append(rnn)
                _check_width(rnn, g, below.dirs * below.hidden)
                return
        raise _Refused(rnn.node, f"it reads {owner[x][0].node.label()}'s output rearranged",
                       "the layer below's sequence as input, time-major [L, B, dirs·H]")
    chain, value = [], x
    while value in producer and producer[value].op in MOVES:
        computed = [i for i in producer[value].inputs if i and i not in labels and i not in g.consts]
        if len(computed) != 1:
            break
        chain.append(producer[value])
        value = computed[0]
    shape = g.shapes.get(value)
    if shape is None or len(shape) != 3 or None in shape[1:]:
        raise _Refused(rnn.node, f"its input comes from {value!r} of shape {shape}",
                       "a batch-first sequence [B, L, D] transposed to [L, B, D]")
    local = {value: _fresh((SAMPLES, *shape[1:]), [0])}
    for node in reversed(chain):
        feeds = {i: local[i] if i in local else _concrete(g.consts[i]) for i in node.inputs if i}
        local.update(zip(node.outputs, _run(node, feeds, g)))
    if not _same(local[x], local[value].transpose(1, 0, 2)):
        raise _Refused(rnn.node, f"its input is {value!r} rearranged otherwise than batch and time swapped",
                       "a batch-first sequence [B, L, D] transposed to [L, B, D]")
    rnn.source, rnn.length = value, int(shape[1])
    _check_width(rnn, g, int(shape[2]))


def _check_width(rnn: _Rnn, g, width: int) -> None:
    w = g.consts[rnn.node.inputs[1]]
    if w.shape[2] != width:
        raise _Refused(rnn.node, f"its W input has shape {list(w.shape)} for inputs {width} wide",
                       f"W of shape [{rnn.dirs}, {w.shape[1]}, {width}]")


def _outputs(rnn: _Rnn, labels, owner, next_label) -> None:
    """Label Y [L, dirs, B, H]; Y_h is Y at each direction's final step; Y_c is new."""
    n, length, dirs, h = rnn.node, rnn.length, rnn.dirs, rnn.hidden
    y = _fresh((length, dirs, SAMPLES, h), next_label)
    y_h = np.stack([y[-1, 0]] + ([y[0, 1]] if dirs == 2 else []))  # [dirs, B, H]
    rnn.seq = y.transpose(2, 0, 1, 3).reshape(SAMPLES, length, dirs * h)
    rnn.last = y_h.transpose(1, 0, 2).reshape(SAMPLES, dirs * h)
    rnn.time_major = y.transpose(0, 2, 1, 3).reshape(length, SAMPLES, dirs * h)
    values = [y, y_h] + ([_fresh((dirs, SAMPLES, h), next_label)] if n.op == "LSTM" else [])
    for name, value in zip(n.outputs, values):
        if name:
            labels[name], owner[name] = value, (rnn,)


def _exit(value: str, labels, owner) -> None:
    """A labelled value the rest of the graph reads: one of archc's two outputs, or refused."""
    got = labels[value]
    for rnn in owner[value]:
        for kind, want in (("sequence", rnn.seq), ("last", rnn.last)):
            if _same(got, want):
                if (value, kind) not in rnn.exits:
                    rnn.exits.append((value, kind))
                return
    rnn = owner[value][-1]
    shape = [None, *got.shape[1:]] if got.ndim else []
    raise _Refused(rnn.node, f"the graph reads its outputs as {value!r} {shape}, which is neither "
                   "the sequence of hidden states nor the final hidden state (or reads the cell state)",
                   f"the sequence [B, L, {rnn.dirs}·H] or the final hidden states [B, {rnn.dirs}·H]")


def _fresh(shape, counter) -> np.ndarray:
    size = int(np.prod(shape))
    start = counter[0] + 1_000_000  # apart from the small integers shapes and indices use
    counter[0] += size
    return np.arange(start, start + size, dtype=np.int64).reshape(shape)


def _same(a, b) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b))


def _concrete(value: np.ndarray) -> np.ndarray:
    """Shape arithmetic holding the batch symbol, with the labelled tensors' batch in it."""
    if value.dtype == object:
        return np.array([SAMPLES if v is BATCH else v for v in value.flat], dtype=np.int64).reshape(value.shape)
    return value


def _run(node: Node, feeds: dict, g) -> list:
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    proto = helper.make_node(node.op, node.inputs, node.outputs, **node.attrs)
    return ReferenceEvaluator(proto, opsets={"": g.opset}).run(None, feeds)


def _is_zero(value: str, g, producer, depth: int = 0) -> bool:
    """Whether ``value`` is zeros computed from constants and the batch size alone."""
    try:
        result = _evaluate_constant(value, g, producer, {}, depth)
    except LookupError:
        return False
    return not np.any(result)


def _evaluate_constant(value, g, producer, cache, depth):
    if value in g.consts:
        return _concrete(g.consts[value])
    if value in cache:
        return cache[value]
    node = producer.get(value)
    if node is None or node.op not in STATE_OPS or depth > 20:
        raise LookupError(value)
    feeds = {i: _evaluate_constant(i, g, producer, cache, depth + 1) for i in node.inputs if i}
    cache.update(zip(node.outputs, _run(node, feeds, g)))
    return cache[value]


# --------------------------------------------------------------------------- stacks


def _stacks(rnns: list[_Rnn]) -> list:
    """(nodes, output value, "sequence" | "last", other values equal to it, values equal to
    the final states when the sequence is read too) per archc layer."""
    out, top_of = [], {}
    for rnn in rnns:
        below = rnn.source if isinstance(rnn.source, _Rnn) else None
        if below is not None and _merges(below, rnn):
            stack = top_of.pop(id(below))
        else:
            stack = []
        stack.append(rnn)
        top_of[id(rnn)] = stack
    for stack in top_of.values():
        top = stack[-1]
        kinds = {kind for _, kind in top.exits}
        if top.above:
            kinds.add("sequence")
        # both read: the layer gives the sequence, and the final states are taken from it
        kind = "sequence" if "sequence" in kinds else "last"
        names = [v for v, k in top.exits if k == kind] or [f"{top.node.outputs[0]}/sequence"]
        for above in top.above:
            above.source = names[0]
        lasts = [v for v, k in top.exits if k == "last"] if kind == "sequence" else []
        out.append((stack, names[0], kind, names[1:], lasts))
    return sorted(out, key=lambda s: rnns.index(s[0][-1]))


def _merges(below: _Rnn, rnn: _Rnn) -> bool:
    """Whether ``rnn`` is the next layer of ``below``'s archc layer (``layers: N``)."""
    a, b = below.node, rnn.node
    return (not below.exits and below.above == [rnn] and a.op == b.op and below.hidden == rnn.hidden
            and below.dirs == rnn.dirs and _given(a, 3) == _given(b, 3))


def _fused(stack: list[_Rnn], output: str, kind: str, aliases: list, lasts: list) -> Node:
    first = stack[0]
    return Node(FUSED, first.node.name, [first.source], [output],
                {"stack": stack, "output": kind, "aliases": aliases, "lasts": lasts, "op": first.node.op})


# --------------------------------------------------------------------------- the op table


@maps(FUSED)
def recurrent(node, ctx):
    """One archc lstm / gru for a recognised stack, its weights in torch's layout."""
    stack = node.attrs["stack"]
    kind, gates, order, _ = KINDS[node.attrs["op"]]
    tensors = {}
    for k, rnn in enumerate(stack):
        w, r = ctx.const(rnn.node.inputs[1]), ctx.const(rnn.node.inputs[2])
        b = ctx.const(rnn.node.inputs[3]) if _given(rnn.node, 3) else None
        for d, suffix in enumerate(("", "_reverse")[: rnn.dirs]):
            tensors[f"weight_ih_l{k}{suffix}"] = _gates(w[d], gates, order)
            tensors[f"weight_hh_l{k}{suffix}"] = _gates(r[d], gates, order)
            if b is not None:
                wb, rb = np.split(b[d], 2)
                tensors[f"bias_ih_l{k}{suffix}"] = _gates(wb, gates, order)
                tensors[f"bias_hh_l{k}{suffix}"] = _gates(rb, gates, order)
    top = stack[-1]
    attrs = {"hidden": top.hidden, "layers": len(stack), "bidirectional": top.dirs == 2,
             "bias": _given(top.node, 3), "output": node.attrs["output"]}
    for alias in node.attrs["aliases"]:
        ctx.alias[alias] = node.outputs[0]
    layer = Layer(kind, attrs, node.inputs, node.outputs[0], tensors, _hint(stack[0].node, ctx.g))
    return [layer] + _final_states(layer, node.attrs["lasts"], top, ctx)


def _final_states(layer: Layer, lasts: list, top: _Rnn, ctx) -> list[Layer]:
    """The final hidden states [dirs·H] taken from the sequence [L, dirs·H] (when both are
    read): the forward direction's at the last step, the backward one's at the first."""
    if not lasts:
        return []
    for alias in lasts[1:]:
        ctx.alias[alias] = lasts[0]
    sequence, last, name = layer.output, lasts[0], layer.hint
    if top.dirs == 1:
        return [Layer("select", {"dim": 0, "index": -1}, [sequence], last, hint=f"{name}_last")]
    h, part = top.hidden, {k: f"{last}/{k}" for k in ("end", "forward", "start", "backward")}
    return [Layer("select", {"dim": 0, "index": -1}, [sequence], part["end"], hint=f"{name}_end"),
            Layer("slice", {"dim": 0, "end": h}, [part["end"]], part["forward"], hint=f"{name}_forward"),
            Layer("select", {"dim": 0, "index": 0}, [sequence], part["start"], hint=f"{name}_start"),
            Layer("slice", {"dim": 0, "start": h}, [part["start"]], part["backward"], hint=f"{name}_backward"),
            Layer("concat", {"dim": 0}, [part["forward"], part["backward"]], last, hint=f"{name}_last")]


def _gates(rows: np.ndarray, gates: int, order: list) -> np.ndarray:
    """ONNX's gate blocks of rows in torch's order."""
    blocks = rows.reshape(gates, rows.shape[0] // gates, *rows.shape[1:])
    return np.ascontiguousarray(blocks[order].reshape(rows.shape))


def _hint(node: Node, g) -> str:
    """The torch module's name: from the node's name (the TorchScript exporter's
    ``/rnn/LSTM``), the dynamo exporter's name scopes (``['', 'rnn', 'lstm']``), a torch
    parameter its weights were computed from (``rnn.weight_hh_l0`` sliced into ONNX's gate
    order), else the output's name."""
    path = node.name.strip("/").rsplit("/", 1)
    if len(path) == 2 and path[0]:
        return path[0]
    scope = module_scope(node, g)
    if scope:
        return scope
    producer = {o: p for p in g.nodes for o in p.output}
    todo, seen = [i for i in node.inputs[1:4] if i], set()
    while todo:
        value = todo.pop()
        module, _, tensor = value.rpartition(".")
        if module and tensor.startswith(("weight_", "bias_")):
            return module
        if value in producer and value not in seen and len(seen) < 64:
            seen.add(value)
            todo += [i for i in producer[value].input if i]
    return node.outputs[0]


def module_scope(node: Node, g) -> str:
    """The torch module the dynamo exporter says ``node`` comes from (its name scopes
    ``['', 'rnn', 'lstm']``: the root, the modules, the aten op), or ''."""
    for proto in (p for p in g.nodes if p.name == node.name and node.name):
        scopes = {m.key: m.value for m in proto.metadata_props}.get("pkg.torch.onnx.name_scopes")
        if scopes:
            return ".".join(s for s in ast.literal_eval(scopes)[1:-1] if s)  # a list literal, no eval
    return ""


@maps("LSTM", "GRU")
def unrecognised(node, ctx):
    """A recurrent node left as it was: say why."""
    why = node.attrs.get("archc.refused")
    if why is None:
        why = ("it is part of a recurrent stack that could not be recognised as a whole",
               f"the {node.op}'s neighbours recognised first (see the other errors)")
    raise Unsupported(*why)
