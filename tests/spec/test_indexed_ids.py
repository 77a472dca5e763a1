"""`$index` in a repeated layer's id names each copy (docs/spec.md, "repeat"):
`id: block$index` with `repeat: 3` gives block0, block1, block2 instead of X.0, X.1, X.2 —
how torchvision's ViT names its encoder layers (`encoder.layers.encoder_layer_0`)."""

from __future__ import annotations

import json

import pytest

import archc
from archc.errors import SpecErrors
from archc.report.expanded import render
from archc.spec.schema import SCHEMA_FILE

HEAD = "archc: 1\ninput: [4]\n"
BLOCK = "blocks:\n  unit:\n    layers:\n      - linear: {out: 4, id: fc}\n      - relu: {repeat: 2, id: act$index}\n"


def names(text: str) -> list[str]:
    return [n.name for n in archc.loads(text).nodes]


def errors(text: str) -> list[str]:
    with pytest.raises(SpecErrors) as info:
        archc.load_all(text=text)
    return [e.render() for e in info.value.errors]


def test_copies_are_named_by_the_id_with_the_number_put_in():
    assert names(HEAD + "layers:\n  - linear: {out: 4, repeat: 3, id: block$index}\n") == [
        "block0", "block1", "block2"]
    # every `$index` of the id, anywhere in a dotted path; the index part of `layers.$index`
    # is the default naming written out
    assert names(HEAD + "layers:\n  - linear: {out: 4, repeat: 2, id: a$index.b_$index}\n") == [
        "a0.b_0", "a1.b_1"]
    assert names(HEAD + "layers:\n  - linear: {out: 4, repeat: 2, id: layers.$index}\n") == names(
        HEAD + "layers:\n  - linear: {out: 4, repeat: 2, id: layers}\n") == ["layers.0", "layers.1"]


def test_a_block_copy_is_a_scope_and_the_innermost_repeat_numbers_an_id():
    text = HEAD + BLOCK + "layers:\n  - unit: {repeat: 2, id: layers.encoder_layer_$index}\n"
    assert names(text) == [f"layers.encoder_layer_{k}.{n}" for k in (0, 1) for n in ("fc", "act0", "act1")]
    # a `${index}` template is the repeat that called the block: one id for both relu copies
    outer = text.replace("id: act$index", "id: \"act${index}\"")
    assert names(outer) == [f"layers.encoder_layer_{k}.{n}" for k in (0, 1)
                            for n in ("fc", f"act{k}.0", f"act{k}.1")]


def test_from_names_each_copy_by_its_full_name():
    text = HEAD + BLOCK + ("layers:\n  - linear: {out: 4, repeat: 3, id: block$index}\n"
                           "  - unit: {repeat: 2, id: layers.encoder_layer_$index}\n"
                           "  - add: {from: [block1, layers.encoder_layer_1, layers.encoder_layer_0.act1]}\n")
    add = archc.loads(text).nodes[-1]
    assert add.inputs == ["block1", "layers.encoder_layer_1.act1", "layers.encoder_layer_0.act1"]


@pytest.mark.parametrize("ref, pattern, copies, last", [
    ("block", "block$index", "block0 … block2", "block2"),
    ("block$index", "block$index", "block0 … block2", "block2"),
    ("layers", "layers.encoder_layer_$index", "layers.encoder_layer_0 … layers.encoder_layer_1",
     "layers.encoder_layer_1"),
    ("layers.encoder_layer", "layers.encoder_layer_$index",
     "layers.encoder_layer_0 … layers.encoder_layer_1", "layers.encoder_layer_1"),
])
def test_the_bare_prefix_is_no_layer(ref, pattern, copies, last):
    text = HEAD + BLOCK + ("layers:\n  - linear: {out: 4, repeat: 3, id: block$index}\n"
                           "  - unit: {repeat: 2, id: layers.encoder_layer_$index}\n"
                           f"  - relu: {{from: {ref}}}\n")
    assert errors(text) == [f"<string>:11:18: error: layers[2].relu.from: `{ref}` is no layer: the repeat "
                            f"`{pattern}` names its copies {copies} — name one copy: `{last}` (the last)"]


def test_index_in_an_id_needs_a_repeat():
    assert errors(HEAD + "layers:\n  - linear: {out: 4, id: block$index}\n") == [
        "<string>:4:26: error: layers[0].linear.id: id 'block$index' holds `$index`, which numbers the "
        "copies of a repeat, but this layer has no `repeat:` — add `repeat: N`, or drop `$index`; for "
        "the number of the repeat that called this block, use a template: `\"block${index}\"`"]
    # also where the layer is skipped by `when:`
    assert errors(HEAD + "layers:\n  - linear: {out: 4, id: b$index, when: false}\n") == [
        "<string>:4:26: error: layers[0].linear.id: id 'b$index' holds `$index`, which numbers the "
        "copies of a repeat, but this layer has no `repeat:` — add `repeat: N`, or drop `$index`; for "
        "the number of the repeat that called this block, use a template: `\"block${index}\"`"]


def test_index_is_the_only_expression_an_id_may_hold():
    fix = ("write the id literally, with `$index` where the copy's number goes (`block$index`); "
           "a `${…}` template is evaluated once, for the whole repeat")
    assert errors(HEAD + "vars: {x: 1}\nlayers:\n  - linear: {out: 4, repeat: 2, id: \"b${x}_$index\"}\n") == [
        f"<string>:5:37: error: layers[0].linear.id: id 'b${{x}}_$index' mixes `$index` with an expression — {fix}"]
    assert errors(HEAD + "layers:\n  - linear: {out: 4, repeat: 2, id: b$index$x}\n") == [
        "<string>:4:37: error: layers[0].linear.id: id 'b$index$x': `$index` is the only expression an "
        "id may hold — write the copy's number as `$index`; other values go in a `${…}` template of an "
        "id without `$index`"]


def test_each_copy_name_is_checked():
    # bfloat16 is an nn.Module method: only the 17th copy's name is refused
    assert errors(HEAD + "layers:\n  - relu: {repeat: 17, id: bfloat$index}\n") == [
        "<string>:4:28: error: layers[0].relu.id: id 'bfloat16' is the name of an nn.Module attribute"
        " — choose another name, e.g. `bfloat16_1`"]
    assert errors(HEAD + "layers:\n  - relu: {id: b1}\n  - relu: {repeat: 2, id: b$index}\n") == [
        "<string>:5:27: error: layers[1].relu.id: duplicate id 'b1' — ids must be unique within a "
        "network or block"]


def test_repeat_zero_stands_for_the_input():
    assert names(HEAD + "layers:\n  - linear: {out: 4, id: fc}\n  - relu: {repeat: 0, id: b$index}\n"
                 "  - relu: {id: out}\n") == ["fc", "out"]


def test_state_dict_keys_and_expand_round_trip():
    pytest.importorskip("torch")
    text = HEAD + BLOCK + "layers:\n  - unit: {repeat: 2, id: layers.encoder_layer_$index}\n"
    keys = list(archc.build(text=text).state_dict())
    assert keys == [f"layers.encoder_layer_{k}.fc.{w}" for k in (0, 1) for w in ("weight", "bias")]
    # `archc expand` writes each node's name as its id: the same network, the same names
    assert names(render(archc.loads(text))) == names(text)


def test_the_json_schema_accepts_an_indexed_id():
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    spec = yaml.safe_load(HEAD + "layers:\n  - linear: {out: 4, repeat: 2, id: layers.encoder_layer_$index}\n")
    jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text())).validate(spec)
