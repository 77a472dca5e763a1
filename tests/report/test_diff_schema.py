"""`archc diff --format json` (archc.diff/1) against its JSON Schema,
archc/report/diff.schema.json, for each kind of difference — added block instances
(resnet50 vs its resnet101 preset), inserted layers (vgg16 vs vgg16_bn), a changed layer
(--set-b classes=10), renamed layers, none — plus the facts a schema cannot say: deltas
are B less A, the per-block rows add up to the node list, and the checkpoint verdict agrees
with its lists. The figures are derived in comments."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from archc.cli import main

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "archc" / "report" / "diff.schema.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA)
SPECS = ROOT / "specs"


def diff_json(*args) -> dict:
    result = CliRunner().invoke(main, ["diff", *map(str, args), "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [e.message for e in VALIDATOR.iter_errors(doc)] == []
    check_consistency(doc)
    return doc


def check_consistency(doc: dict) -> None:
    """What the schema cannot express."""
    for t in doc["totals"]:
        assert t["delta"] == t["b"] - t["a"]
    totals = {t["name"]: t for t in doc["totals"]}
    assert (totals["params"]["a"], totals["nodes"]["a"]) == (doc["a"]["total_params"], doc["a"]["nodes"])
    assert (totals["params"]["b"], totals["nodes"]["b"]) == (doc["b"]["total_params"], doc["b"]["nodes"])
    statuses = [n["status"] for n in doc["nodes"]]
    for kind in ("added", "removed", "changed"):
        assert sum(b[kind] for b in doc["blocks"]) == statuses.count(kind)
    # without changed or renamed nodes, the blocks' deltas are the whole difference
    if not {"changed", "renamed"} & set(statuses):
        assert sum(b["params"] for b in doc["blocks"]) == totals["params"]["delta"]
    assert doc["identical"] == (doc["nodes"] == [] and not doc["outputs"]["changed"])
    for n in doc["nodes"]:  # which of the five a field names, from the values
        five = [f for f in ("op", "attrs", "shape", "params", "macs")
                if n["status"] == "changed" and n["a_values"][f] != n["b_values"][f]]
        assert [f for f in n["fields"] if f != "inputs"] == five
    c = doc["checkpoint"]
    assert c["loads"] == (not (c["missing"] or c["unexpected"] or c["other_shape"]))


def test_the_schema_is_valid_and_can_fail():
    Draft202012Validator.check_schema(SCHEMA)
    doc = diff_json(SPECS / "resnet18.yaml", SPECS / "resnet18.yaml", "--set-b", "classes=10")
    for mutate in (lambda d: d["nodes"][0].update(status="moved"),
                   lambda d: d["nodes"][0].update(fields=[]),  # a change that changes nothing
                   lambda d: d["totals"].pop(),
                   lambda d: d["a"].pop("macs"),
                   lambda d: d["checkpoint"].update(extra=1),
                   lambda d: d["nodes"][0].update(fields=["wires"]),
                   lambda d: d["outputs"].pop("changed"),
                   lambda d: d["nodes"][0]["a_values"].update(inputs="layer4")):
        bad = copy.deepcopy(doc)
        mutate(bad)
        assert list(VALIDATOR.iter_errors(bad)), mutate


def test_added_bottlenecks():
    doc = diff_json(SPECS / "resnet50.yaml", SPECS / "resnet50.yaml", "--preset-b", "resnet101")
    assert doc["b"]["preset"] == "resnet101" and doc["a"]["preset"] is None
    # 17 more bottlenecks in layer3 (23 - 6), 10 nodes each; 18,992,128 = 17 x 1,117,184
    assert [n["status"] for n in doc["nodes"]] == ["added"] * 170
    assert doc["blocks"] == [{"block": "layer3", "added": 170, "removed": 0, "changed": 0,
                              "params": 18_992_128, "macs": 3_712_221_184}]
    assert doc["checkpoint"]["missing"][:2] == ["layer3.6.conv1.weight", "layer3.6.bn1.weight"]
    assert len(doc["checkpoint"]["missing"]) == 17 * 18  # 3 convs + 3 batch norms x 5 tensors


def test_inserted_batch_norms():
    doc = diff_json(SPECS / "vgg16.yaml", SPECS / "vgg16_bn.yaml")
    added = [n for n in doc["nodes"] if n["status"] == "added"]
    assert len(doc["nodes"]) == len(added) == 13 and {n["b_values"]["op"] for n in added} == {"batchnorm2d"}
    # 2 x (64 + 64 + 128 + 128 + 3 x 256 + 6 x 512) = 8,448 parameters
    assert {t["name"]: t["delta"] for t in doc["totals"]} == {"params": 8_448, "buffers": 8_461, "MACs": 0,
                                                              "nodes": 13}
    assert len(doc["checkpoint"]["missing"]) == 13 * 5 and doc["checkpoint"]["unexpected"] == []


def test_changed_head():
    doc = diff_json(SPECS / "resnet18.yaml", SPECS / "resnet18.yaml", "--set-b", "classes=10")
    assert doc["b"]["overrides"] == {"classes": 10}
    (node,) = doc["nodes"]
    assert (node["status"], node["a"], node["fields"]) == ("changed", "fc", ["attrs", "shape", "params", "macs"])
    assert (node["a_values"]["params"], node["b_values"]["params"]) == (512 * 1000 + 1000, 512 * 10 + 10)
    assert doc["checkpoint"]["other_shape"] == [{"key": "fc.weight", "a": [1000, 512], "b": [10, 512]},
                                                {"key": "fc.bias", "a": [1000], "b": [10]}]


def test_renamed_and_identical(tmp_path):
    a = "archc: 1\ninput: [4]\nlayers:\n  - linear: {out: 8}\n  - relu\n  - linear: {out: 3}\n"
    b = "archc: 1\ninput: [4]\nlayers:\n  - linear: {out: 8}\n  - linear: {out: 8}\n  - relu\n  - linear: {out: 3}\n"
    (tmp_path / "a.yaml").write_text(a)
    (tmp_path / "b.yaml").write_text(b)
    doc = diff_json(tmp_path / "a.yaml", tmp_path / "b.yaml")
    # the inserted linear takes the id linear_2, so A's linear_2 (the head) is B's linear_3
    assert [(n["status"], n["a"], n["b"]) for n in doc["nodes"]] == [
        ("renamed", "linear_2", "linear_3"), ("added", None, "linear_2")]
    doc = diff_json(tmp_path / "a.yaml", tmp_path / "a.yaml")
    assert doc["identical"] and doc["blocks"] == [] and doc["checkpoint"]["loads"]


@pytest.mark.parametrize("flag", ["--set-b", "--set"])
def test_an_onnx_side_takes_no_variables(tmp_path, flag):
    onnx = pytest.importorskip("onnx")
    from onnx import helper

    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["n", 4])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    m = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
                          opset_imports=[helper.make_opsetid("", 20)])
    onnx.save_model(m, str(tmp_path / "m.onnx"))
    result = CliRunner().invoke(main, ["diff", str(SPECS / "mnist_mlp.yaml"), str(tmp_path / "m.onnx"), flag, "hidden=8"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{tmp_path / 'm.onnx'}: error: --set given for an ONNX model")


def test_wiring_and_outputs(tmp_path):
    """Fields added within version 1: ``inputs`` among a changed node's fields, the values'
    ``inputs``, and ``outputs``. A document without them (archc before they were added)
    still validates: they are optional, as docs/json.md's versioning asks."""
    head = "archc: 1\nname: w\ninput: [4]\nlayers:\n  - linear: {out: 4, id: a}\n  - linear: {out: 4, id: b}\n"
    (tmp_path / "a.yaml").write_text(head + "  - add: {id: s, from: [a, b]}\noutputs: [a, s]\n")
    (tmp_path / "b.yaml").write_text(head + "  - add: {id: s, from: [b, b]}\n")
    doc = diff_json(tmp_path / "a.yaml", tmp_path / "b.yaml")
    assert doc["outputs"] == {"a": ["a", "s"], "b": ["s"], "changed": True}
    assert [(n["status"], n["a"], n["fields"]) for n in doc["nodes"]] == [("changed", "s", ["inputs"])]
    old = copy.deepcopy(doc)
    del old["outputs"]
    for n in old["nodes"]:
        n["fields"] = [f for f in n["fields"] if f != "inputs"] or ["op"]
        for side in ("a_values", "b_values"):
            n[side].pop("inputs")
    assert [e.message for e in VALIDATOR.iter_errors(old)] == []
