"""How numbers are written in every report (one place, so table, markdown and HTML agree)."""

from __future__ import annotations

UNKNOWN = "?"


def count(n) -> str:
    """12,345,678 — or '?' when unknown (never 0)."""
    return UNKNOWN if n is None else f"{n:,}"


def si(n, unit: str = "") -> str:
    """Engineering notation: 4.09 G."""
    if n is None:
        return UNKNOWN
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {prefix}{unit}"
    return f"{n} {unit}".rstrip()


def nbytes(n) -> str:
    if n is None:
        return UNKNOWN
    for scale, prefix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= scale:
            return f"{n / scale:.2f} {prefix}"
    return f"{n} B"


def shape(s) -> str:
    return UNKNOWN if s is None else "[" + ", ".join(map(str, s)) + "]"


def rf(value) -> str:
    return UNKNOWN if value is None else value.text()
