"""Lint warnings (archc/analysis/lint.py, docs/spec.md#warnings): legal specs that are
probably mistakes. Each case pins the rendered text; the facts a warning states (what a
linear layer on a map gives, the next multiple of 8) are checked against torch or a
formula written here; warnings never change validate's exit status, and no zoo spec warns."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

import archc
from archc.analysis.lint import lint, visible
from archc.cli import main
from archc.ops.foreign_names import FOREIGN, archc_ops_for
from archc.ops.registry import all_ops
from archc.zoo import zoo_specs


def findings(spec: str, severity: str | None = None) -> list[str]:
    found = lint(archc.loads(spec))
    return [f.render() for f in found if severity in (None, f.severity)]


DEAD_BRANCH = """\
archc: 1
input: [3, 32, 32]
layers:
  - conv2d: {out: 16, kernel: 3, padding: 1, id: a}
  - conv2d: {from: input, out: 16, kernel: 1, id: side}
  - relu: {from: side, id: side_act}
  - relu: {from: a}
  - flatten
  - linear: {out: 10}
"""


def test_a_branch_whose_output_is_never_used_warns_once_at_its_end():
    assert findings(DEAD_BRANCH) == [
        "<string>:6:5: warning: layers[2].relu: the output of `side_act` is never used: no layer "
        "reads it and it is not a network output (nor that of 1 layer feeding only it) — read it "
        "with `from: side_act`, list it in `outputs:`, or remove it"]


def test_a_node_listed_in_outputs_is_used():
    spec = DEAD_BRANCH.replace("layers:\n", "outputs: [side_act, linear_1]\nlayers:\n")
    assert findings(spec) == []


def test_a_block_template_warns_once_naming_its_instances():
    spec = """\
archc: 1
input: [8, 16, 16]
blocks:
  unit:
    layers:
      - conv2d: {out: 8, kernel: 3, padding: 1, id: c}
      - conv2d: {from: input, out: 8, kernel: 1, id: side}
      - relu: {from: c}
layers:
  - unit: {repeat: 3}
"""
    found = findings(spec)
    assert len(found) == 1
    assert "the output of `unit_1.0.side` (and 2 more instances, the last `unit_1.2.side`) is never used" in found[0]
    assert found[0].startswith("<string>:7:9: warning: layers[0].unit > blocks.unit.layers[1].conv2d: ")


def linear_spec(input_shape, before: str = "") -> str:
    return f"archc: 1\ninput: {input_shape}\nlayers:\n{before}  - linear: {{out: 10, id: fc}}\n"


def test_linear_on_an_image_map_warns_with_what_it_gives():
    torch = pytest.importorskip("torch")
    (text,) = findings(linear_spec([3, 32, 32], "  - conv2d: {out: 16, kernel: 3, padding: 1}\n"))
    # torch's Linear acts on the last axis: (16, 32, 32) -> (16, 32, 10), 32 of 16·32·32 values
    got = torch.nn.Linear(32, 10)(torch.zeros(1, 16, 32, 32)).shape[1:]
    assert text == (
        f"<string>:5:5: warning: layers[1].linear: `fc` reads a (C, H, W) map [16, 32, 32] and acts "
        f"on its last axis only (32 of {16 * 32 * 32:,} values), giving {list(got)} — did you mean to "
        "flatten first? add `- flatten` before it (or `global_avgpool: {keepdims: false}`); to act "
        "on channels, `permute` them last first")


@pytest.mark.parametrize("input_shape, before", [
    ([3, 32, 32], ""),                                            # the image itself
    ([4, 100], "  - conv1d: {out: 8, kernel: 3}\n"),               # (C, L) of a 1-D conv
    ([3, 32, 32], "  - conv2d: {out: 8, kernel: 3}\n  - relu\n  - batchnorm2d\n"),  # through layout-keeping ops
    ([3, 32, 32], "  - conv2d: {out: 8, kernel: 3}\n  - global_avgpool\n"),  # keepdims: (8, 1, 1)
])
def test_linear_on_channels_first_maps_warns(input_shape, before):
    assert len(findings(linear_spec(input_shape, before), "warning")) == 1


@pytest.mark.parametrize("input_shape, before", [
    ([16, 64], ""),                                                # (L, D) tokens: what linear is for
    ([3, 32, 32], "  - conv2d: {out: 8, kernel: 3}\n  - flatten\n"),
    ([3, 32, 32], "  - conv2d: {out: 8, kernel: 3}\n  - global_avgpool: {keepdims: false}\n"),
    # ConvNeXt's channels-last MLP: permute, layernorm over channels, then linear
    ([3, 32, 32], "  - conv2d: {out: 8, kernel: 3}\n  - permute: {dims: [1, 2, 0]}\n  - layernorm\n"),
    ([784], "  - linear: {out: 64}\n  - relu\n"),
])
def test_linear_on_features_tokens_or_channels_last_does_not_warn(input_shape, before):
    assert findings(linear_spec(input_shape, before), "warning") == []


ODD_CHANNELS = """\
archc: 1
input: [3, 32, 32]
layers:
  - conv2d: {out: 30, kernel: 3, id: c1}
  - conv2d: {out: 30, kernel: 3, groups: 30, id: dw}
  - global_avgpool: {keepdims: false}
  - linear: {out: 10, id: head}
  - softmax
