"""Valid, unique archc ids from ONNX names.

An exporter's names are module paths (``layer1.0.conv1.weight``), value names
(``relu_3``, ``/features/features.0/Conv_output_0``) or anything at all. An archc id is a
dotted path of identifiers and repeat indices (docs/spec.md, "Naming of nodes"): each part
is made an identifier (other characters become ``_``), a part archc reserves gets ``_1``,
clashes get ``_2``, ``_3``…, and an id that another id uses as a container (``layer1``
beside ``layer1.0.conv1``) is renamed, so that ``archc.build`` accepts every one. Where
the exporter kept torch's module paths, the ids — and so the state_dict keys — are
torch's own.
"""

from __future__ import annotations

import re

from archc.ir.names import name_problem

_OTHER = re.compile(r"[^A-Za-z0-9_]")


def _part(text: str, first: bool) -> str:
    if text.isdigit() and not first:
        return str(int(text))  # a repeat index, as nn.Sequential names its children
    part = _OTHER.sub("_", text).strip("_") or "node"
    part = re.sub(r"_+", "_", part)
    if not part[0].isalpha():
        part = "n" + part
    while name_problem(part):
        part += "_1"
    return part


def clean(hint: str) -> str:
    parts = [p for p in hint.split(".") if p]
    return ".".join(_part(p, i == 0) for i, p in enumerate(parts)) or "node"


def make_ids(hints: list[str]) -> list[str]:
    """One id per hint, in order: valid, unique, and no id a container of another."""
    ids = [clean(h) for h in hints]
    containers = {".".join(i.split(".")[:k]) for i in ids for k in range(1, i.count(".") + 1)}
    seen: set[str] = set()
    out = []
    for i in ids:
        candidate, n = i, 1
        while candidate in seen or candidate in containers:
            n += 1
            candidate = _numbered(i, n)
        seen.add(candidate)
        out.append(candidate)
    return out


def _numbered(id_: str, n: int) -> str:
    """``id_`` with ``_n`` on its last part; a last part that is a repeat index (``block.2``,
    a module's second ONNX node) becomes an identifier first: ``block.n2_2``."""
    head, _, last = id_.rpartition(".")
    last = f"n{last}_{n}" if last.isdigit() else f"{last}_{n}"
    return f"{head}.{last}" if head else last
