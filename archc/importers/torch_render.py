"""The body of a spec as text: the lines of archc/importers/torch_blocks.py's structure,
with ``repeat`` for runs of copies ``P.0`` … ``P.n-1`` (``id: P``) or ``P0`` … ``Pn-1``
(``id: P$index``, as torchvision's ViT names its ``encoder_layer_0`` …); attributes that
differ only in the first copy, or grow by a constant step, become ``$index`` expressions;
the ``from:`` that are needed and the ids.
"""

from __future__ import annotations

import re

from archc.importers.onnx_names import clean
from archc.importers.onnx_spec import _flow
from archc.importers.torch_blocks import MISSING, Line, _key
from archc.ir.names import IDENT
from archc.ops.registry import get_op


FIRST_COPY = re.compile(r"(.*?)0$")  # a run's first id: P.0 or P0 (P: `layers.`, `encoder_layer_`)


def run_ids(first_id: str, count: int) -> tuple[str, str, list[str]]:
    """A run's written id, the name `from:` reads it by, and its copies' names: `layers.0`
    -> `layers` (archc's naming of a repeat; `from: layers` is the last copy); `block0` ->
    `block$index` (an id with `$index`; `from:` names a copy: the last, block3)."""
    stem = FIRST_COPY.fullmatch(first_id).group(1)
    copies = [f"{stem}{k}" for k in range(count)]
    if stem.endswith("."):
        return stem[:-1], stem[:-1], copies
    return f"{stem}$index", copies[-1], copies


def _literal(value) -> str | None:
    """``value`` inside a ``$( … )`` expression, or None when it has no such form."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str) and value.startswith("$") and IDENT.fullmatch(value[1:]):
        return value
    return None


def _by_index(values: list):
    """One attribute over the copies of a repeat: the value, an ``$index`` expression, or
    MISSING when the copies differ other than in the first one."""
    first, rest = values[0], values[1:]
    if all(_key(v) == _key(first) for v in rest):
        return first
    if any(_key(v) != _key(rest[0]) for v in rest):
        return _progression(values)
    if isinstance(first, bool) and isinstance(rest[0], bool):
        return "$index == 0" if first else "$index != 0"
    a, b = _literal(first), _literal(rest[0])
    return MISSING if a is None or b is None else f"$({a} if $index == 0 else {b})"


def _progression(values: list):
    """``$(a + b * $index)`` when the copies' numbers grow by a constant step (ConvNeXt's
    stochastic depth rate, linear over the blocks), else MISSING."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return MISSING
    first, step = values[0], (values[-1] - values[0]) / (len(values) - 1)
    if all(isinstance(v, int) for v in values):
        if not step.is_integer() or any(first + k * int(step) != v for k, v in enumerate(values)):
            return MISSING
        a, b = first, int(step)
    else:  # the fewest digits that give every copy's value within 1e-9 of the largest
        tolerance = 1e-9 * max(abs(v) for v in values)
        for digits in range(1, 18):
            a, b = float(f"{first:.{digits}g}"), float(f"{step:.{digits}g}")
            if all(abs(a + k * b - v) <= tolerance for k, v in enumerate(values)):
                break
        else:
            return MISSING
    return f"$({b!r} * $index)" if a == 0 else f"$({a!r} + {b!r} * $index)"


