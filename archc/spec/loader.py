"""YAML text -> a plain tree that remembers where every value came from.

Untrusted YAML must never execute anything and never exhaust the machine, so:

* only YAML's safe tags are constructed (``!!python/...`` is an error, never run);
* the file size, nesting depth and the size of the tree *after* alias expansion are
  bounded, so a "billion laughs" alias bomb is rejected before anything walks it;
* duplicate mapping keys are errors (YAML silently keeps the last one).

Mappings become :class:`LDict` and sequences :class:`LList`; both record the position
of each child (``pos_of(key)``) so later stages can point at the line of any value.
"""

from __future__ import annotations

import yaml

from archc.errors import Pos, SpecError, SpecErrors

MAX_BYTES = 4 * 1024 * 1024  # 4 MiB of YAML is far beyond any real network spec
MAX_DEPTH = 64  # nesting of mappings/sequences
MAX_NODES = 2_000_000  # YAML nodes after alias expansion

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LDict(dict):
    """A mapping that knows its own position and those of its values."""

    pos: Pos
    key_pos: dict
    val_pos: dict

    def pos_of(self, key) -> Pos:
        return self.val_pos.get(key, self.pos)

    def key_pos_of(self, key) -> Pos:
        return self.key_pos.get(key, self.pos)


class LList(list):
    """A sequence that knows its own position and those of its items."""

    pos: Pos
    item_pos: list

    def pos_of(self, index: int) -> Pos:
        return self.item_pos[index] if 0 <= index < len(self.item_pos) else self.pos


def pos_of(container, key, fallback: Pos | None = None) -> Pos | None:
    """Position of ``container[key]`` when the container is located, else fallback."""
    if isinstance(container, (LDict, LList)):
        return container.pos_of(key)
    return fallback


def _mark(mark, file: str) -> Pos:
    return Pos(file, mark.line + 1, mark.column + 1)


def _check_size(root, file: str) -> None:
    """Reject trees whose alias expansion is out of bounds, without expanding them."""
    sizes: dict[int, int] = {}
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        children = []
        if isinstance(node, yaml.MappingNode):
            children = [c for kv in node.value for c in kv]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        if done:
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[id(node)] > MAX_NODES:
                raise SpecErrors.one(
                    f"the document expands to more than {MAX_NODES:,} values through aliases",
                    _mark(node.start_mark, file),
                    fix="remove the recursive or repeated aliases (a 'billion laughs' document)")
            continue
        if id(node) in sizes:
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)


def _check_depth(text: str, file: str) -> None:
    """Bound the nesting depth from the event stream before composing.

    libyaml's composer recurses in C: a document nested 100,000 levels deep crashes the
    interpreter instead of raising, so the depth is checked on the (flat) event stream.
    """
    depth = 0
    for event in yaml.parse(text, Loader=_BaseLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise SpecErrors.one(
                    f"nesting deeper than {MAX_DEPTH} levels", _mark(event.start_mark, file),
                    fix="flatten the structure; no network spec needs this depth")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _make_loader(file: str):
    class Loader(_BaseLoader):
        pass

    def construct_mapping(loader, node):
        out = LDict()
        out.pos, out.key_pos, out.val_pos = _mark(node.start_mark, file), {}, {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            kpos = _mark(key_node.start_mark, file)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise SpecErrors.one("mapping keys must be plain scalars", kpos)
            if key in out:
                raise SpecErrors.one(
                    f"duplicate key {key!r}", kpos,
                    fix=f"the first {key!r} is at line {out.key_pos[key].line}; keep one")
            out[key] = loader.construct_object(value_node, deep=True)
            out.key_pos[key] = kpos
            out.val_pos[key] = _mark(value_node.start_mark, file)
        return out

    def construct_sequence(loader, node):
        out = LList(loader.construct_object(c, deep=True) for c in node.value)
        out.pos = _mark(node.start_mark, file)
        out.item_pos = [_mark(c.start_mark, file) for c in node.value]
        return out

    Loader.add_constructor("tag:yaml.org,2002:map", construct_mapping)
    Loader.add_constructor("tag:yaml.org,2002:seq", construct_sequence)
    return Loader


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
    loader = _make_loader(file)(text)
    try:
        _check_depth(text, file)
        node = loader.get_single_node()
        if node is None:
            raise SpecErrors.one("the file holds no YAML document", Pos(file, 1, 1),
                                 fix="write a mapping with at least `layers:`")
        _check_size(node, file)
        return loader.construct_document(node)
    except SpecErrors:
        raise
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark or exc.context_mark
        tag = (exc.problem or "").strip()
        raise SpecErrors([SpecError(
            f"unsupported YAML tag ({tag})" if "tag" in tag else f"YAML error: {tag}",
            _mark(mark, file) if mark else Pos(file),
            fix="archc reads plain YAML only; tags such as !!python/... are never executed")])
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        raise SpecErrors([SpecError(f"YAML syntax error: {what}",
                                    _mark(mark, file) if mark else Pos(file),
                                    fix="check indentation, colons and brackets on this line")])
    except yaml.YAMLError as exc:  # reader errors: bad characters, bad encoding
        raise SpecErrors.one(f"cannot read YAML: {str(exc).splitlines()[0]}", Pos(file),
                             fix="save the file as UTF-8 text without control characters")
    except RecursionError:
        raise SpecErrors.one("nesting is too deep to read", Pos(file),
                             fix="flatten the structure") from None
    finally:
        loader.dispose()
