"""The module hierarchy as the spec's structure: blocks, arguments, ``when:`` and ``repeat``.

The traced layers (archc/importers/torch_trace.py) sit in a tree of module calls. Plain
containers (``nn.Sequential``, ``ModuleList``, ``ModuleDict``) are transparent: their
children's ids become dotted (``features.0``, ``layer1.0``). Any other module class is a
candidate block. Classes are decided innermost first; an instance can be a block call when
it reads one tensor from outside, only its last layer is read from outside, and its ids
are valid archc ids (a child named ``0`` is not). The instances of a class are unified
into groups: the same layers with the same wiring, where some layers may be missing in some
instances (they get ``when:``; a missing layer stands for its first input, as archc's
``when`` does, so the wiring is checked under that rule). Attributes that differ become
arguments (merged when they agree wherever both are defined: ResNet's ``conv2`` stride and
``downsample.0`` stride are one ``stride``), with the most common value as default. A group
of two or more instances is a block; any other instance is inlined, its layers taking
dotted ids. An attribute that follows the width of the call's input in every instance is
written ``$input.channels`` (times a constant) instead of an argument. The bodies are then
written out by archc/importers/torch_render.py (runs of copies as ``repeat``).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from archc.importers.onnx_names import clean
from archc.importers.torch_trace import CONTAINERS, Item
from archc.ir.names import IDENT, INDEX, name_problem
from archc.ops.registry import get_op

MISSING = object()  # an attribute of a layer an instance does not have


@dataclass
class Scope:
    key: str
    path: str
    cls: type
    children: list = field(default_factory=list)  # Item | Scope, in call order
    height: int = 0


@dataclass
class Entry:
    """A layer or a block call of one body: inputs and output are traced value names, ``id``
    the fixed id relative to the body (None: a layer without tensors), ``hint`` a name."""

    kind: str
    attrs: dict
    inputs: list
    output: str
    id: str | None
    hint: str


@dataclass
class Line:
    """A line of a rendered body: ``refs`` are 'input' or indices of earlier lines' entries."""

    kind: str
    attrs: dict
    refs: list
    id: str | None
    hint: str
    when: str | None = None


@dataclass
class Block:
    name: str
    lines: list  # Line
    args: dict  # name -> default


def tree(items: list[Item], root_cls: type) -> tuple[Scope, list[Scope]]:
    """The scopes of the module calls, outermost first; each item in its innermost scope."""
    root, scopes = Scope("", "", root_cls), {}
    for item in items:
        node = root
        for key, path, cls in item.stack:
            if key not in scopes:
                scopes[key] = Scope(key, path, cls)
                node.children.append(scopes[key])
            node = scopes[key]
        node.children.append(item)
    _heights(root)
    return root, list(scopes.values())


def _heights(scope: Scope) -> int:
    scope.height = 1 + max((_heights(c) for c in scope.children if isinstance(c, Scope)), default=0)
    return scope.height


def _rel(path: str, base: str) -> str | None:
    """``path`` relative to the scope ``base``; "" for the scope itself (a function's layer
    owning its module's tensors: LayerNorm2d's ``F.layer_norm``), None outside it."""
    if not base:
        return path
    if path == base:
        return ""
    return path[len(base) + 1:] if path.startswith(base + ".") else None


def _joined(rel: str | None, id: str) -> str:
    """An inner id seen from the scope above: ``rel.id``; the scope's own layer ("") is ``rel``."""
    if rel is None:
        return "\0" + id  # a module owned elsewhere: not a valid relative id
    return f"{rel}.{id}" if id else rel


def valid_id(text: str | None) -> bool:
    parts = (text or "").split(".")
    return bool(IDENT.fullmatch(parts[0])) and not name_problem(parts[0]) and all(
        INDEX.fullmatch(p) or (IDENT.fullmatch(p) and not name_problem(p)) for p in parts[1:])


def snake(name: str) -> str:
    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name.strip("_")).lower()
    return clean(s or "block")


