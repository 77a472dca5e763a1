"""Expansion errors through the Python API: the error cap, follow-on suppression and the
choice of a network (the CLI-level cases are in tests/specs/invalid)."""

from __future__ import annotations

import time

import pytest

import archc
from archc.errors import SpecErrors
from archc.spec.expand import MAX_ERRORS


def errors(text: str, **kwargs) -> list[str]:
    with pytest.raises(SpecErrors) as info:
        archc.load_all(text=text, **kwargs)
    return [e.render() for e in info.value.errors]


def test_error_count_is_capped():
    text = "archc: 1\ninput: [3]\nlayers:\n" + "".join(f"  - relu: {{from: x{i}}}\n" for i in range(5000))
    start = time.perf_counter()
    lines = errors(text)
    assert time.perf_counter() - start < 5
    assert len(lines) == MAX_ERRORS
    assert lines[-1].endswith(f"\nnote: stopping after {MAX_ERRORS} errors; fix these first")


def test_a_failed_layer_causes_no_follow_on_errors():
    # The conv fails; the linear after it would otherwise see a (3, 32, 32) image input and
    # the concat a missing id.
    text = ("archc: 1\ninput: [3, 32, 32]\nlayers:\n  - conv2d: {out: 8, kernel: 3, bias: maybe, id: c}\n"
            "  - flatten\n  - linear: {out: 4}\n  - concat: {from: [c, input]}\n")
    assert errors(text) == ["<string>:4:39: error: layers[0].conv2d.bias: expected true or false, got 'maybe'"]


def test_load_needs_one_network():
    text = ("archc: 1\nnetworks:\n  g: {input: [4], layers: [{linear: {out: 2}}]}\n"
            "  d: {input: [2], layers: [{linear: {out: 1}}]}\n")
    with pytest.raises(SpecErrors) as info:
        archc.loads(text)
    assert str(info.value) == "<string>: error: the file defines 2 networks — choose one: <string>:g, <string>:d"
    assert archc.loads(text, "g").summary.total_params == 10
    with pytest.raises(SpecErrors) as info:
        archc.loads(text, "gg")
    assert str(info.value) == "<string>: error: no network 'gg' in this file — did you mean `g`?"


def test_dotted_ids_name_containers_not_layers():
    # `archc expand` writes ids like layer1.0.conv1; a part must still be a safe name, and a
    # layer cannot sit inside another layer
    head = "archc: 1\ninput: [4]\nlayers:\n"
    assert errors(head + "  - linear: {out: 4, id: a}\n  - relu: {id: a.b}\n") == [
        "<string>:5:16: error: layers[1].relu.id: id 'a.b' puts a layer inside `a`, which is a layer"
        " — rename one of them"]
    assert errors(head + "  - linear: {out: 4, id: a.train}\n") == [
        "<string>:4:26: error: layers[0].linear.id: id 'a.train': part 'train' is the name of an"
        " nn.Module attribute — choose another name, e.g. `train_1`"]
    assert errors(head + "  - linear: {out: 4, id: 0.a}\n") == [
        "<string>:4:26: error: layers[0].linear.id: id '0.a': part '0' is not a plain identifier"
        " — use letters, digits and _, starting with a letter"]
    g = archc.loads(head + "  - linear: {out: 4, id: a.0.b}\n  - relu: {from: a.0.b}\n")
    assert [(n.name, n.inputs) for n in g.nodes] == [("a.0.b", ["input"]), ("relu_1", ["a.0.b"])]


def test_a_block_argument_reading_a_failed_input_is_no_follow_on_error():
    # the block call's $input.channels is unknown because the conv failed: one error, not a
    # second one telling the user to set a variable
    text = ("archc: 1\ninput: [3, 8, 8]\nblocks:\n  unit:\n    args: {width: required}\n    layers:\n"
            "      - conv2d: {out: $width, kernel: 3}\nlayers:\n  - conv2d: {out: 4, kernel: 30}\n"
            "  - unit: {width: $input.channels}\n  - unit: {width: $input.channels * 2, repeat: 2}\n")
    lines = errors(text)
    assert len(lines) == 1 and lines[0].startswith("<string>:9:5: error: layers[0].conv2d: `conv2d_1`: a 30×30 kernel")