"""


def test_channels_off_a_multiple_of_8_are_an_info_note():
    # the image's 3 channels, a depthwise conv and the 10-class head are not the designer's
    # choice for tensor cores: only c1 is noted, with the next multiple of 8
    assert findings(ODD_CHANNELS) == [
        "<string>:4:5: info: layers[0].conv2d: `c1` gives 30 channels, not a multiple of 8; tensor "
        "cores (fp16/bf16 on NVIDIA GPUs) work on tiles of 8 — "
        f"{math.ceil(30 / 8) * 8} would use them fully, if the design allows"]
    assert visible(lint(archc.loads(ODD_CHANNELS))) == []


def validate(tmp_path, text: str, *args):
    spec = tmp_path / "net.yaml"
    spec.write_text(text)
    return CliRunner().invoke(main, ["validate", str(spec), *args])


def test_validate_prints_warnings_after_the_table_and_exits_0(tmp_path):
    r = validate(tmp_path, DEAD_BRANCH)
    assert r.exit_code == 0
    assert "Total params" in r.stdout and "warning" not in r.stdout
    lines = r.stderr.splitlines()
    assert lines[0].startswith(f"{tmp_path / 'net.yaml'}:6:5: warning: layers[2].relu: the output of `side_act`")
    assert lines[-1] == "1 warning"


def test_info_notes_need_hints_in_text_and_are_always_in_json(tmp_path):
    assert validate(tmp_path, ODD_CHANNELS).stderr == ""
    r = validate(tmp_path, ODD_CHANNELS, "--hints")
    assert r.exit_code == 0 and r.stderr.splitlines()[-1] == "1 info note"
    doc = json.loads(validate(tmp_path, ODD_CHANNELS, "--format", "json").stdout)
    assert [(d["line"], d["column"], d["path"], d["severity"]) for d in doc["diagnostics"]] == [
        (4, 5, "layers[0].conv2d", "info")]


def test_a_spec_that_warns_still_builds():
    torch = pytest.importorskip("torch")
    model = archc.build(text=DEAD_BRANCH, seed=0)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("path", zoo_specs(), ids=lambda p: p.stem)
def test_no_zoo_spec_warns(path):
    assert [f.render() for g in archc.api.load_all(str(path)) for f in lint(g)
            if f.severity != "info"] == []


# -- Keras and torch layer names in the unknown-op error --------------------------------


def test_every_foreign_name_maps_to_a_registered_op():
    ops = all_ops()
    assert [(k, o) for k, v in FOREIGN.items() for o in v if o not in ops] == []


@pytest.mark.parametrize("name, op", [
    # torch.nn module names, checked to exist below
    ("nn.Linear", "linear"), ("nn.Conv2d", "conv2d"), ("nn.BatchNorm2d", "batchnorm2d"),
    ("nn.MaxPool2d", "maxpool2d"), ("nn.ConvTranspose2d", "conv_transpose2d"),
    ("nn.AdaptiveAvgPool2d", "adaptive_avgpool2d"), ("nn.LeakyReLU", "leaky_relu"),
    ("nn.MultiheadAttention", "attention"), ("nn.GELU", "gelu"), ("nn.LayerNorm", "layernorm"),
    # Keras layer names
    ("Dense", "linear"), ("dense", "linear"), ("Conv2D", "conv2d"), ("MaxPooling2D", "maxpool2d"),
    ("BatchNormalization", "batchnorm2d"), ("GlobalAveragePooling2D", "global_avgpool"),
    ("Conv2DTranspose", "conv_transpose2d"), ("Concatenate", "concat"), ("UpSampling2D", "upsample"),
    ("keras.layers.Dense", "linear"),
])
def test_foreign_layer_names_answer_with_the_archc_op(name, op):
    if name.startswith("nn."):
        torch = pytest.importorskip("torch")
        assert hasattr(torch.nn, name[3:]), name
    assert archc_ops_for(name, all_ops())[0] == op


def test_archc_names_and_unrelated_words_are_not_foreign():
    assert archc_ops_for("conv2d", all_ops()) == []
    assert archc_ops_for("glorp", all_ops()) == []


def test_the_warnings_example_of_spec_md_prints_what_the_docs_show(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    section = (Path(__file__).resolve().parents[2] / "docs" / "spec.md").read_text().split("\n## Warnings\n")[1]
    spec, shown = re.findall(r"```(?:yaml|text)\n(.*?)```", section, re.S)[:2]
    (tmp_path / "lint.yaml").write_text(spec)
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["validate", "lint.yaml"])
    assert r.exit_code == 0
    assert r.stderr == shown
