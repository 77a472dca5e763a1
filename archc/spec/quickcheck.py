"""A yes/no JSON-Schema check, compiled once into closures: the fast path of validation.

``archc validate`` must start in a fraction of a second, and importing jsonschema and
building its validator costs about 50 ms of the ~180 ms a run took. Most files are
valid, so :func:`archc.spec.schema.validate_tree` first asks this checker "is the tree
valid?"; only when the answer is no does it import jsonschema, which remains the
reference and reports *every* error with its location. So a valid file is never
reported invalid by this module alone, and an invalid one is always described by
jsonschema.

The checker understands exactly the keywords archc's schema uses, with jsonschema's
Draft 2020-12 semantics (booleans are not integers, ``1.0`` is an integer, ``enum`` and
``const`` tell ``true`` from ``1``). A schema with any other keyword raises
:class:`Unsupported` at compile time and the caller falls back to jsonschema.
tests/spec/test_quickcheck.py compares its verdicts with jsonschema's.
"""

from __future__ import annotations

import re
from typing import Any, Callable

Check = Callable[[Any], bool]

# Keywords that only annotate; they never make an instance invalid.
ANNOTATIONS = {"$schema", "$id", "$defs", "$comment", "title", "description", "default",
               "examples", "deprecated", "readOnly", "writeOnly"}

TYPES = {
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "string": lambda x: isinstance(x, str),
    "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
    "number": lambda x: isinstance(x, (int, float)) and not isinstance(x, bool),
    "integer": lambda x: (isinstance(x, int) and not isinstance(x, bool))
    or (isinstance(x, float) and x.is_integer()),
}


class Unsupported(Exception):
    """The schema uses a keyword this checker does not implement."""


def equal(a, b) -> bool:
    """JSON equality: ``true`` is not ``1``; lists and mappings compare item by item."""
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _is_num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


class Compiler:
    """Turns a schema (with local ``$ref``s) into one predicate per subschema."""

    def __init__(self, root: dict):
        self.root = root
        self.refs: dict[str, Check] = {}

    def compile(self, schema) -> Check:
        if schema is True or schema == {}:
            return lambda x: True
        if schema is False:
            return lambda x: False
        unknown = set(schema) - ANNOTATIONS - set(KEYWORDS)
        if unknown:
            raise Unsupported(", ".join(sorted(unknown)))
        checks = [KEYWORDS[k](self, v, schema) for k, v in schema.items() if k in KEYWORDS]
        checks = [c for c in checks if c is not None]
        if len(checks) == 1:
            return checks[0]

        def all_of(x):
            for c in checks:
                if not c(x):
                    return False
            return True

        return all_of

    def ref(self, target: str) -> Check:
        """A local reference, compiled once; a thunk lets recursive schemas compile."""
        if not target.startswith("#/"):
            raise Unsupported(f"$ref {target}")
        if target not in self.refs:
            self.refs[target] = None
            node = self.root
            for part in target[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            self.refs[target] = self.compile(node)
        compiled = self.refs[target]
        return compiled if compiled is not None else (lambda x: self.refs[target](x))


def _type(c, value, schema):
    names = value if isinstance(value, list) else [value]
    return _either([TYPES[n] for n in names])


def _either(tests: list) -> Check:
    """Any of the predicates; one or two called directly (most `type`s and `anyOf`s):
    the checker runs several per value of a 10,000-layer spec."""
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        first, second = tests
        return lambda x: first(x) or second(x)
    return lambda x: any(t(x) for t in tests)


def _enum(c, values, schema):
    if all(isinstance(v, str) for v in values):  # names: only text equals text
        names = frozenset(values)
        return lambda x: isinstance(x, str) and x in names
    return lambda x: any(equal(x, v) for v in values)


def _const(c, value, schema):
    if isinstance(value, str):
        return lambda x: isinstance(x, str) and x == value
    return lambda x: equal(x, value)


def _properties(c, props, schema):
    # Compiled on first use: a spec uses a few of the ~40 op kinds, and compiling them all
    # would cost more than checking the spec. compile_schema has vetted the keywords.
    compiled: dict = {}

    def check(x):
        if not isinstance(x, dict):
            return True
        for k, v in x.items():
            if k in props:
                sub = compiled.get(k)
                if sub is None:
                    sub = compiled[k] = c.compile(props[k])
                if not sub(v):
                    return False
        return True

    return check


def _additional(c, sub, schema):
    known = set(schema.get("properties", {}))
    if "patternProperties" in schema:
        raise Unsupported("patternProperties")
    inner = c.compile(sub)
    if sub is False:
        return lambda x: not isinstance(x, dict) or known.issuperset(x.keys())
    return lambda x: not isinstance(x, dict) or all(inner(v) for k, v in x.items() if k not in known)


def _required(c, names, schema):
    return lambda x: not isinstance(x, dict) or all(n in x for n in names)


def _property_names(c, sub, schema):
    inner = c.compile(sub)
    return lambda x: not isinstance(x, dict) or all(map(inner, x))


def _pattern(c, pattern, schema):
    search = re.compile(pattern).search
    return lambda x: not isinstance(x, str) or search(x) is not None


def _items(c, sub, schema):
    if isinstance(sub, list):
        raise Unsupported("items as a list")
    inner = c.compile(sub)
    return lambda x: not isinstance(x, list) or all(map(inner, x))


def _any_of(c, subs, schema):
    return _either([c.compile(s) for s in subs])


def _bound(test):
    """A numeric keyword: applies to numbers only, as in JSON Schema."""
    return lambda c, limit, schema: (lambda x: not _is_num(x) or test(x, limit))


def _size(kind, test):
    """min/max items or properties: applies to one kind of container only."""
    return lambda c, limit, schema: (lambda x: not isinstance(x, kind) or test(len(x), limit))


KEYWORDS = {
    "type": _type, "enum": _enum, "const": _const,
    "properties": _properties, "additionalProperties": _additional, "required": _required,
    "propertyNames": _property_names, "pattern": _pattern, "items": _items, "anyOf": _any_of,
    "$ref": lambda c, target, schema: c.ref(target),
    "minimum": _bound(lambda x, m: x >= m), "maximum": _bound(lambda x, m: x <= m),
    "exclusiveMinimum": _bound(lambda x, m: x > m), "exclusiveMaximum": _bound(lambda x, m: x < m),
    "minItems": _size(list, lambda n, m: n >= m), "maxItems": _size(list, lambda n, m: n <= m),
    "minProperties": _size(dict, lambda n, m: n >= m), "maxProperties": _size(dict, lambda n, m: n <= m),
}


def compile_schema(schema: dict) -> Check:
    """A predicate ``tree -> bool``: True exactly when jsonschema finds no error.

    >>> ok = compile_schema({"type": "object", "properties": {"n": {"type": "integer"}}})
    >>> ok({"n": 3}), ok({"n": True})
    (True, False)
    """
    _vet(schema)
    return Compiler(schema).compile(schema)


def _vet(schema) -> None:
    """Raise :class:`Unsupported` for any keyword the checker lacks, anywhere in the
    schema, before anything runs (parts of the schema are compiled lazily)."""
    if isinstance(schema, bool):
        return
    unknown = set(schema) - ANNOTATIONS - set(KEYWORDS)
    if unknown:
        raise Unsupported(", ".join(sorted(unknown)))
    for key, value in schema.items():
        if key in ("properties", "$defs"):
            for sub in value.values():
                _vet(sub)
        elif key in ("additionalProperties", "propertyNames", "items") and not isinstance(value, list):
            _vet(value)
        elif key == "anyOf":
            for sub in value:
                _vet(sub)
