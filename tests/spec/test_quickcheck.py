"""The compiled yes/no schema check must agree with jsonschema on every tree.

validate_tree trusts a "yes" from archc/spec/quickcheck.py without asking jsonschema, so
a false "yes" would hide errors: these tests compare both verdicts on the zoo, on
hand-written invalid specs and on random mutations of zoo specs (hypothesis)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from archc.errors import SpecErrors
from archc.spec import schema
from archc.spec.loader import load_yaml, plain
from archc.spec.quickcheck import Unsupported, compile_schema, equal

ROOT = Path(__file__).resolve().parents[2]
SPEC_FILES = sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "examples").glob("**/*.yaml"))
SHIPPED = schema._shipped_schema()
QUICK = compile_schema(SHIPPED)
REFERENCE = Draft202012Validator(SHIPPED)


def reference_ok(tree) -> bool:
    return next(REFERENCE.iter_errors(tree), None) is None


def test_zoo_and_examples_are_valid_for_both():
    assert SPEC_FILES, "no specs found"
    for path in SPEC_FILES:
        tree = load_yaml(path.read_text(), str(path))
        assert QUICK(tree) is True and reference_ok(tree), path


INVALID = [
    "input: [1]\nlayers: [relu]\n",  # no archc key
    "archc: true\ninput: [1]\nlayers: [relu]\n",  # true is not 1
    "archc: 2\ninput: [1]\nlayers: [relu]\n",
    "archc: 1\ninput: [0]\nlayers: [relu]\n",
    "archc: 1\ninput: [1, 2, 3, 4, 5]\nlayers: [relu]\n",
    "archc: 1\ninput: [1]\nlayers: [{relu: {}, tanh: {}}]\n",
    "archc: 1\ninput: [1]\nlayers: [{relu: {bogus: 1}}]\n",
    "archc: 1\ninput: [1]\nlayers: [{relu: {trainable: 3}}]\n",
    "archc: 1\ninput: [1]\nlayers: ['not a name']\n",
    "archc: 1\ninput: [1]\nlayers: [relu]\nextra: 1\n",
    "archc: 1\ninput: [1]\nlayers: [relu]\ntrain: {epochs: 0}\n",
    "archc: 1\ninput: [1]\nlayers: [relu]\ntrain: {optimizer: {name: lbfgs}}\n",
    "archc: 1\nblocks: {'bad name': {layers: []}}\n",
    "archc: 1\nblocks: {b: {args: {x: 1}}}\n",
    "archc: 1\nimports: [{blocks: [a]}]\n",
    "archc: 1\nnetworks: {}\n",
    "archc: 1\ninput: [1.5]\nlayers: [relu]\n",
]


@pytest.mark.parametrize("text", INVALID)
def test_invalid_specs_are_invalid_for_both(text):
    tree = load_yaml(text, "t.yaml")
    assert QUICK(tree) is False
    assert not reference_ok(tree)


CASES = sorted((ROOT / "tests" / "specs").glob("**/*.yaml"))


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_data_driven_cases_agree(path):
    """Every readable YAML of tests/specs (valid and invalid): the same verdict."""
    try:
        tree = load_yaml(path.read_text(encoding="utf-8", errors="replace"), str(path))
    except SpecErrors:
        pytest.skip("not readable YAML: never reaches the schema")
    assert QUICK(tree) == reference_ok(tree)


def test_validate_tree_still_reports_every_error():
    tree = load_yaml("archc: 1\ninput: [0]\nlayers: [relu]\nextra: 1\n", "t.yaml")
    messages = [e.message for e in schema.validate_tree(tree)]
    assert len(messages) == 2 and "unknown key 'extra'" in messages


def test_json_equality_tells_booleans_from_numbers():
    assert equal(1, 1.0) and not equal(True, 1) and not equal([1, True], [1, 1])
    assert compile_schema({"type": "integer"})(3.0) is True
    assert compile_schema({"type": "integer"})(True) is False
    assert compile_schema({"enum": [1]})(True) is False


def test_unknown_keywords_are_refused_not_ignored():
    with pytest.raises(Unsupported):
        compile_schema({"type": "string", "format": "email"})


# -- random mutations of zoo specs ----------------------------------------------------

TREES = [plain(load_yaml(p.read_text(), str(p))) for p in SPEC_FILES]
leaf = st.one_of(st.none(), st.booleans(), st.integers(-3, 5000), st.floats(-2, 2, allow_nan=False),
                 st.sampled_from(["relu", "$width * 2", "same", "x y", "conv2d", "", "sgd", "required"]))
value = st.recursive(leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["out", "kernel", "id", "from", "layers", "relu", "input",
                                     "args", "name", "x"]), inner, max_size=2)), max_leaves=6)


def _containers(node, out):
    if isinstance(node, (dict, list)):
        out.append(node)
        for v in (node.values() if isinstance(node, dict) else node):
            _containers(v, out)
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_mutations_agree_with_jsonschema(data):
    tree = copy.deepcopy(data.draw(st.sampled_from(TREES)))
    for _ in range(data.draw(st.integers(1, 3))):
        target = data.draw(st.sampled_from(_containers(tree, [])))
        new = data.draw(value)
        if isinstance(target, list):
            if target and data.draw(st.booleans()):
                target[data.draw(st.integers(0, len(target) - 1))] = new
            else:
                target.append(new)
        elif target and data.draw(st.booleans()):
            key = data.draw(st.sampled_from(sorted(target, key=str)))
            if data.draw(st.booleans()):
                del target[key]
            else:
                target[key] = new
        else:
            target[data.draw(st.sampled_from(["x", "out", "when", "repeat", "stride", "epochs"]))] = new
    assert QUICK(tree) == reference_ok(tree)