class Renderer:
    """Lines of a body as spec text: ``repeat`` runs, the ``from:`` that are needed, ids."""

    def __init__(self, defaults: dict):
        self.defaults = defaults  # block name -> {arg: default}

    def _shown(self, kind: str, attrs: dict) -> dict:
        if kind in self.defaults:
            own = self.defaults[kind]
            return {k: v for k, v in attrs.items() if k not in own or _key(own[k]) != _key(v)}
        op = get_op(kind)
        return {k: v for k, v in attrs.items()
                if not (op and k in op.attrs and _key(op.attrs[k].default) == _key(v))}

    def _full(self, kind: str, attrs: dict) -> dict:
        return (self.defaults.get(kind, {}) | attrs) if kind in self.defaults else attrs

    def units(self, lines: list[Line]) -> list[tuple[int, int, dict]]:
        """(first line, count, attributes) per written line: a run of copies P.0 … P.n-1 is one."""
        out, i = [], 0
        while i < len(lines):
            run = self._run(lines, i)
            if run:
                out.append(run)
                i += run[1]
            else:
                out.append((i, 1, lines[i].attrs))
                i += 1
        return out

    def _run(self, lines: list[Line], i: int):
        head = lines[i]
        first = FIRST_COPY.fullmatch(head.id or "")
        stem = first.group(1) if first else ""
        if head.when or not re.fullmatch(r".*[A-Za-z_.]", stem):  # `layer10` is no first copy
            return None
        j = i + 1
        while (j < len(lines) and lines[j].kind == head.kind and lines[j].id == f"{stem}{j - i}"
               and lines[j].refs == [j - 1] and not lines[j].when):
            j += 1
        inner = set(range(i, j - 1))
        if j - i < 2 or any(set(x.refs) & inner for k, x in enumerate(lines) if not i < k < j):
            return None
        bare = stem[:-1]  # `layers` names the last copy of `layers.N`: no other layer may be it
        if stem.endswith(".") and any(x.id and (x.id == bare or x.id.startswith(stem))
                                      for k, x in enumerate(lines) if not i <= k < j):
            return None
        copies = [self._full(x.kind, x.attrs) for x in lines[i:j]]
        attrs = {}
        for key in dict.fromkeys(k for c in copies for k in c):
            value = _by_index([c.get(key, MISSING) for c in copies])
            if value is MISSING:
                return None
            attrs[key] = value
        varying = sum(isinstance(v, str) and "$index" in v for v in attrs.values())
        if j - i < 3 and varying > 2:
            return None  # two copies that differ in most things read better as two lines
        return i, j - i, attrs

    def render(self, lines: list[Line], outputs: list | None = None, indent: str = "  ") -> list[str]:
        units = self.units(lines)
        last_of = {k: u[0] + u[1] - 1 for u in units for k in range(u[0], u[0] + u[1])}
        runs = {u[0]: run_ids(lines[u[0]].id, u[1]) for u in units if u[1] > 1}
        needed, previous = set(), "input"
        for first, count, _ in units:
            if lines[first].refs != [previous]:
                needed |= {r for r in lines[first].refs if r != "input"}
            previous = first + count - 1
        needed |= {r for r in outputs or [] if r != "input" and r != len(lines) - 1}
        names = self._names(lines, units, runs, {last_of[r] for r in needed})
        text, previous = [], "input"
        for first, count, attrs in units:
            line = lines[first]
            entry = {}
            if line.refs != [previous]:
                refs = [r if r == "input" else names[r] for r in line.refs]
                entry["from"] = refs[0] if len(refs) == 1 else refs
            entry |= self._shown(line.kind, attrs)
            if line.when:
                entry["when"] = line.when
            if count > 1:
                entry["repeat"] = count
            if count > 1:
                entry["id"] = runs[first][0]
            elif first in names and (line.id or first in needed):
                entry["id"] = names[first]
            text.append(f"{indent}- {line.kind}: {_flow(entry)}" if entry else f"{indent}- {line.kind}")
            previous = first + count - 1
        if outputs and list(outputs) != [len(lines) - 1]:  # anything but the last line (named or not)
            text.append(f"outputs: {_flow([r if r == 'input' else names[r] for r in outputs])}")
        return text

    @staticmethod
    def _names(lines, units, runs, needed) -> dict:
        """index of a unit's last line -> its id: fixed ids first, then names for the
        layers without tensors that a ``from:`` reads (never of archc's automatic form
        ``<op>_<n>``, which could clash with an automatic name)."""
        names = {}
        for first, count, _ in units:
            last = first + count - 1
            if count > 1:  # `from:` names the last copy: `layers` (of layers.N) or `block3`
                names[last] = runs[first][1]
            elif lines[first].id:
                names[last] = lines[first].id
        used = set(names.values()) | {c for _, _, copies in runs.values() for c in copies}
        used |= {".".join(n.split(".")[:k]) for n in list(used) for k in range(1, n.count(".") + 1)}
        for last in sorted(needed):
            if last in names:
                continue
            base = re.sub(r"_(\d+)$", r"\1", clean(lines[last].hint or lines[last].kind))
            name, n = base, 1
            while name in used or any(u.startswith(name + ".") for u in used):
                n += 1
                name = f"{base}_{n}" if base[-1].isdigit() else f"{base}{n}"
            used.add(name)
            names[last] = name
        return names
