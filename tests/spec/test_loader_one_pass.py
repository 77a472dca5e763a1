"""The loader's one-pass builder (archc/spec/loader.py, `_one_pass`) against its general
path (libyaml's composer and PyYAML's constructor): the same tree, value for value, type
for type and position for position, or the same errors; and the documents it hands to the
general path are the unusual ones only."""

from __future__ import annotations

import math
from pathlib import Path
from unittest import mock

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import archc.spec.loader as loader
from archc.errors import SpecErrors

ROOT = Path(__file__).resolve().parents[2]

# documents the one-pass builder reads itself: every kind of scalar YAML resolves
PLAIN = [
    "archc: 1\ninput: [3, 32, 32]\nlayers:\n  - conv2d: {out: 8, kernel: 3}\n  - relu\n",
    "a: 1\nb: -2\nc: 0x1f\nd: 0o17\ne: 1_000\nf: 1.5\ng: 5e-4\nh: 1E+3\ni: .inf\nj: -.inf\nk: .nan\n",
    "t: true\nf: False\ny: yes\nn: no\no: on\nnull1: ~\nnull2: null\nempty:\n",
    "d: 2024-01-01\nt: 2001-12-14t21:59:43.10-05:00\nq: '2024-01-01'\nr: \"8\"\n",
    "a: 8\nb: '8'\nc: \"8\"\nd: 8\ne: yes\nf: 'yes'\ng: ~\nh: '~'\n",  # plain and quoted alike
    "text: |\n  two\n  lines\nfolded: >\n  one\n  line\nquoted: 'a: b'\n",
    "flow: {a: [1, {b: [2, 3]}], c: []}\nblock:\n- - 1\n  - 2\n- {}\n",
    "- 1\n- [a, b]\n- {k: v}\n",
    "42\n",
    "just text\n",
    "# a comment\nkey: value  # another\n",
    "k: 4611686018427387904\nm: -4611686018427387904\n",  # the bound of integers, 2**62
]
# documents it hands to the general path, each for its reason
GENERAL = {
    "an anchor and its alias": "a: &x {k: 1}\nb: *x\n",
    "an anchor alone": "a: &x 1\n",
    "a merge key": "base: &b {x: 1}\nnet:\n  <<: *b\n  y: 2\n",
    "a merge key without an alias": "net:\n  <<: {x: 1}\n  y: 2\n",
    "a tag": "a: !!str 1\n",
    "a python tag": "a: !!python/object/apply:os.system [ls]\n",
    "a local tag": "a: !thing 1\n",
    "a duplicate key": "a: 1\nb: 2\na: 3\n",
    "a number key": "1: a\n",
    "a null key": "~: a\n",
    "a mapping as a key": "? {a: 1}\n: b\n",
    "a list as a key": "? [a]\n: b\n",
    "a value key (=)": "=: a\n",
    "a value (=)": "a: =\n",
    "a too large integer": "a: 4611686018427387905\n",
    "a set": "a: !!set {x, y}\n",
    "two documents": "a: 1\n---\nb: 2\n",
    "no document": "# only a comment\n",
    "a null document": "~\n",
    "a syntax error": "a: [1, 2\nb: 3\n",
    "a tab": "a:\n\t- 1\n",
    "too deep": "a: " + "[" * (loader.MAX_DEPTH + 1) + "]" * (loader.MAX_DEPTH + 1) + "\n",
}


def general(text: str, file: str):
    """load_yaml through the general path only."""
    with mock.patch.object(loader, "_one_pass", lambda *_: None):
        return outcome(text, file)


def outcome(text: str, file: str):
    try:
        return loader.load_yaml(text, file)
    except SpecErrors as exc:
        return [e.render() for e in exc.errors]


def assert_same(a, b, path="") -> None:
    """Equal values of equal types, with equal positions everywhere."""
    assert type(a) is type(b), path
    if isinstance(a, dict):
        assert list(a) == list(b) and a.pos == b.pos, path
        for k in a:
            assert (a.pos_of(k), a.key_pos_of(k)) == (b.pos_of(k), b.key_pos_of(k)), f"{path}.{k}"
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, loader.LList):
        assert len(a) == len(b) and a.pos == b.pos, path
        for i, (x, y) in enumerate(zip(a, b)):
            assert a.pos_of(i) == b.pos_of(i), f"{path}[{i}]"
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, list):  # error messages
        assert a == b, path
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), path
    else:
        assert a == b, path


@pytest.mark.parametrize("text", PLAIN)
def test_plain_documents_are_read_in_one_pass(text):
    assert loader._one_pass(text, "f.yaml") is not None
    assert_same(outcome(text, "f.yaml"), general(text, "f.yaml"))


@pytest.mark.parametrize("reason", list(GENERAL))
def test_unusual_documents_take_the_general_path(reason):
    text = GENERAL[reason]
    assert loader._one_pass(text, "f.yaml") is None
    assert_same(outcome(text, "f.yaml"), general(text, "f.yaml"))


def test_more_values_than_the_bound_take_the_general_path():
    text = "[" + ", ".join(["1"] * (loader.MAX_NODES + 1)) + "]\n"
    assert loader._one_pass(text, "f.yaml") is None
    assert outcome(text, "f.yaml") == general(text, "f.yaml")


@pytest.mark.parametrize("spec", sorted((ROOT / "specs").glob("*.yaml")), ids=lambda p: p.name)
def test_zoo_specs(spec):
    text = spec.read_text()
    assert loader._one_pass(text, spec.name) is not None
    assert_same(outcome(text, spec.name), general(text, spec.name))


# random plain trees, written by PyYAML in random styles, with text that may read as a
# number, a bool, a date or null when written plain, beside the same text quoted
words = ["1", "8", "-8", "1e5", "0x1f", "yes", "no", "~", "null", "2024-01-01", "=", "<<", ".nan",
         ".inf", "", "a b", "a: b", "#x", "- 1"]
scalars = st.one_of(st.integers(-10, 10), st.integers(-2**70, 2**70), st.floats(), st.booleans(),
                    st.none(), st.sampled_from(words), st.text(alphabet="18e.:-xy ~", max_size=5),
                    st.text(max_size=8))
trees = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.sampled_from(words) | scalars, inner, max_size=4),
                     max_leaves=20)


@settings(max_examples=150, deadline=None)
@given(tree=trees, flow=st.sampled_from([None, True, False]), plain=st.booleans())
def test_random_documents(tree, flow, plain):
    text = yaml.safe_dump(tree, default_flow_style=flow, allow_unicode=True)
    if plain:  # unquote what PyYAML quoted, so that it resolves as a plain scalar
        text = text.replace("'", "")
    assert_same(outcome(text, "f.yaml"), general(text, "f.yaml"))