class Structure:
    """Decide which module calls are blocks; give every body as lines."""

    def __init__(self, root: Scope, scopes: list[Scope], items: list[Item], outputs: list[str],
                 input_shape: tuple = ()):
        self.root, self.blocks, self.calls = root, [], {}  # calls: scope key -> (block, args, ext, …)
        self.shapes = {it.name: it.shape for it in items} | {"input": tuple(input_shape)}
        # a module without tensors called once keeps its path as id (maxpool, avgpool); one
        # called several times (ResNet's relu) leaves its calls unnamed
        paths = Counter(it.path for it in items if it.path)
        self.named = {p for p, n in paths.items() if n == 1}
        self.escapes = self._escaping(items, outputs)
        self.bad_ids: list[str] = []
        by_class: dict = {}
        for s in scopes:
            if s.cls not in CONTAINERS:
                by_class.setdefault(s.cls, []).append(s)
        for cls, instances in sorted(by_class.items(), key=lambda kv: max(s.height for s in kv[1])):
            self._decide(cls, instances)

    # ---- which values leave a scope

    @staticmethod
    def _escaping(items: list[Item], outputs: list[str]) -> dict:
        """scope key -> the values made inside it and read outside it (or network outputs)."""
        keys_of = {it.name: {k for k, _, _ in it.stack} for it in items}
        out: dict = {}
        for it in items:
            for v in it.inputs:
                for k in keys_of.get(v, set()) - keys_of[it.name]:
                    out.setdefault(k, set()).add(v)
        for v in outputs:
            for k in keys_of.get(v, set()):
                out.setdefault(k, set()).add(v)
        return out

    # ---- bodies

    def entries(self, scope: Scope) -> list[Entry]:
        """The scope's body: its layers and calls, ids relative to the scope."""
        out = []
        for child in scope.children:
            if isinstance(child, Item):
                rel = _rel(child.path, scope.path) if child.path else None
                fixed = rel if child.tensors or child.path in self.named else None
                if child.tensors and rel is None:
                    fixed = "\0" + child.path  # a module owned elsewhere: not a valid relative id
                out.append(Entry(child.op, child.attrs, child.inputs, child.name, fixed,
                                 rel or child.op))
                continue
            rel = _rel(child.path, scope.path)
            call = self.calls.get(child.key)
            if call is not None:
                block, args, ext, last, hoisted = call
                for e in hoisted:  # a merge of several outside values, done before the call
                    out.append(Entry(e.kind, e.attrs, e.inputs, e.output, None, f"{rel}.{e.hint}" if rel else e.hint))
                out.append(Entry(block.name, args, [ext], last, rel if rel is not None else "\0", rel or ""))
                continue
            for e in self.entries(child):
                out.append(Entry(e.kind, e.attrs, e.inputs, e.output, None if e.id is None else _joined(rel, e.id),
                                 f"{rel}.{e.hint}" if rel is not None else e.hint))
        return out

    def _instance(self, scope: Scope):
        """(entries, the outside value read, entries hoisted before the call) when the scope
        can be a block call, else None. A first layer without tensors that merges several
        outside values (DenseNet's concatenation of the features so far) is hoisted: the
        call then reads its result."""
        body, hoisted = self.entries(scope), []
        if not body or not self.escapes.get(scope.key, set()) <= {body[-1].output}:
            return None
        made = {e.output for e in body}
        outside = {v for e in body for v in e.inputs if v not in made}
        if len(outside) > 1 and len(body) > 1 and body[0].id is None and set(body[0].inputs) <= outside \
                and {v for e in body[1:] for v in e.inputs if v not in made} == set():
            hoisted, body = [body[0]], body[1:]
            outside = {hoisted[0].output}
        if len(outside) != 1 or not all(valid_id(e.id) for e in body if e.id is not None):
            return None
        return body, outside.pop(), hoisted

    # ---- unification

    def _decide(self, cls, instances: list[Scope]) -> None:
        groups: list[list] = []  # [template lines, [(scope, body, ext, mapping)]]
        for scope in instances:
            found = self._instance(scope)
            if found is None:
                continue
            body, ext, hoisted = found
            lines = _lines(body, ext)
            for g in groups:
                if self._join(g, scope, body, ext, lines, hoisted):
                    break
            else:
                groups.append([lines, [(scope, body, ext, list(range(len(lines))), hoisted)]])
        for template, members in groups:
            # a wrapper of one layer without tensors (torchvision's Permute) reads better inline
            if len(members) >= 2 and not (len(template) == 1 and template[0].id is None):
                self._block(cls, template, members)

    @staticmethod
    def _join(group: list, scope, body, ext, lines, hoisted) -> bool:
        """Add an instance to a group if their union explains both (the wiring of a layer
        both have is taken from either side: the one that sees the optional layers)."""
        for prefer in ("a", "b"):
            merged = _merge(group[0], lines, prefer)
            if merged is None:
                return False
            template, old, new = merged
            members = [(s, b, x, [old[i] for i in m], h) for s, b, x, m, h in group[1]]
            members.append((scope, body, ext, new, hoisted))
            for variant in (template, _swapped(template, members)):
                if all(_consistent(variant, _lines(b, x), m) for _, b, x, m, _ in members):
                    group[0], group[1] = variant, members
                    return True
        return False

    def _block(self, cls, template: list[Line], members: list) -> None:
        taken = {b.name for b in self.blocks}
        name, n = snake(cls.__name__), 1
        if get_op(name) is not None:
            name += "_block"
        base = name
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        args = _arguments(template, members, [self.shapes.get(ext, ()) for _, _, ext, _, _ in members])
        block = Block(name, template, {a: default for a, (default, _) in args.items()})
        self.blocks.append(block)
        for k, (scope, body, ext, _, hoisted) in enumerate(members):
            values = {a: vec[k] for a, (_, vec) in args.items() if vec[k] is not MISSING}
            self.calls[scope.key] = (block, values, ext, body[-1].output, hoisted)


