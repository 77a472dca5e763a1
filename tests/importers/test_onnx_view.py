"""`archc validate MODEL.onnx` and `archc graph MODEL.onnx` (issue 10.5): the report and
the picture of a model archc did not write, through the importer in memory — nothing is
written but the picture asked for. The counts are derived here from the layer sizes."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from onnx import helper

from archc.cli import main
from onnx_cases import model, tensor

pytest.importorskip("onnx")
N = helper.make_node
ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "archc" / "report" / "report.schema.json").read_text())

# conv 3->4 (3x3, padding 1) on 8x8, relu, 2x2 max pool, flatten, linear 64->5
PARAMS = (4 * 3 * 3 * 3 + 4) + (64 * 5 + 5)  # 112 + 325
MACS = (4 * 8 * 8) * (3 * 3 * 3) + 64 * 5  # one per weight per output position: 6,912 + 320


@pytest.fixture
def small(tmp_path) -> Path:
    nodes = [N("Conv", ["x", "conv.weight", "conv.bias"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             N("Relu", ["c"], ["r"]), N("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             N("Flatten", ["p"], ["f"]), N("Gemm", ["f", "fc.weight", "fc.bias"], ["y"], transB=1)]
    inits = [tensor("conv.weight", 4, 3, 3, 3), tensor("conv.bias", 4), tensor("fc.weight", 5, 64), tensor("fc.bias", 5)]
    path = tmp_path / "small.onnx"
    onnx.save_model(model(nodes, [3, 8, 8], "y", inits), str(path))
    return path


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_validate_prints_the_table_with_counts_and_receptive_fields(small):
    result = run("validate", small)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "small  (5 nodes)"
    # receptive field: 3 after the 3x3 conv, 3 + (2 - 1) x 1 = 4 after the pool
    assert lines[4].split() == ["conv", "conv2d", "[4,", "8,", "8]", "112", "6.91", "K", "3"]
    assert lines[6].split()[-1] == "4"
    assert f"Total params                    {PARAMS}" in lines
    assert f"MACs                            7.23 K ({MACS:,})" in lines
    assert sorted(p.name for p in small.parent.iterdir()) == ["small.onnx"]  # nothing written


def test_validate_json_follows_the_report_schema_and_markdown(small):
    result = run("validate", small, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert list(Draft202012Validator(SCHEMA).iter_errors(doc)) == []
    assert (doc["file"], doc["name"], doc["input_shape"], doc["output_shape"]) == (str(small), "small", [3, 8, 8], [5])
    assert (doc["total_params"], doc["macs"]) == (PARAMS, MACS)
    assert [(l["id"], l["op"]) for l in doc["layers"]] == [
        ("conv", "conv2d"), ("r", "relu"), ("p", "maxpool2d"), ("f", "flatten"), ("fc", "linear")]
    assert all(l["source"] is None for l in doc["layers"])  # no spec file holds them
    result = run("validate", small, "--format", "markdown")
    assert result.exit_code == 0
    assert "| `conv` | conv2d | [4, 8, 8] | 112 | 6.91 K | 3 |" in result.stdout.splitlines()


def test_validate_several_with_a_spec(small):
    result = run("validate", small, ROOT / "specs" / "lenet5.yaml")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == f"{small}: valid (small: {PARAMS} params)"
    assert result.stderr.splitlines()[-1] == "2 specs: 2 valid, 0 with errors"


@pytest.mark.parametrize("suffix", [".html", ".mmd"])
def test_graph_draws_the_imported_network(small, suffix):
    out = small.parent / f"page{suffix}"
    result = run("graph", small, "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote {out}\n"
    text = out.read_text()
    if suffix == ".mmd":
        assert '  n1["conv<br/>conv2d<br/>[4, 8, 8]<br/>params 112"]' in text.splitlines()
        assert "  n4 --> n5" in text.splitlines()
    else:
        assert '"fc"' in text and text.startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in small.parent.iterdir()) == sorted(["small.onnx", out.name])


def test_variables_presets_and_networks_are_refused(small):
    fix = ("an imported model has fixed sizes and no variables, presets or named networks: "
           "`archc import` it to a spec and edit that")
    result = run("validate", small, "--set", "classes=3")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"{small}: error: --set given for an ONNX model — {fix}", "1 error"]
    result = run("graph", small, "-o", small.parent / "p.html", "--preset", "big")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == f"{small}: error: --preset given for an ONNX model — {fix}"
    result = run("validate", f"{small}:net")
    assert result.exit_code == 1 and result.stderr.startswith(f"{small}: error: :net given for an ONNX model")


def test_a_model_archc_cannot_express_is_a_located_error(tmp_path):
    path = tmp_path / "bad.onnx"
    onnx.save_model(model([N("GlobalMaxPool", ["x"], ["y"], name="pool")], [3, 4, 4], "y"), str(path))
    for command in (["validate", path], ["graph", path, "-o", tmp_path / "p.html"]):
        result = run(*command)
        assert result.exit_code == 1
        assert result.stderr.splitlines()[0] == (
            f"{path}: error: node 'pool' (GlobalMaxPool): archc has no op for ONNX's GlobalMaxPool — "
            "archc would need a global max pool op")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx"]
    result = run("graph", tmp_path / "gone.onnx", "-o", tmp_path / "p.html")
    assert result.exit_code == 2 and result.stderr == f"archc: error: SPEC: no such file: {tmp_path / 'gone.onnx'}\n"
