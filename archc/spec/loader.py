"""YAML text -> a plain tree that remembers where every value came from.

Untrusted YAML must never execute anything and never exhaust the machine, so:

* only YAML's safe tags are constructed (``!!python/...`` is an error, never run), and a
  value PyYAML cannot build (``!!int x``, a 5,000-digit integer) is a located error;
* the file size, the nesting depth and the number of values are bounded on the event
  stream, before anything is composed; the size of the tree *after* alias expansion is
  bounded too, and an alias inside the value it names is refused, so a "billion laughs"
  bomb or a self-containing value is rejected before anything walks it;
* duplicate mapping keys are errors (YAML silently keeps the last one), all reported at
  once with their paths; mapping keys are text; YAML dates stay text; merge keys
  (``<<: *defaults``) work, the mapping's own keys winning.

Mappings become :class:`LDict` and sequences :class:`LList`; both record the position
of each child (``pos_of(key)``) so later stages can point at the line of any value.

Two paths build the same tree: a plain document (no alias, anchor, tag or merge key, text
keys each given once, within the bounds) is built in one pass over libyaml's events
(:func:`_one_pass`); anything else, and every error, goes through the general path (the
bounds checked on the event stream, then libyaml's composer and PyYAML's constructor), so
error texts and positions come from one place. tests/spec/test_loader_one_pass.py checks
that both give the same tree, types and positions.
"""

from __future__ import annotations

import re

import yaml

from archc.errors import Pos, SpecError, SpecErrors
from archc.spec.expr import MAX_INT

MAX_BYTES = 4 * 1024 * 1024  # 4 MiB of YAML is far beyond any real network spec
MAX_DEPTH = 64  # nesting of mappings/sequences
# Values (scalars, mappings, sequences) in the file, and after alias expansion. The
# largest zoo spec holds about a thousand; 100,000 keeps the worst case (schema check and
# expansion of a 4 MiB file) to a few seconds.
MAX_NODES = 100_000
TOO_LARGE = "number too large"  # an integer literal above expressions' bound, MAX_INT



class _BaseLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """PyYAML's safe loader, reading numbers as YAML 1.2 does: PyYAML follows YAML 1.1,
    whose floats need a dot, so ``lr: 5e-4`` and ``eps: 1e-05`` would arrive as text."""


# YAML 1.2's exponent floats without a dot (1e-4, 5E+3, -2e5); the 1.1 resolver keeps the rest
_BaseLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


class LDict(dict):
    """A mapping that knows its own position and those of its keys and values.

    The keys' and values' positions are kept as the parser's marks and become
    :class:`Pos` only when asked for: a spec of 10,000 layers holds ~100,000 values, and
    only an error message needs the position of one of them.
    """

    pos: Pos
    _file = ""
    _key_marks: dict = {}  # key -> mark; the loader gives each mapping its own dicts
    _val_marks: dict = {}

    def pos_of(self, key) -> Pos:
        mark = self._val_marks.get(key)
        return self.pos if mark is None else _mark(mark, self._file)

    def key_pos_of(self, key) -> Pos:
        mark = self._key_marks.get(key)
        return self.pos if mark is None else _mark(mark, self._file)


class LList(list):
    """A sequence that knows its own position and those of its items (kept as marks, as
    :class:`LDict` keeps them)."""

    pos: Pos
    _file = ""
    _marks: list = []

    def pos_of(self, index: int) -> Pos:
        marks = self._marks
        return _mark(marks[index], self._file) if 0 <= index < len(marks) else self.pos


