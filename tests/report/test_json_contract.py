"""The JSON report (docs/json.md) against its JSON Schema, archc/report/report.schema.json.

The output of `archc validate --format json` is checked for a few specs: one network,
several networks (dcgan), FILE:NAME, a library of blocks; plus the facts the schema
cannot say (totals are sums of the layers, inputs name earlier layers)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from archc.cli import main
from archc.report.json_report import FORMAT

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "archc" / "report" / "report.schema.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA)


def report(*args) -> dict:
    result = CliRunner().invoke(main, ["validate", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def schema_errors(doc) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(doc)]


def check_network(net: dict) -> None:
    """What the schema cannot express: sums, order, shapes of the outputs."""
    layers = net["layers"]
    seen = {"input"}
    for layer in layers:
        assert all(i in seen for i in layer["inputs"]), layer["id"]
        seen.add(layer["id"])
    assert net["total_params"] == sum(l["params"] for l in layers)
    assert net["buffers"] == sum(l["buffers"] for l in layers)
    assert net["macs"] == sum(l["macs"] for l in layers)
    assert net["activation_bytes"] == sum(l["activation_bytes"] for l in layers)
    assert net["weight_bytes"] == 4 * (net["total_params"] + net["buffers"])
    frozen = sum(l["params"] for l in layers if not l["trainable"])
    assert net["trainable_params"] == net["total_params"] - frozen
    assert net["non_trainable"] == net["buffers"] + frozen
    by_id = {l["id"]: l for l in layers}
    for out in net["outputs"]:
        assert out["shape"] == by_id[out["id"]]["output_shape"]
    if len(net["outputs"]) == 1:
        assert net["output_shape"] == net["outputs"][0]["shape"]
    else:
        assert net["output_shape"] is None


@pytest.mark.parametrize("spec", ["lenet5", "mnist_mlp", "resnet50", "googlenet", "unet"])
def test_single_network_reports_follow_the_schema(spec):
    doc = report(str(ROOT / "specs" / f"{spec}.yaml"))
    assert schema_errors(doc) == []
    assert doc["format"] == FORMAT == "archc.report/1"
    check_network(doc)


def test_resnet50_figures():
    doc = report(str(ROOT / "specs" / "resnet50.yaml"))
    # torchvision's resnet50: 25,557,032 parameters, 4.09 GFLOPS (MACs, bias excluded).
    assert doc["total_params"] == 25_557_032 and round(doc["macs"] / 1e9, 2) == 4.09
    assert doc["input_shape"] == [3, 224, 224] and doc["output_shape"] == [1000]


def test_several_networks_and_file_colon_name():
    doc = report(str(ROOT / "specs" / "dcgan.yaml"))
    assert schema_errors(doc) == []
    assert set(doc) == {"format", "networks"}
    assert [n["name"] for n in doc["networks"]] == ["generator", "discriminator"]
    for net in doc["networks"]:
        check_network(net)
    one = report(str(ROOT / "specs" / "dcgan.yaml") + ":discriminator")
    assert schema_errors(one) == [] and one["name"] == "discriminator"


def test_several_outputs(tmp_path):
    spec = tmp_path / "two.yaml"
    spec.write_text("archc: 1\ninput: [4]\noutputs: [a, b]\nlayers:\n"
                    "  - linear: {out: 3, id: a}\n  - linear: {from: input, out: 2, id: b}\n")
    doc = report(str(spec))
    assert schema_errors(doc) == []
    assert doc["output_shape"] is None
    assert doc["outputs"] == [{"id": "a", "shape": [3]}, {"id": "b", "shape": [2]}]
    check_network(doc)


def test_a_library_of_blocks_reports_no_network(tmp_path):
    lib = tmp_path / "lib.yaml"
    lib.write_text("archc: 1\nblocks:\n  b:\n    layers: [relu]\n")
    doc = report(str(lib))
    assert doc == {"format": FORMAT, "networks": []} and schema_errors(doc) == []


def test_frozen_layers_are_non_trainable(tmp_path):
    spec = tmp_path / "frozen.yaml"
    spec.write_text("archc: 1\ninput: [4]\nlayers:\n  - linear: {out: 3, trainable: false}\n"
                    "  - batchnorm1d\n  - linear: {out: 2}\n")
    doc = report(str(spec))
    assert schema_errors(doc) == []
    # frozen 4*3+3 = 15; batch norm 6 params + 7 buffers; last linear 3*2+2 = 8
    assert (doc["total_params"], doc["trainable_params"], doc["non_trainable"]) == (29, 14, 22)
    check_network(doc)


@pytest.mark.parametrize("breakage", [
    lambda d: d.pop("layers"),
    lambda d: d.update(format="archc.report/2"),
    lambda d: d["layers"][0].update(params=-1),
    lambda d: d["layers"][0].update(extra=1),
    lambda d: d["layers"][0].update(receptive_field={"size": [1, 1]}),
    lambda d: d.update(networks=[]),
])
def test_the_schema_rejects_broken_reports(breakage):
    doc = report(str(ROOT / "specs" / "lenet5.yaml"))
    breakage(doc)
    assert schema_errors(doc)


def test_every_field_is_documented():
    """docs/json.md names every property of the schema (as `name` in a table row)."""
    text = (ROOT / "docs" / "json.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_]+)`", text, re.M))
    defs = SCHEMA["$defs"]
    fields = set(defs["network"]["properties"]) | set(defs["layer"]["properties"])
    fields |= {"format", "networks"} | set(defs["receptive_field"]["anyOf"][2]["properties"])
    assert fields - documented == set()