COMMUTATIVE = ("add", "multiply")


def _lines(body: list[Entry], ext: str) -> list[Line]:
    index = {e.output: i for i, e in enumerate(body)}
    return [Line(e.kind, dict(e.attrs), ["input" if v == ext else index[v] for v in e.inputs], e.id, e.hint)
            for e in body]


def _merge(a: list[Line], b: list[Line], prefer: str = "a"):
    """The union of two bodies, aligned on (kind, id), or None when they do not align.
    Returns (union, a's index -> union index, b's index -> union index)."""
    keys = lambda lines: [(x.kind, x.id) for x in lines]  # noqa: E731
    sm = SequenceMatcher(None, keys(a), keys(b), autojunk=False)
    union, ia, ib = [], {}, {}
    for tag, a0, a1, b0, b1 in sm.get_opcodes():
        if tag == "replace":
            return None
        for i in range(a0, a1):
            ia[i] = len(union) + (i - a0)
        if tag == "equal":
            for j in range(b0, b1):
                ib[j] = len(union) + (j - b0)
            union += [(a[i], "a") if prefer == "a" else (b[b0 + i - a0], "b") for i in range(a0, a1)]
        elif tag == "delete":
            union += [(a[i], "a") for i in range(a0, a1)]
        else:
            for j in range(b0, b1):
                ib[j] = len(union) + (j - b0)
            union += [(b[j], "b") for j in range(b0, b1)]
    out = []
    for line, side in union:
        m = ia if side == "a" else ib
        out.append(Line(line.kind, line.attrs, [r if r == "input" else m[r] for r in line.refs], line.id, line.hint))
    return out, [ia[i] for i in range(len(a))], [ib[j] for j in range(len(b))]


def _swapped(template: list[Line], members: list) -> list[Line]:
    """The template with the inputs of its optional sums and products in the other order: a
    skipped merge stands for its first input, so MobileNetV2's ``x + f(x)``, skipped where
    there is no residual, must be written ``f(x) + x``."""
    optional = {t for t in range(len(template)) if any(t not in m for _, _, _, m, _ in members)}
    return [Line(x.kind, x.attrs, x.refs[::-1], x.id, x.hint) if t in optional and x.kind in COMMUTATIVE else x
            for t, x in enumerate(template)]