def plain(value):
    """A located tree as plain dicts and lists, for consumers that need no positions;
    keys become text (a config's keys are names)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def pos_of(container, key, fallback: Pos | None = None) -> Pos | None:
    """Position of ``container[key]`` when the container is located, else fallback."""
    if isinstance(container, (LDict, LList)):
        return container.pos_of(key)
    return fallback


def _mark(mark, file: str) -> Pos:
    return Pos(file, mark.line + 1, mark.column + 1)


def _index_pos(text: str, index: int, file: str) -> Pos:
    """The line and column of a character index (reader errors give only the index)."""
    index = max(0, min(index, len(text)))
    line = text.count("\n", 0, index) + 1
    return Pos(file, line, index - (text.rfind("\n", 0, index) + 1) + 1)


def _check_size(root, file: str) -> None:
    """Reject trees whose alias expansion is out of bounds, or that contain themselves
    (``a: &a [*a]``), without expanding them."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()  # the nodes on the current path from the root
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        children = []
        if isinstance(node, yaml.MappingNode):
            children = [c for kv in node.value for c in kv]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        if done:
            visiting.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[id(node)] > MAX_NODES:
                raise SpecErrors.one(
                    f"the document expands to more than {MAX_NODES:,} values through aliases",
                    _mark(node.start_mark, file),
                    fix="remove the nested aliases (*name); this looks like a 'billion laughs' bomb")
            continue
        if id(node) in sizes:
            continue
        if any(id(c) in visiting or c is node for c in children):
            raise SpecErrors.one("an alias refers to a value that contains it (a loop)",
                                 _mark(node.start_mark, file),
                                 fix="an alias (*name) may only repeat a value defined before it")
        visiting.add(id(node))
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)


def _check_depth(text: str, file: str) -> bool:
    """Bound the nesting depth and the number of values from the event stream, before
    composing, and stop at the first event past a bound.

    libyaml's composer recurses in C: a document nested 100,000 levels deep crashes the
    interpreter instead of raising, so the depth is checked on the (flat) event stream.
    Returns whether the composed tree's size still needs :func:`_check_size`: only a
    document with aliases can expand beyond its events.
    """
    depth, values, aliases = 0, 0, False
    for event in yaml.parse(text, Loader=_BaseLoader):
        if isinstance(event, yaml.NodeEvent):  # scalar, alias, mapping or sequence start
            values += 1
            aliases = aliases or isinstance(event, yaml.AliasEvent)
            if values > MAX_NODES:
                raise SpecErrors.one(
                    f"the file holds more than {MAX_NODES:,} values", _mark(event.start_mark, file),
                    fix="a network spec holds a few thousand; use `repeat` and blocks")
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise SpecErrors.one(
                    f"nesting deeper than {MAX_DEPTH} levels", _mark(event.start_mark, file),
                    fix="flatten the structure; no network spec needs this depth")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
    return aliases


_MERGE = "tag:yaml.org,2002:merge"


def _construct_int(loader, node):
    """An integer within the bound of computed ones (archc/spec/expr.py): a literal size
    of 10**30 channels is as wrong as `$w * 10**30`."""
    value = _BaseLoader.construct_yaml_int(loader, node)
    if abs(value) > MAX_INT:
        raise yaml.constructor.ConstructorError(None, None, TOO_LARGE, node.start_mark)
    return value


def _refuse(loader, node):
    raise yaml.constructor.ConstructorError(
        None, None, f"no constructor for the tag {node.tag!r}", node.start_mark)


class _ScalarLoader(_BaseLoader):
    """The safe loader with archc's scalars: bounded integers; a date stays the text it
    was written as; sets, binary, ordered maps are refused."""


_ScalarLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_ScalarLoader.add_constructor("tag:yaml.org,2002:timestamp", _BaseLoader.construct_yaml_str)
for _tag in ("set", "binary", "omap", "pairs"):
    _ScalarLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse)


