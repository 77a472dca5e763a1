"""The examples/ folder runs: a user's spec importing blocks from another file, and the
Python API script. Expected numbers are worked out by hand below."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from click.testing import CliRunner

import archc
from archc.cli import main
from archc.spec.schema import SCHEMA_FILE

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# stem conv 1→16 (3×3, no bias) + BN; res1: two 16→16 convs + 2 BN; res2: 16→32 and
# 32→32 convs + 2 BN + a 1×1 16→32 projection; head: linear 32→10.
PARAMS = (144 + 32) + (2 * (2304 + 32)) + (4608 + 64 + 9216 + 64 + 512) + (320 + 10)
BUFFERS = 2 * (16 + 16 + 16 + 32 + 32) + 5  # running mean/var + counter per BN
# 8×8 maps for stem and res1, 4×4 for res2
MACS = 16 * 64 * 9 + 2 * 16 * 64 * 144 + 32 * 16 * 144 + 32 * 16 * 288 + 32 * 16 * 16 + 320


def test_my_classifier_imports_its_blocks():
    g = archc.load(EXAMPLES / "my_classifier.yaml")
    s = g.summary
    assert (s.total_params, s.buffers, s.macs) == (PARAMS, BUFFERS, MACS) == (19_642, 229, 533_824)
    assert s.output_shapes == [(10,)]
    assert g.node("res2.shortcut").meta["shape"] == (32, 4, 4)
    assert not any(n.name == "res1.shortcut" for n in g.nodes)  # identity shortcut
    assert g.train["data"]["source"] == "digits"


def test_examples_validate_on_the_command_line():
    runner = CliRunner()
    library = runner.invoke(main, ["validate", str(EXAMPLES / "blocks.yaml")])
    assert library.exit_code == 0, library.output
    assert "a library of blocks" in library.output
    result = runner.invoke(main, ["validate", str(EXAMPLES / "my_classifier.yaml"), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["total_params"] == PARAMS


def test_examples_satisfy_the_editor_schema():
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    for spec in EXAMPLES.glob("*.yaml"):
        assert list(validator.iter_errors(yaml.safe_load(spec.read_text()))) == [], spec.name


def test_api_usage_script_runs():
    result = subprocess.run([sys.executable, str(EXAMPLES / "api_usage.py")], capture_output=True,
                            text=True, timeout=120, cwd="/")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "my_classifier: input [1, 8, 8] -> output [10]"
    assert lines[1] == f"params {PARAMS:,} (trainable {PARAMS:,}, buffers {BUFFERS:,})"
    assert lines[2] == f"MACs {MACS:,}"
    # ResNet-101 with a 10-class head: 44,549,160 - (2048 + 1) * (1000 - 10)
    assert lines[3].startswith(f"resnet101 with 10 classes: params {44_549_160 - 2049 * 990:,}")
    assert "error:" in lines[-1] and "9×9 kernel" in lines[-1]