def _consistent(template: list[Line], lines: list[Line], mapping: list[int]) -> bool:
    """Whether ``lines`` is ``template`` with the missing layers standing for their first input."""
    present = set(mapping)

    def resolve(r):
        while r != "input" and r not in present:
            if not template[r].refs:
                return None
            r = template[r].refs[0]
        return r

    for line, m in zip(lines, mapping):
        have = ["input" if r == "input" else mapping[r] for r in line.refs]
        want = [resolve(r) for r in template[m].refs]
        if line.kind in COMMUTATIVE:
            have, want = sorted(map(str, have)), sorted(map(str, want))
        if want != have:
            return False
    return resolve(len(template) - 1) == mapping[-1]  # the block's output: its last layer


def _key(value):
    return (type(value).__name__, repr(value))


def _compatible(u: list, v: list) -> bool:
    return all(x is MISSING or y is MISSING or _key(x) == _key(y) for x, y in zip(u, v))


def _arguments(template: list[Line], members: list, inputs: list) -> dict:
    """The block's arguments: name -> (default, value per member); the template's attributes
    that differ become ``$name`` (or ``$input.channels``, ``"$input.channels * 4"`` where
    they follow the input's width in every member: ``inputs``, the members' input shapes),
    the layers some members lack get ``when: $name``."""
    vectors = []  # [name, vector, [(line, attr or None)], owner, is a when flag]
    bodies = [_lines(b, x) for _, b, x, _, _ in members]
    for t, line in enumerate(template):
        where = [m.index(t) if t in m else None for _, _, _, m, _ in members]
        own = [body[w] if w is not None else None for body, w in zip(bodies, where)]
        if any(w is None for w in where):
            flag = [w is not None for w in where]
            _add(vectors, "has_" + (line.id or line.hint or line.kind).split(".")[0], flag, (t, None), "", True)
        for attr in dict.fromkeys(a for o in own if o for a in o.attrs):
            vec = [o.attrs.get(attr, MISSING) if o else MISSING for o in own]
            present = [_key(v) for v in vec if v is not MISSING]
            width = _of_width(vec, inputs) if len(set(present)) > 1 else None
            if width:
                line.attrs[attr] = width
            elif len(set(present)) > 1:
                _add(vectors, attr, vec, (t, attr), line.id or line.hint or line.kind, False)
    names = Counter(v[0] for v in vectors)
    args, taken = {}, set()
    for name, vec, uses, owner, _ in vectors:
        if names[name] > 1 and owner:
            name = clean(f"{owner}_{name}".replace(".", "_"))
        name = clean(name)
        while name in taken or name in ("index", "input", "true", "false", "null"):
            name += "_"
        taken.add(name)
        values = Counter(_key(v) for v in vec if v is not MISSING)
        common = values.most_common(1)[0][0]
        default = next(v for v in vec if v is not MISSING and _key(v) == common)
        args[name] = (default, vec)
        for t, attr in uses:
            if attr is None:
                template[t].when = f"${name}"
            else:
                template[t].attrs[attr] = f"${name}"
    return args


def _of_width(vec: list, inputs: list) -> str | None:
    """``$input.channels`` (images: the first dimension) or ``$input.features`` (tokens,
    vectors: the last), times a constant integer, when every member's value is that."""
    ranks = {len(s) for s in inputs}
    if len(ranks) != 1 or 0 in ranks or not all(isinstance(v, int) and not isinstance(v, bool)
                                                  for v in vec if v is not MISSING):
        return None
    name, dim = ("channels", 0) if ranks.pop() >= 3 else ("features", -1)
    ratios = {v / s[dim] for v, s in zip(vec, inputs) if v is not MISSING}
    if len(ratios) != 1:
        return None
    ratio = ratios.pop()
    if ratio == 1:
        return f"$input.{name}"
    return f"$input.{name} * {int(ratio)}" if ratio.is_integer() else None


def _add(vectors: list, name: str, vec: list, use, owner: str, flag: bool) -> None:
    """A new argument, or a use of an existing one that agrees wherever both are defined."""
    for v in vectors:
        if v[4] == flag and _compatible(v[1], vec):
            v[1][:] = [x if x is not MISSING else y for x, y in zip(v[1], vec)]
            v[2].append(use)
            return
    vectors.append([name, list(vec), [use], owner, flag])


def body_lines(entries: list[Entry]) -> list[Line]:
    """The network's own body (its input is ``input``)."""
    return _lines(entries, "input")