def _make_loader(file: str, problems: list):
    """A safe loader building LDict/LList; key problems are appended to ``problems`` as
    (message, key position, (mapping, key), fix) so that all of them are reported together.
    Merge keys (``<<: *defaults``) work as in YAML 1.1: the mapping's own keys win."""

    class Loader(_ScalarLoader):
        def child(self, node):
            """construct_object, with a value PyYAML cannot build (``!!int x``, an integer
            of 5,000 digits) reported at its own line instead of escaping as a Python error."""
            try:
                return self.construct_object(node, deep=True)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise yaml.constructor.ConstructorError(
                    None, None, f"cannot read this value: {str(exc).split(';')[0]}",
                    node.start_mark) from None

    def construct_mapping(loader, node):
        _expect(node, yaml.MappingNode, "a mapping")
        own = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE)
        loader.flatten_mapping(node)  # merged pairs first, then the mapping's own
        merged = len(node.value) - own
        out, own_keys = LDict(), set()
        out.pos, out._file, out._key_marks, out._val_marks = _mark(node.start_mark, file), file, {}, {}
        for i, (key_node, value_node) in enumerate(node.value):
            key, kmark = loader.child(key_node), key_node.start_mark
            kpos = _mark(kmark, file)
            if not isinstance(key, str):
                problems.append((f"mapping key {_short(key)} is not text", kpos, (out, None),
                                 "quote it, or use a name: keys are names or attributes"))
                continue
            if key in own_keys:
                first = out.key_pos_of(key)
                problems.append((f"duplicate key {key!r}", kpos, (out, key),
                                 f"the first {key!r} is at line {first.line}, column {first.col}; "
                                 "keep one"))
                continue
            if i >= merged:
                own_keys.add(key)
            out[key] = loader.child(value_node)
            out._key_marks[key], out._val_marks[key] = kmark, value_node.start_mark
        return out

    def construct_sequence(loader, node):
        _expect(node, yaml.SequenceNode, "a list")
        out = LList(loader.child(c) for c in node.value)
        out.pos, out._file = _mark(node.start_mark, file), file
        out._marks = [c.start_mark for c in node.value]
        return out

    Loader.add_constructor("tag:yaml.org,2002:map", construct_mapping)
    Loader.add_constructor("tag:yaml.org,2002:seq", construct_sequence)
    return Loader


def _expect(node, kind, what: str) -> None:
    if not isinstance(node, kind):
        raise yaml.constructor.ConstructorError(
            None, None, f"the tag {node.tag!r} needs {what} here", node.start_mark)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _paths(tree) -> dict[int, str]:
    """id of every mapping/sequence of a tree -> its spec path (``layers[2].conv2d``)."""
    out, stack = {}, [(tree, "")]
    while stack:
        node, path = stack.pop()
        if id(node) in out:
            continue
        out[id(node)] = path
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, v in items:
            if isinstance(v, (dict, list)):
                stack.append((v, f"{path}[{k}]" if isinstance(k, int) else f"{path}.{k}" if path else k))
    return out


def _key_errors(problems: list, tree) -> SpecErrors:
    paths, errors = _paths(tree), []
    for message, kpos, (mapping, key), fix in problems:
        path = paths.get(id(mapping), "")
        if key is not None:
            path = f"{path}.{key}" if path else key
        errors.append(SpecError(message, kpos, path, fix))
    return SpecErrors(errors)


def _syntax_error(exc: yaml.MarkedYAMLError, file: str, text: str = "") -> SpecError:
    """A YAML parse error as one located SpecError: the problem where it was found, and
    the construct it broke (``in the flow mapping started at line 4``)."""
    problem = (exc.problem or "").strip()
    mark = exc.problem_mark or exc.context_mark
    pos = _mark(mark, file) if mark else Pos(file)
    index = getattr(exc.problem_mark, "index", None)
    if index is not None and 0 <= index < len(text) and text[index] == "\t":
        return SpecError("a tab character: YAML indents with spaces only", pos, "",
                         "replace the tabs with spaces")
    if "cannot start any token" in problem and index is not None and 0 <= index < len(text):
        return SpecError(f"YAML syntax error: {text[index]!r} cannot start a value", pos, "",
                         f"quote the value: \"{text[index:].splitlines()[0].strip()[:30]}\"")
    if "mapping values are not allowed" in problem:
        return SpecError("YAML syntax error: a `: ` where no key can start", pos, "",
                         "quote a value that contains `: `, or check the indentation of this line")
    if "maximum nesting depth" in problem:
        return SpecError(f"nesting deeper than {MAX_DEPTH} levels", pos, "",
                         "flatten the structure; no network spec needs this depth")
    if "single document" in (exc.context or ""):
        return SpecError("the file holds more than one YAML document (`---`)", pos, "",
                         "keep one document; several networks go under `networks:`")
    if isinstance(exc, yaml.composer.ComposerError) and "alias" in problem:
        return SpecError(f"YAML error: {problem}", pos, "", "define the anchor (&name) before using *name")
    what = problem
    if exc.context and exc.context_mark:
        started = f"line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}"
        what += f" ({exc.context.replace('while ', '')} started at {started})"
    return SpecError(f"YAML syntax error: {what}", pos, "",
                     "check indentation, colons, quotes and brackets here and on the lines above")


