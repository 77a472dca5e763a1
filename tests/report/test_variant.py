"""A report says which variant of a spec it describes: `--preset resnet101` is not titled
resnet50, `--set classes=10` is shown — in the table, the Markdown, the JSON, `archc
expand`, and the generated module's class name and header."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import archc
from archc.backends.torch.codegen import generate, model_class
from archc.cli import main
from archc.report import variant
from archc.report.json_report import graph_dict

ROOT = Path(__file__).resolve().parents[2]
RESNET50 = str(ROOT / "specs" / "resnet50.yaml")
CHOSEN = ["--preset", "resnet101", "--set", "classes=10"]


def cli(*args) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_the_table_is_titled_with_the_variant():
    first = cli("validate", RESNET50, *CHOSEN).splitlines()[0]
    assert first.startswith("resnet50 --preset resnet101 --set classes=10  (")
    assert cli("validate", RESNET50).splitlines()[0].startswith("resnet50  (")


def test_markdown_and_expand_name_the_variant():
    assert cli("validate", RESNET50, *CHOSEN, "--format", "markdown").startswith(
        "### resnet50 --preset resnet101 --set classes=10\n")
    head = cli("expand", RESNET50, *CHOSEN).splitlines()[0]
    assert head.startswith(f"# expanded from {RESNET50} --preset resnet101 --set classes=10 (spec hash ")


def test_json_carries_preset_overrides_and_a_variant_hash():
    plain = json.loads(cli("validate", RESNET50, "--format", "json"))
    r101 = json.loads(cli("validate", RESNET50, "--preset", "resnet101", "--format", "json"))
    r101_10 = json.loads(cli("validate", RESNET50, *CHOSEN, "--format", "json"))
    assert (plain["preset"], plain["overrides"]) == (None, {})
    assert (r101_10["preset"], r101_10["overrides"]) == ("resnet101", {"classes": 10})
    assert plain["variant_hash"] == plain["spec_hash"]  # the file's defaults: the file's hash
    assert r101_10["spec_hash"] == plain["spec_hash"]  # the same file text
    assert len({plain["variant_hash"], r101["variant_hash"], r101_10["variant_hash"]}) == 3
    # torchvision's resnet101 with a 10-class head: 42,500,160 in its features + 2048·10 + 10
    import torchvision

    reference = torchvision.models.resnet101(weights=None, num_classes=10)
    assert r101_10["total_params"] == sum(p.numel() for p in reference.parameters())


def test_the_variant_hash_ignores_the_order_of_set():
    a = archc.load(RESNET50, overrides={"classes": 10, "width": 32})
    b = archc.load(RESNET50, overrides={"width": 32, "classes": 10})
    assert variant.variant_hash(a) == variant.variant_hash(b) != a.spec_hash


def test_totals_in_json_add_up():
    spec = ("archc: 1\ninput: [4]\nlayers:\n  - linear: {out: 3, trainable: false}\n"
            "  - batchnorm1d\n  - linear: {out: 2}\n")
    d = graph_dict(archc.loads(spec))
    assert d["frozen_params"] == 4 * 3 + 3
    assert d["total_params"] == d["trainable_params"] + d["frozen_params"]
    assert d["non_trainable"] == d["frozen_params"] + d["buffers"]  # version 1's meaning, kept


@pytest.mark.parametrize("name, preset, want", [
    ("resnet50", "resnet101", "Resnet101"),
    ("vgg16", "vgg11", "Vgg11"),
    ("mlp", "wide", "MlpWide"),
    ("resnet50", None, "Resnet50"),
])
def test_class_names_follow_the_preset(name, preset, want):
    g = archc.loads(f"archc: 1\nname: {name}\ninput: [4]\nvars: {{w: 2}}\n"
                    "presets: {resnet101: {w: 3}, vgg11: {w: 3}, wide: {w: 8}}\n"
                    "layers:\n  - linear: {out: $w}\n", preset=preset)
    assert model_class(g) == want
    assert f"class {want}(nn.Module):" in generate(g)


def test_the_generated_header_and_the_built_module_name_the_variant():
    g = archc.load(RESNET50, overrides={"classes": 10}, preset="resnet101")
    header = generate(g).split("import torch")[0]
    assert (f"# spec hash: {g.spec_hash}; --preset resnet101 --set classes=10 "
            f"(variant hash {variant.variant_hash(g)})") in header
    model = archc.build(RESNET50, overrides={"classes": 10}, preset="resnet101")
    assert type(model).__name__ == "Resnet101"


@pytest.mark.parametrize("value, text", [
    (10, "10"), ([3, 160, 160], "[3, 160, 160]"), ("relu", "relu"), ("10", '"10"'),
    ("yes", '"yes"'), (5e-4, "0.0005"), (True, "true"),
])
def test_set_values_are_shown_as_they_would_be_typed(value, text):
    assert variant.value_text(value) == text
