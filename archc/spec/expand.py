"""Document -> graph IR: blocks instantiated, repeats unrolled, expressions evaluated,
conditions decided, inputs resolved.

Conditions may read the shape of a block's input (``input.channels``), so each node's
output shape is inferred as soon as the node exists (the op's shape rule); the rest of
the analysis (params, MACs, receptive field) runs afterwards on the finished graph.

Naming: a layer's node is called by its ``id``, or ``<op>_<n>`` counted per kind within
its scope; a block instance is a scope, so nodes are named ``layer2.basic_1.conv2d_1``,
and a repeated layer ``X`` becomes ``X.0``, ``X.1``... (torchvision's ``layer1.0.conv1``) —
or, where its id holds ``$index`` (``encoder_layer_$index``), the id with the copy's number
put in (torchvision's ViT: ``encoder.layers.encoder_layer_0``).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from archc.errors import AttrError, ExprError, Pos, ShapeError, SpecError, SpecErrors
from archc.ir.graph import INPUT, Graph, Node
from archc.ir.names import INDEX, name_fix, name_problem
from archc.ops.registry import REQUIRED, Op, get_op, suggest
from archc.spec.document import REQUIRED_ARG, Document, NetworkDef
from archc.spec.expr import UnknownInput, evaluate, is_expression
from archc.spec.loader import LDict, LList
from archc.spec.schema import COMMON_KEYS

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DOTTED = re.compile(r"[A-Za-z0-9_.]+")
# `$index` in a literal id numbers a repeat's copies (`block$index` -> block0, block1, ...)
INDEXED = re.compile(r"\$index(?![A-Za-z0-9_])")
MAX_NODES = 200_000
MAX_REPEAT = 10_000
MAX_ERRORS = 200
MAX_BLOCK_DEPTH = 32  # block instances nested in each other (each level is a Python frame chain)
FAILED = "?"  # names of layers that failed start with it: no shape, and no further errors


def valid_id(name: str) -> bool:
    """An id that can become a Python attribute of generated code, safely (archc/ir/names.py)."""
    return id_problem(name) is None


def id_problem(name: str) -> tuple[str, str] | None:
    """Why ``name`` cannot be a layer's ``id`` — (message, fix) — or None when it can.

    An id is a name, or a dotted path of names and repeat indices (``layer1.0.conv1``, as
    ``archc expand`` writes its nodes, so that its output reads back as the same network
    with the same state_dict keys): the layer then sits inside those containers."""
    # other characters than a dotted path's: judge the whole id, not its pieces around dots
    parts = name.split(".") if _DOTTED.fullmatch(name) else [name]
    for j, part in enumerate(parts):
        if j and INDEX.fullmatch(part):
            continue
        problem = name_problem(part)
        if problem:
            where = f"id {name!r}" if len(parts) == 1 else f"id {name!r}: part {part!r}"
            return f"{where} {problem}", name_fix(part)
    return None


@dataclass
class Scope:
    prefix: str  # dotted name of the block instance ("" at the top)
    env: dict
    input: str  # node name of the scope's input
    path: str  # spec path of the instance chain, for messages
    stack: tuple = ()  # block templates being expanded (recursion check)
    scope: tuple = ()
    blocks: tuple = ()
    notes: list = field(default_factory=list)  # "in block instance ..." notes
    ids: dict = field(default_factory=dict)  # local id -> node name of its output
    counters: dict = field(default_factory=dict)
    visible: dict | None = None  # blocks callable here (an imported block's file), else the doc's
    frozen: bool = False  # inside a block call with `trainable: false`: every layer is frozen
    patterns: dict = field(default_factory=dict)  # `block`, `block$index` -> (pattern, count)

    def full(self, local: str) -> str:
        return f"{self.prefix}.{local}" if self.prefix else local


class Expander:
    def __init__(self, doc: Document, net: NetworkDef):
        self.doc, self.net = doc, net
        self.nodes: list[Node] = []
        self.names: set[str] = {INPUT}
        self.shapes: dict[str, tuple | None] = {INPUT: net.input}
        self.dtypes: dict[str, str | None] = {INPUT: net.input_dtype}
        self.errors: list[SpecError] = []
        self.n_failed = 0
        self.n_unknown = 0  # expressions that read an input left unknown by an earlier error

    # -- entry ---------------------------------------------------------------------------
    def run(self) -> Graph:
        top = Scope("", dict(self.net.env), INPUT, getattr(self.net, "path", ""))
        last = self.layers(self.net.layers, top)
        outputs = [last]
        if self.net.outputs:
            outs = self.net.outputs
            outputs = [self.ref(o, top, outs.pos_of(i) if isinstance(outs, LList) else self.net.pos,
                                f"{top.path}outputs[{i}]") for i, o in enumerate(outs)]
        if self.n_failed and not self.errors:  # a bug: never fail silently
            self.error("internal error: a layer failed without a message", self.net.pos, "",
                       "please report this spec")
        if self.errors:
            raise SpecErrors(self.errors)
        if not self.nodes:
            raise SpecErrors.one("the network has no layers", self.net.pos, fix="add layers")
        return Graph(self.net.name, self.net.input, self.nodes, [o for o in outputs if o],
                     self.doc.file, self.doc.text_hash, self.net.train, dict(self.net.env),
                     input_dtype=self.net.input_dtype, input_vocab=self.net.input_vocab,
                     preset=self.doc.preset, overrides=dict(self.doc.overrides))

    def error(self, message, pos, path, fix="", scope: Scope | None = None):
        self.errors.append(SpecError(message, pos, path, fix, list(scope.notes) if scope else []))
        if len(self.errors) >= MAX_ERRORS:  # a file that is mostly errors: stop, in bounded time
            self.errors[-1].notes.append((None, f"stopping after {MAX_ERRORS} errors; fix these first"))
            raise SpecErrors(self.errors)

    def failed(self, scope: Scope, local: str | None = None) -> str:
        """Stand-in output of a layer that failed (its error is already recorded): it has
        no shape, so the layers that read it are checked but raise no follow-on errors."""
        self.n_failed += 1
        name = f"{FAILED}{self.n_failed}"
        self.shapes[name] = None
        if local and valid_id(local) and local not in scope.ids:
            scope.ids[local] = name
        return name

    # -- a list of layers ----------------------------------------------------------------
    def layers(self, items: LList, scope: Scope) -> str:
        declared = self._declared_ids(items)
        prev = scope.input
        for i, item in enumerate(items):
            if len(self.nodes) > MAX_NODES:
                self.error(f"the network expands to more than {MAX_NODES:,} nodes", items.pos_of(i),
                           scope.path, "check repeat counts", scope)
                raise SpecErrors(self.errors)
            prev = self.layer(items, i, scope, prev, declared)
        return prev

    def _declared_ids(self, items: LList) -> dict:
        """Literal ids of this list -> (index, literal `from`), to explain forward refs."""
        out = {}
        for i, item in enumerate(items):
            body = next(iter(item.values())) if isinstance(item, dict) and item else None
            if isinstance(body, dict) and isinstance(body.get("id"), str) and "$" not in body["id"]:
                src = body.get("from")
                out.setdefault(body["id"], (i, [src] if isinstance(src, str) else list(src or [])))
        return out

    def layer(self, items: LList, i: int, scope: Scope, prev: str, declared: dict) -> str:
        item = items[i]
        kind, body = (item, LDict()) if isinstance(item, str) else next(iter(item.items()))
        if body is None:
            body = LDict()
        if not hasattr(body, "pos"):
            body.pos = items.pos_of(i)
        path = f"{scope.path}layers[{i}].{kind}"
        pos = items.pos_of(i)
        env = scope.env
        op = get_op(kind)
        block = (scope.visible or self.doc.blocks).get(kind)
        literal_id = body.get("id") if isinstance(body.get("id"), str) else None
        if op is None and block is None:
            self.error(f"unknown op or block `{kind}`", pos, path,
                       suggest(kind, list(self._known_kinds())), scope)
            return self.failed(scope, literal_id)
        # when: skipped layers stand for their input
        inputs = self.inputs(body, scope, prev, path, declared, i)
        if inputs is None:
            return self.failed(scope, literal_id)
        if "when" in body:
            before = len(self.errors)
            cond = self.value(body["when"], env, scope, body.pos_of("when"), path + ".when", force=True)
            if len(self.errors) > before:
                return self.failed(scope, literal_id)
            if not cond:  # (a `$index` id names copies that do not exist: nothing to name)
                indexed = "id" in body and self.indexed_id(body, scope, path) is not None
                local = self.local_id(body, kind, scope, path) if "id" in body and not indexed else None
                if local is not None:
                    scope.ids[local] = inputs[0]
                return inputs[0]
        count = 1
        if "repeat" in body:
            before = len(self.errors)
            count = self.value(body["repeat"], env, scope, body.pos_of("repeat"), path + ".repeat")
            if len(self.errors) > before:
                return self.failed(scope, literal_id)
            if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_REPEAT:
                self.error(f"repeat must be an integer from 0 to {MAX_REPEAT:,}, got {count!r}",
                           body.pos_of("repeat"), path + ".repeat",
                           "use a whole count; for more, nest a repeated block in a repeated block"
                           if isinstance(count, int) and count > MAX_REPEAT else "write a count like 3",
                           scope)
                return self.failed(scope, literal_id)
            if count == 0:
                return inputs[0]
        pattern = self.indexed_id(body, scope, path)
        if pattern is not None:
            return self.indexed_copies(pattern, count, op, block, body, scope, inputs, path, pos)
        local = self.local_id(body, kind, scope, path)
        if local is None:
            return self.failed(scope, literal_id)
        out = inputs
        for k in range(count):
            name = local if "repeat" not in body else f"{local}.{k}"
            env_k = env | {"index": k} if "repeat" in body else env
            if op is not None:
                out = [self.op_node(op, body, scope, env_k, out, name, path, pos)]
            else:
                out = [self.block_call(block, body, scope, env_k, out, name, path, pos)]
            if out[0] is None:
                return self.failed(scope, local)
        scope.ids[local] = out[0]
        return out[0]

    def indexed_id(self, body, scope, path) -> str | None:
        """The id if it holds `$index` (a pattern naming each copy of the repeat), else None;
        `$index` anywhere else than a repeated layer's literal id is an error (recorded, and
        the id is still returned so that the layer fails)."""
        raw = body.get("id")
        if type(raw) is not str or "$index" not in raw or not INDEXED.search(raw):
            return None  # (the substring test first: this runs for every layer)
        pos, where = body.pos_of("id"), path + ".id"
        if is_expression(raw):
            self.error(f"id {raw!r} mixes `$index` with an expression", pos, where,
                       "write the id literally, with `$index` where the copy's number goes "
                       "(`block$index`); a `${…}` template is evaluated once, for the whole repeat",
                       scope)
        elif "repeat" not in body:
            self.error(f"id {raw!r} holds `$index`, which numbers the copies of a repeat, but "
                       f"this layer has no `repeat:`", pos, where,
                       "add `repeat: N`, or drop `$index`; for the number of the repeat that called "
                       "this block, use a template: `\"block${index}\"`", scope)
        return raw

    def indexed_copies(self, pattern, count, op, block, body, scope, inputs, path, pos) -> str:
        """A repeat whose id holds `$index`: copy k is named by the id with k put in
        (`layers.encoder_layer_$index` -> layers.encoder_layer_0, ...); each copy is an id of
        the scope, and the bare pattern is no layer (`from:` names a copy)."""
        if is_expression(pattern) or "repeat" not in body:
            return self.failed(scope)  # indexed_id reported it
        where = body.pos_of("id")
        if "$" in INDEXED.sub("", pattern):
            self.error(f"id {pattern!r}: `$index` is the only expression an id may hold", where,
                       path + ".id", "write the copy's number as `$index`; other values go in "
                       "a `${…}` template of an id without `$index`", scope)
            return self.failed(scope)
        out = inputs
        for k in range(count):
            local = INDEXED.sub(str(k), pattern)
            if not self.check_local(local, body, scope, path):
                return self.failed(scope)
            env_k = scope.env | {"index": k}
            if op is not None:
                out = [self.op_node(op, body, scope, env_k, out, local, path, pos)]
            else:
                out = [self.block_call(block, body, scope, env_k, out, local, path, pos)]
            if out[0] is None:
                return self.failed(scope)
            scope.ids[local] = out[0]
        stem = pattern.split("$index")[0].rstrip("._")
        bare = {pattern, INDEXED.sub("", pattern)}
        bare.update(".".join(stem.split(".")[:j]) for j in range(1, stem.count(".") + 2))
        for name in bare - {""}:
            scope.patterns.setdefault(name, (pattern, count))
        return out[0]

    def _known_kinds(self):
        from archc.ops.registry import REGISTRY

        return list(REGISTRY) + list(self.doc.blocks)

    # -- ids and inputs ------------------------------------------------------------------
    def local_id(self, body, kind, scope, path) -> str | None:
        if "id" in body:
            raw = body["id"]
            local = raw if type(raw) is str and _literal(raw) else \
                self.text(raw, scope.env, scope, body.pos_of("id"), path + ".id")
            if local is None:
                return None
            return local if self.check_local(local, body, scope, path) else None
        n = scope.counters.get(kind, 0)
        while True:
            n += 1
            local = f"{kind}_{n}"
            if local not in scope.ids and scope.full(local) not in self.names:
                break
        scope.counters[kind] = n
        return local

    def check_local(self, local: str, body, scope, path) -> bool:
        """A layer's id (or one copy's, for a `$index` id) is a safe, unused name."""
        problem = id_problem(local)
        if problem:
            self.error(problem[0], body.pos_of("id"), path + ".id", problem[1], scope)
            return False
        if local in scope.ids or scope.full(local) in self.names:
            self.error(f"duplicate id {local!r}", body.pos_of("id"), path + ".id",
                       "ids must be unique within a network or block", scope)
            return False
        full = scope.full(local).split(".")
        for inside in (".".join(full[:j]) for j in range(1, len(full))):
            if inside in self.names:  # a dotted id may not put a layer inside a layer
                self.error(f"id {local!r} puts a layer inside `{inside}`, which is a layer",
                           body.pos_of("id"), path + ".id", "rename one of them", scope)
                return False
        return True

    def inputs(self, body, scope, prev, path, declared, index) -> list[str] | None:
        if "from" not in body:
            return [prev]
        src = body["from"]
        refs = [src] if isinstance(src, str) else list(src)
        out = []
        for j, ref in enumerate(refs):
            if type(ref) is str and _literal(ref) and ref != "input" and "." not in ref and ref in scope.ids:
                out.append(scope.ids[ref])  # what text() and ref() give a plain id seen above
                continue
            where = body.pos_of("from") if isinstance(src, str) else body["from"].pos_of(j)
            ref = self.text(ref, scope.env, scope, where, path + ".from")
            if ref is None:
                return None
            name = self.ref(ref, scope, where, path + ".from", declared, index)
            if name is None:
                return None
            out.append(name)
        return out

    def ref(self, ref: str, scope: Scope, pos, path, declared=None, index=None) -> str | None:
        if ref == "input":
            return scope.input
        if "." in ref and ref in scope.ids:  # a dotted id (`layer1.0.conv1`)
            return scope.ids[ref]
        head, _, rest = ref.partition(".")
        if head in scope.ids:
            if not rest or scope.ids[head].startswith(FAILED):
                return scope.ids[head]
            inner = scope.full(ref)
            if inner in self.names:
                return inner
        parts = ref.split(".")
        if any(".".join(parts[:j]) in scope.ids for j in range(2, len(parts))) and \
                scope.full(ref) in self.names:  # inside a dotted id's instance (`layers.block_0.conv`)
            return scope.full(ref)
        if ref in scope.patterns:
            pattern, count = scope.patterns[ref]
            copies = " … ".join(dict.fromkeys(INDEXED.sub(str(k), pattern) for k in (0, count - 1)))
            self.error(f"`{ref}` is no layer: the repeat `{pattern}` names its copies {copies}", pos, path,
                       f"name one copy: `{INDEXED.sub(str(count - 1), pattern)}` (the last)", scope)
            return None
        if declared and head in declared and declared[head][0] >= index:
            cycle = self._cycle(head, declared, index)
            msg = (f"cycle: {' → '.join(cycle)}" if cycle else
                   f"`{head}` is defined later (layers[{declared[head][0]}]); a layer reads only layers above it")
            self.error(msg, pos, path, "layers run top to bottom: reorder them or remove the loop", scope)
            return None
        if head in scope.ids:  # a dotted id: name what the instance holds
            start = scope.full(head) + "."
            cut = len(scope.prefix) + 1 if scope.prefix else 0
            known = sorted(n[cut:] for n in self.names if n.startswith(start))
        else:
            known = list(scope.ids) + ["input"]
        hint = suggest(ref, known)
        if not hint.startswith("did you mean"):
            hint = "ids here: " + ", ".join(known[:12]) + (", …" if len(known) > 12 else "")
        self.error(f"unknown id `{ref}`", pos, path, hint, scope)
        return None

    def _cycle(self, target: str, declared: dict, index: int) -> list[str] | None:
        """If `target` (defined later) reads back, through literal `from`s, the layer at
        `index`, return the loop of ids."""
        me = next((k for k, (i, _) in declared.items() if i == index), None)
        if me is None:
            return None
        path, node, seen = [me, target], target, {target}
        while node in declared:
            srcs = [s for s in declared[node][1] if s in declared]
            if me in declared[node][1]:
                return path + [me]
            if not srcs or srcs[0] in seen:
                return None
            node = srcs[0]
            seen.add(node)
            path.append(node)
        return None

    # -- values --------------------------------------------------------------------------
    def value(self, raw, env, scope, pos, path, force=False, input_name=None):
        if not (is_expression(raw) or (force and isinstance(raw, str))):
            if isinstance(raw, list):
                return [self.value(v, env, scope, pos, path, input_name=input_name) for v in raw]
            return raw
        try:
            return evaluate(raw, env, self.shapes.get(input_name or scope.input))
        except UnknownInput as exc:
            if not self.errors:  # else the input is unknown because of an error above
                self.error(exc.message, pos, path, exc.fix, scope)
            self.n_unknown += 1  # `defined` must not take this None for a null variable
            return None
        except ExprError as exc:
            self.error(exc.message, pos, path, exc.fix, scope)
            return None

    def defined(self, raw, env, scope, pos, path, input_name=None):
        """A value that must not be null: (value, ok); an error is recorded when not ok."""
        before, unknown = len(self.errors), self.n_unknown
        value = self.value(raw, env, scope, pos, path, input_name=input_name)
        if len(self.errors) > before or self.n_unknown > unknown:  # reported, here or above
            return None, False
        if value is None and is_expression(raw):
            self.error(f"{raw!r} evaluates to null", pos, path,
                       "give the variable a value (`--set NAME=VALUE`)", scope)
            return None, False
        return value, True

    def text(self, raw, env, scope, pos, path) -> str | None:
        value, ok = self.defined(raw, env, scope, pos, path)
        return str(value) if ok else None

    # -- an op node ----------------------------------------------------------------------
    def op_node(self, op, body, scope, env, inputs, local, path, pos) -> str | None:
        attrs, ok, misspelt, given = {}, True, set(), set()
        for key, raw in body.items():
            if key in COMMON_KEYS or (raw is None and key in op.attrs):
                continue  # `key: null` (or `key:`) means the default
            if key not in op.attrs:
                close = difflib.get_close_matches(key, list(op.attrs), n=3, cutoff=0.6)
                misspelt.update(close)  # `kernal` is reported; a missing `kernel` would repeat it
                listing = (f"attributes: {', '.join(op.attrs)}" if op.attrs else
                           f"`{op.name}` takes no attributes")
                self.error(f"`{op.name}` has no attribute `{key}`", body.key_pos_of(key), f"{path}.{key}",
                           suggest(key, op.attrs).replace("`archc ops` lists the op kinds", listing),
                           scope)
                ok = False
                continue
            given.add(key)
            if _literal(raw):
                value = raw
            else:
                value, defined = self.defined(raw, env, scope, body.pos_of(key), f"{path}.{key}")
                if not defined:
                    ok = False
                    continue
            try:
                attrs[key] = op.attrs[key].type.check(value) if value is not None else None
            except AttrError as exc:
                fix = exc.fix or ("" if exc.message.startswith("expected")
                                  else f"use {_accepted(op.attrs[key].type)}")
                self.error(exc.message, body.pos_of(key), f"{path}.{key}", fix, scope)
                ok = False
        for key, spec in op.attrs.items():
            if key not in attrs and key not in given:
                if spec.default is REQUIRED and key in misspelt:
                    ok = False
                elif spec.default is REQUIRED:
                    self.error(f"`{op.name}` needs `{key}` ({spec.type.text})", pos, path,
                               f"add `{key}:`" + (f" ({spec.doc})" if spec.doc else ""), scope)
                    ok = False
                else:
                    attrs[key] = _default(spec)
        lo, hi = (op.arity, op.arity) if isinstance(op.arity, int) else op.arity
        if not lo <= len(inputs) <= (hi or len(inputs)):
            want = f"{lo}" if lo == hi else f"{lo} or more" if hi is None else f"{lo} to {hi}"
            self.error(f"`{op.name}` takes {want} input(s), got {len(inputs)}", pos, path,
                       "list the inputs in `from: [a, b]`", scope)
            ok = False
        if not ok:
            return None
        attrs = op.normalize(attrs)
        name = scope.full(local)
        node = Node(name, op.name, attrs, list(inputs), pos, path, scope.scope, scope.blocks)
        node.meta["trainable"] = body.get("trainable", True) and not scope.frozen
        if "init" in body:
            node.meta["init"] = body["init"]
        self.infer(op, node, scope)
        if "tie" in body and not self.tie(op, node, body, scope, env, path):
            return None
        self.nodes.append(node)
        self.names.add(name)
        return name

    def _index_of(self, name: str) -> int:
        if getattr(self, "_positions", None) is None or len(self._positions) != len(self.nodes):
            self._positions = {n.name: i for i, n in enumerate(self.nodes)}
        return self._positions[name]

    def tie(self, op, node: Node, body, scope: Scope, env, path) -> bool:
        """`tie: ID`: the node's weight is the weight of layer ID (same tensor, same shape)."""
        pos, where = body.pos_of("tie"), f"{path}.tie"
        ref = self.text(body["tie"], env, scope, pos, where)
        target = self.ref(ref, scope, pos, where) if ref is not None else None
        if target is None:
            return False
        if target == INPUT:
            self.error("`tie` names a layer, not the input", pos, where, "name a layer's id", scope)
            return False
        other = None if target.startswith(FAILED) else self.nodes[self._index_of(target)]
        for n in (node, other):
            if n is not None and type(get_op(n.op)).tied_weight is Op.tied_weight:
                self.error(f"`{n.op}` has no weight that can be tied", pos, where,
                           "tie linear and embedding layers", scope)
                return False
        if other is None or node.meta["shape"] is None or other.meta["shape"] is None:
            return True  # an error above already explains it
        mine = op.tied_weight(node.attrs, [self.shapes.get(i) for i in node.inputs])
        theirs = get_op(other.op).tied_weight(other.attrs, [self.shapes.get(i) for i in other.inputs])
        if tuple(mine[1]) != tuple(theirs[1]):
            self.error(f"`{node.name}`'s {mine[0]} has shape {list(mine[1])} but `{target}`'s "
                       f"{theirs[0]} has shape {list(theirs[1])}", pos, where,
                       "tied tensors must have the same shape (a linear's weight is [out, in], an "
                       "embedding's [num, dim])", scope)
            return False
        node.meta["tie"] = (target, mine[0], theirs[0])
        return True

    def infer(self, op, node: Node, scope: Scope) -> None:
        """The node's output shape and dtype (None where an input is unknown or on error).
        The dtype is checked first: token ids reaching a conv need an embedding, not a reshape."""
        ins = [self.shapes.get(i) for i in node.inputs]
        shape = dtype = None
        if all(s is not None for s in ins):
            try:
                dtype = op.dtype(node.attrs, ins, [self.dtypes.get(i) for i in node.inputs])
                shape = tuple(op.infer(node.attrs, ins))
            except ShapeError as exc:
                message = exc.message
                if len(node.inputs) > 1:
                    message += " (inputs: " + ", ".join(
                        f"`{i}` {list(s)}" for i, s in zip(node.inputs, ins)) + ")"
                else:
                    message += f" (input `{node.inputs[0]}` {list(ins[0])})"
                self.error(f"`{node.name}`: {message}", node.pos, node.path, exc.fix, scope)
                dtype = None
            self._check_vocab(op, node, scope)
        node.meta["shape"], node.meta["dtype"] = shape, dtype
        self.shapes[node.name] = shape
        self.dtypes[node.name] = dtype

    def _check_vocab(self, op, node: Node, scope: Scope) -> None:
        """An embedding reading the input must have a row for every declared token id."""
        limit, vocab = op.id_limit(node.attrs), self.net.input_vocab
        if limit and node.inputs == [INPUT] and vocab and vocab > limit:
            self.error(f"`{node.name}`: the input's token ids go up to {vocab - 1} (vocab {vocab}) "
                       f"but the embedding has {limit} rows", node.pos, node.path,
                       f"set num to {vocab} or lower the input's vocab", scope)

    # -- a block call --------------------------------------------------------------------
    def block_call(self, block, body, scope, env, inputs, local, path, pos) -> str | None:
        if block.name in scope.stack:
            loop = " → ".join(scope.stack[scope.stack.index(block.name):] + (block.name,))
            self.error(f"block `{block.name}` uses itself ({loop})", pos, path,
                       "a block cannot contain itself; use `repeat` for repetition", scope)
            return None
        if len(scope.stack) >= MAX_BLOCK_DEPTH:
            self.error(f"blocks nested more than {MAX_BLOCK_DEPTH} deep", pos, path,
                       "flatten the block structure", scope)
            return None
        if len(inputs) != 1:
            self.error(f"block `{block.name}` takes one input, got {len(inputs)}", pos, path,
                       "join the inputs (concat/add) first", scope)
            return None
        args, ok = {}, True
        if "tie" in body:
            self.error(f"`tie` shares the weight of one layer; `{block.name}` is a block", body.key_pos_of("tie"),
                       f"{path}.tie", "put `tie:` on the linear or embedding layer inside the block", scope)
            ok = False
        for key, raw in body.items():
            if key in COMMON_KEYS or (raw is None and key in block.args):
                continue  # `arg: null` means the default, as for op attributes
            if key not in block.args:
                self.error(f"block `{block.name}` has no argument `{key}`", body.key_pos_of(key),
                           f"{path}.{key}", suggest(key, block.args).replace(
                               "`archc ops` lists the op kinds",
                               "arguments: " + (", ".join(block.args) or "none")), scope)
                ok = False
                continue
            args[key], defined = self.defined(raw, env, scope, body.pos_of(key), f"{path}.{key}",
                                              input_name=inputs[0])
            ok = ok and defined
        for key, default in block.args.items():
            if key not in args and body.get(key) is None:
                if default == REQUIRED_ARG:
                    self.error(f"block `{block.name}` needs argument `{key}`", pos, path,
                               f"add `{key}:` to the call", scope)
                    ok = False
                else:
                    args[key] = default
        if not ok:
            return None
        inner_env = dict(block.env) | args
        if "index" in env:
            inner_env.setdefault("index", env["index"])
        note = (pos, f"in `{scope.full(local)}`, an instance of block `{block.name}` "
                     f"(defined at {block.pos})")
        inner = Scope(scope.full(local), inner_env, inputs[0], f"{path} > blocks.{block.name}.",
                      scope.stack + (block.name,), scope.scope + (local,), scope.blocks + (block.name,),
                      [note] + scope.notes, visible=block.visible or scope.visible,
                      frozen=scope.frozen or body.get("trainable", True) is False)
        before = len(self.errors)
        out = self.layers(block.layers, inner)
        if len(self.errors) > before:
            return None
        if out == inputs[0]:
            return out  # every layer of the block was skipped
        return out