_STR = "tag:yaml.org,2002:str"
_NONE = object()  # no value yet (None is a YAML value)


def _one_pass(text: str, file: str):
    """The located tree of a plain document, built in one pass over libyaml's events, or
    None where the document needs the general path below: an alias or anchor, a tag, a
    merge key, a key that is not text or is repeated, a value PyYAML cannot build, a
    bound passed, a syntax error, no document or several.

    The general path parses the text twice (the bounds on the event stream, then libyaml's
    composer) and builds through PyYAML's recursive constructor; a spec of 10,000
    written-out layers took 1.2 s there. Anything unusual goes back to it, so every error,
    and its position, stays the general path's own.
    """
    loader = _ScalarLoader(text)
    try:
        return _build(loader, file)
    except (yaml.YAMLError, ValueError, KeyError, TypeError, AttributeError):
        return None
    finally:
        loader.dispose()


def _scalar(loader, event, cache: dict):
    """A scalar event's value as the general path constructs it, or _NONE to give up.
    Quoted text is text; plain text resolves to a tag by YAML's implicit rules, the same
    way for the same text, so each distinct plain text is resolved and built once."""
    if not event.implicit[0]:
        return event.value
    value = cache.get(event.value, _NONE)
    if value is _NONE:
        tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag == _STR:
            value = event.value
        elif tag == _MERGE or tag not in loader.yaml_constructors:
            return _NONE
        else:
            node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
            value = loader.yaml_constructors[tag](loader, node)
        cache[event.value] = value
    return value


def _build(loader, file: str):
    """The loop of :func:`_one_pass`. A container is placed in its parent when it opens,
    so the key waiting for a value is never more than one. (Names are bound locally: the
    loop runs once per event, ~100,000 times for a 10,000-layer spec.)"""
    get_event = loader.get_event
    scalar_event, mapping_start = yaml.ScalarEvent, yaml.MappingStartEvent
    sequence_start = yaml.SequenceStartEvent
    stack: list = []  # the open containers, innermost last
    top, key, key_mark, root = None, _NONE, None, _NONE
    values, documents, cache = 0, 0, {}
    while True:
        event = get_event()
        kind = type(event)
        if kind is scalar_event or kind is mapping_start or kind is sequence_start:
            if event.anchor is not None or event.tag is not None:
                return None
            values += 1
            if values > MAX_NODES:
                return None
            if kind is scalar_event:
                container = None
                value = event.value if not event.implicit[0] else cache.get(event.value, _NONE)
                if value is _NONE:
                    value = _scalar(loader, event, cache)
                    if value is _NONE:
                        return None
            elif len(stack) >= MAX_DEPTH:
                return None
            else:
                mark = event.start_mark
                container = value = LDict() if kind is mapping_start else LList()
                container.pos, container._file = Pos(file, mark.line + 1, mark.column + 1), file
                if kind is mapping_start:
                    container._key_marks, container._val_marks = {}, {}
                else:
                    container._marks = []
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            stack.pop()
            top = stack[-1] if stack else None
            continue
        elif kind is yaml.DocumentStartEvent:
            documents += 1
            if documents > 1:
                return None
            continue
        elif kind is yaml.StreamEndEvent:
            return root if documents == 1 and root is not _NONE else None
        elif kind is yaml.AliasEvent:
            return None
        else:  # the stream's start, a document's end
            continue
        if top is None:
            root = value
        elif type(top) is LList:
            top.append(value)
            top._marks.append(event.start_mark)
        elif key is _NONE:  # a key: text, and new in its mapping
            if container is not None or not isinstance(value, str) or value in top:
                return None
            key, key_mark = value, event.start_mark
        else:
            top[key] = value
            top._key_marks[key], top._val_marks[key] = key_mark, event.start_mark
            key = _NONE
        if container is not None:
            stack.append(container)
            top = container


