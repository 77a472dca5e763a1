"""Fuzzing: mutated specs (values replaced by junk, keys renamed, layers dropped or
swapped) and mangled YAML text either load or fail with SpecErrors — never with another
Python exception, which the user would see as a traceback. Every crash fuzzing found
(null attributes reaching shape rules, unchecked block-call keys, recursive aliases, a
NUL in a path) has a pinned case in tests/specs/invalid or test_loader.py; this keeps
looking for the next one."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archc
from archc.errors import SpecErrors

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*ROOT.glob("specs/*.yaml"), *ROOT.glob("tests/specs/valid/*.yaml")])
JUNK = [None, -1, 0, 1, 3, 2.5, "x", "", [], {}, "$zz", True, "$(1/0)", [[]], {"a": 1},
        "$input.channels", "$input.shape", [1, 2, 3, 4, 5], [2, 2], "same", "$index", "input",
        "a.b", {"relu": None}, "relu", 10**12, "${x}", "$[1, 2]", 0.5, 1000]
KEYS = ["id", "from", "when", "repeat", "out", "kernel", "stride", "padding", "dim", "scale"]


def _paths(tree, path=()):
    yield path
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for k, v in items:
        yield from _paths(v, path + (k,))


def _mutate(tree, data) -> object:
    """1–3 random edits of a plain tree, drawn through hypothesis (so failures shrink)."""
    tree = copy.deepcopy(tree)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in _paths(tree) if p]
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = tree
        for k in path[:-1]:
            parent = parent[k]
        how = data.draw(st.sampled_from(["junk", "key", "drop"]))
        if how == "junk":
            parent[path[-1]] = copy.deepcopy(data.draw(st.sampled_from(JUNK)))
        elif how == "key" and isinstance(parent, dict):
            parent[data.draw(st.sampled_from(KEYS))] = copy.deepcopy(data.draw(st.sampled_from(JUNK)))
        else:
            parent.pop(path[-1])
    return tree


def _load(text: str, folder: Path) -> None:
    import os

    old = os.getcwd()
    os.chdir(folder)  # imports resolve relative to the working directory for text
    try:
        archc.load_all(text=text)
    except SpecErrors as exc:
        for e in exc.errors:
            assert e.render()
    finally:
        os.chdir(old)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SOURCES), st.data())
def test_mutated_specs_never_crash(source, data):
    tree = _mutate(yaml.safe_load(source.read_text()), data)
    _load(yaml.safe_dump(tree), source.parent)


CHARS = list(":[]{}-, \t\n&*!%\"'#|>?@`$()\\") + ["\x00", "\x85", "<<: ", "*a", "&a ", "!!str ",
                                                 "---\n", "%YAML 1.1\n", "? ", "${", "$(", "\r\n"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SOURCES), st.data())
def test_mangled_text_never_crashes(source, data):
    text = source.read_text()
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        if data.draw(st.booleans()):
            text = text[:at] + data.draw(st.sampled_from(CHARS)) + text[at:]
        else:
            text = text[:at] + text[at + data.draw(st.integers(1, 4)):]
    _load(text, source.parent)