_DEFAULTS: dict[int, tuple] = {}  # id of an op's Attr -> (the Attr, its checked default)


def _default(spec):
    """An attribute's default as its type checks it (a kernel's 1 -> (1, 1)), computed once
    per attribute where the result cannot be changed in place (numbers, text, tuples of
    them): every conv of a 10,000-layer spec asks for the same stride and dilation."""
    hit = _DEFAULTS.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1]
    value = spec.type.check(spec.default) if spec.default is not None else None
    if _immutable(value):
        _DEFAULTS[id(spec)] = (spec, value)
    return value


def _immutable(value) -> bool:
    if isinstance(value, tuple):
        return all(_immutable(v) for v in value)
    return value is None or type(value) in (int, float, str, bool)


def _literal(raw) -> bool:
    """A value written as it is meant (no expression, not a list that may hold one):
    evaluating it gives it back, so the common case skips the position and path that only
    an error message would need."""
    return not (isinstance(raw, list) or is_expression(raw))


def _accepted(attr_type) -> str:
    """What an attribute type accepts, with both bounds: `a number ≥ 0 and ≤ 1`."""
    text = attr_type.text
    lo, hi = getattr(attr_type, "min", None), getattr(attr_type, "max", None)
    if lo is not None and "≥" not in text:
        text += f" {'>' if getattr(attr_type, 'exclusive_min', False) else '≥'} {lo}"
    if hi is not None:
        text += f"{' and' if lo is not None else ''} ≤ {hi}"
    return text


def expand(doc: Document, network: str | None = None) -> Graph:
    """Build the graph IR of one network of a document."""
    net = select_network(doc, network)
    return Expander(doc, net).run()


def select_network(doc: Document, network: str | None) -> NetworkDef:
    if not doc.networks:
        raise SpecErrors.one("this file defines blocks only, no network", Pos(doc.file),
                             fix="import its blocks from a spec that has `layers:`")
    if network is None:
        if len(doc.networks) == 1:
            return next(iter(doc.networks.values()))
        raise SpecErrors.one(f"the file defines {len(doc.networks)} networks", Pos(doc.file),
                             fix="choose one: " + ", ".join(f"{doc.file}:{n}" for n in doc.networks))
    if network not in doc.networks:
        hint = suggest(network, doc.networks)
        raise SpecErrors.one(f"no network {network!r} in this file", Pos(doc.file),
                             fix=hint if hint.startswith("did you mean") else
                             "networks: " + ", ".join(doc.networks))
    return doc.networks[network]