def load_yaml(text: str, file: str = "<string>"):
    """Parse YAML text safely into a located tree (LDict/LList/scalars).

    >>> tree = load_yaml("layers:\\n  - relu: {}\\n", "net.yaml")
    >>> tree.pos_of("layers")
    Pos(file='net.yaml', line=2, col=3)
    """
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise SpecErrors.one(f"file is larger than {MAX_BYTES // 1024 // 1024} MiB", Pos(file),
                             fix="a network spec is a few kilobytes; is this the right file?")
    if not text.strip():
        raise SpecErrors.one("the file is empty", Pos(file, 1, 1),
                             fix="start from a zoo spec: `archc zoo` lists them")
    tree = _one_pass(text, file)
    if tree is not None:
        return tree
    problems: list = []
    loader = _make_loader(file, problems)(text)
    try:
        needs_size_check = _check_depth(text, file)
        node = loader.get_single_node()
        if node is None:
            raise SpecErrors.one("the file holds no YAML document, only comments", Pos(file, 1, 1),
                                 fix="write a mapping with `archc: 1`, `input:` and `layers:`")
        if needs_size_check:
            _check_size(node, file)
        tree = loader.construct_document(node)
    except SpecErrors:
        raise
    except (yaml.YAMLError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise SpecErrors([_read_error(exc, text, file)]) from None
    finally:
        loader.dispose()
    if problems:
        raise _key_errors(problems, tree)
    return tree


def load_value(text: str, what: str):
    """A short YAML value given outside a file (``--set lr=5e-4``, ``--init``, a mapping
    file) as plain data, read as spec files are: safely, bounded, numbers as YAML 1.2."""
    if not text.strip():
        return ""
    return plain(load_yaml(text, what))


def _read_error(exc: Exception, text: str, file: str) -> SpecError:
    """Whatever PyYAML raised, as one located SpecError."""
    if isinstance(exc, yaml.constructor.ConstructorError):
        return _tag_error(exc, file)
    if isinstance(exc, yaml.MarkedYAMLError):
        return _syntax_error(exc, file, text)
    if isinstance(exc, yaml.reader.ReaderError):  # bad characters
        return SpecError(f"character U+{exc.character:04X} is not allowed in YAML",
                         _index_pos(text, exc.position, file), "",
                         "remove control characters; save the file as UTF-8 text")
    if isinstance(exc, yaml.YAMLError):
        return SpecError(f"cannot read YAML: {str(exc).splitlines()[0]}", Pos(file), "",
                         "save the file as UTF-8 text without control characters")
    if isinstance(exc, RecursionError):
        return SpecError("nesting is too deep to read", Pos(file), "", "flatten the structure")
    # ValueError & co. from a scalar document (`!!int x` alone): nested ones are located
    return SpecError(f"YAML error: cannot read this value: {str(exc).split(';')[0]}",
                     Pos(file, 1, 1), "", "write plain mappings, lists, text and numbers")


def _tag_error(exc, file: str) -> SpecError:
    """A tag that is not plain data (``!!python/object/apply:os.system``): refused, never
    run; or a value PyYAML could not build."""
    mark = exc.problem_mark or exc.context_mark
    pos = _mark(mark, file) if mark else Pos(file)
    problem = exc.problem or ""
    if problem == TOO_LARGE:
        return SpecError(TOO_LARGE, pos, "", "keep values below 2**62, as computed values are")
    quoted = re.search(r"constructor for the tag '([^']*)'", problem)
    if quoted:
        tag = quoted.group(1).replace("tag:yaml.org,2002:", "!!")
        return SpecError(f"YAML tag {tag} is not allowed", pos, "",
                         "archc reads plain data only (mappings, lists, text, numbers); "
                         "tags are never executed")
    return SpecError(f"YAML error: {problem.replace('tag:yaml.org,2002:', '!!')}", pos, "",
                     "write plain mappings, lists, text and numbers")
