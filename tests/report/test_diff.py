"""archc diff: nodes paired by id and by structure, whole added block instances as one
line, totals with deltas, whether A's checkpoint loads into B; exact texts."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from archc.cli import main
from archc.zoo import zoo_dir

A = """archc: 1
name: small
input: [3, 8, 8]
layers:
  - conv2d: {out: 8, kernel: 3, padding: 1, id: conv1}
  - relu: {id: act1}
  - conv2d: {out: 8, kernel: 3, padding: 1, id: conv2}
  - global_avgpool: {id: pool}
  - flatten: {id: flat}
  - linear: {out: 10, id: fc}
"""
# a batch norm inserted after conv1 (the later ids shift by one, as torchvision's
# features.N do), conv2 renamed, the head made smaller
B = A.replace("  - relu: {id: act1}\n", "  - batchnorm2d: {id: bn1}\n  - relu: {id: act1}\n") \
     .replace("id: conv2}", "id: conv3}").replace("out: 10, id: fc", "out: 5, id: fc")


def run(*args):
    return CliRunner().invoke(main, ["diff", *args])


def test_inserted_renamed_changed_and_the_checkpoint(tmp_path):
    (tmp_path / "a.yaml").write_text(A)
    (tmp_path / "b.yaml").write_text(B)
    result = run(str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[2:] == [
        "  changed  fc              linear  out 10 -> 5; shape [10] -> [5]; params 90 -> 45; macs 80 -> 40",
        "  renamed  conv2 -> conv3  conv2d",
        "  added    bn1             batchnorm2d [8, 8, 8]  +16 params",
        "                         A               B           delta",
        "  params               898             869             −29",  # 224 + 584 + 90; 224 + 16 + 584 + 45
        "  buffers                0              17             +17",  # 8 + 8 running stats, 1 counter
        "  MACs              50,768          50,728             −40",  # 13,824 + 36,864 + 80
        "  nodes                  6               7              +1",
        "block bn1: 1 added, 0 removed, 0 changed, +16 params, ±0 MACs",
        "block fc: 0 added, 0 removed, 1 changed, −45 params, −40 MACs",
        "checkpoint: A's state_dict does not load into B as is: keys 7 missing, 2 unexpected, 2 of another shape",
        "  missing: bn1.weight, bn1.bias, bn1.running_mean, bn1.running_var, bn1.num_batches_tracked …",
        "  unexpected: conv2.weight, conv2.bias",
        "  other shape: fc.weight [10, 8] -> [5, 8]",
        "  other shape: fc.bias [10] -> [5]"]
    assert run(str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"), "--exit-code").exit_code == 1


def test_resnet50_against_its_resnet101_preset_adds_17_bottlenecks():
    result = run("resnet50", "resnet50", "--preset-b", "resnet101")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    added = [line for line in lines if line.startswith("  added")]
    assert added == [f"  added    {f'layer3.{i}':<9}  bottleneck, 10 nodes  +1,117,184 params" for i in range(6, 23)]
    assert "  params        25,557,032      44,549,160     +18,992,128" in lines
    assert "block layer3: 170 added, 0 removed, 0 changed, +18,992,128 params, +3.71 G MACs" in lines


def test_same_spec_twice_is_no_difference_and_json(tmp_path):
    (tmp_path / "a.yaml").write_text(A)
    result = run(str(tmp_path / "a.yaml"), str(tmp_path / "a.yaml"), "--exit-code")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[2] == "no difference in structure or counts"
    assert "checkpoint: A's state_dict loads into B as is (every key and shape agrees)" in result.stdout
    (tmp_path / "b.yaml").write_text(B)
    doc = json.loads(run(str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"), "--format", "json").stdout)
    assert doc["format"] == "archc.diff/1" and doc["identical"] is False
    assert [(n["status"], n["a"], n["b"], n["fields"]) for n in doc["nodes"]] == [
        ("changed", "fc", "fc", ["attrs", "shape", "params", "macs"]), ("renamed", "conv2", "conv3", []),
        ("added", None, "bn1", [])]
    assert doc["totals"][0] == {"name": "params", "a": 898, "b": 869, "delta": -29}
    assert doc["checkpoint"]["loads"] is False


ZOO = zoo_dir() / "mnist_mlp.yaml"


def test_set_on_one_side_and_markdown():
    result = run("mnist_mlp", "mnist_mlp", "--set-b", "hidden=64", "--format", "markdown")
    assert result.exit_code == 0, result.output
    assert "| changed | `hidden.0.linear_1` | linear | out 512 -> 64; shape [512] -> [64]; params 401,920 -> " \
        "50,240; macs 401,408 -> 50,176 |" in result.stdout.splitlines()
    # 784·512 + 512 + 512·512 + 512 + 512·10 + 10 against the same with 64
    assert "| params | 669,706 | 55,050 | −614,656 |" in result.stdout.splitlines()
    # the side with the override is named with it (both sides are the same file)
    assert result.stdout.startswith(f"## mnist_mlp ({ZOO}) → mnist_mlp --set hidden=64 ({ZOO})\n")
    table = run("mnist_mlp", "mnist_mlp", "--set", "classes=5", "--set-a", "hidden=64")
    assert table.stdout.splitlines()[:2] == [f"A: mnist_mlp --set classes=5 --set hidden=64 ({ZOO})",
                                             f"B: mnist_mlp --set classes=5 ({ZOO})"]


def test_diff_does_not_import_torch(tmp_path):
    """The checkpoint verdict comes from the specs (archc/backends/torch/state.py): a whole
    `archc diff` process, verdict included, never imports torch (its import alone takes
    seconds). A fresh interpreter: this test process may have imported torch already."""
    (tmp_path / "a.yaml").write_text(A)
    (tmp_path / "b.yaml").write_text(B)
    code = ("import sys\nfrom archc.cli import main\n"
            "try:\n    main(['diff', sys.argv[1], sys.argv[2]])\nexcept SystemExit:\n    pass\n"
            "print('modules:', sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'onnx')))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")],
                         capture_output=True, text=True, check=True).stdout
    assert "checkpoint: A's state_dict does not load into B as is" in out
    assert out.splitlines()[-1] == "modules: []"


WIRED = """archc: 1
name: wired
input: [4]
layers:
  - linear: {out: 4, id: a}
  - linear: {out: 4, id: b}
  - linear: {out: 4, id: c}
  - add: {id: s, from: [a, c]}
"""
TOTALS = ["                         A               B           delta",
          "  params                60              60              ±0",  # 3 x (4 x 4 + 4)
          "  buffers                0               0              ±0",
          "  MACs                  48              48              ±0",  # 3 x 16
          "  nodes                  4               4              ±0"]


def test_wiring_alone_is_a_difference(tmp_path):
    """Every layer and count the same, the residual add reads b instead of a: was "no
    difference in structure or counts" and --exit-code 0."""
    (tmp_path / "a.yaml").write_text(WIRED)
    (tmp_path / "b.yaml").write_text(WIRED.replace("from: [a, c]", "from: [b, c]"))
    args = (str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"))
    result = run(*args)
    assert result.stdout.splitlines()[2:] == [
        "  changed  s  add  inputs [a, c] -> [b, c]", *TOTALS,
        "block s: 0 added, 0 removed, 1 changed, ±0 params, ±0 MACs",
        "checkpoint: A's state_dict loads into B as is (every key and shape agrees)"]
    assert run(*args, "--exit-code").exit_code == 1
    (node,) = json.loads(run(*args, "--format", "json").stdout)["nodes"]
    assert (node["status"], node["fields"], node["a_values"]["inputs"], node["b_values"]["inputs"]) == (
        "changed", ["inputs"], ["a", "c"], ["b", "c"])


def test_a_renamed_layer_fed_from_elsewhere_is_changed(tmp_path):
    """The same relu under another id reading another layer: not "renamed" (the same layer
    under another id) but changed, with both ids."""
    head = "archc: 1\nname: r\ninput: [4]\nlayers:\n  - linear: {out: 4, id: a}\n  - linear: {out: 4, id: b}\n"
    (tmp_path / "a.yaml").write_text(head + "  - relu: {from: a}\n")
    (tmp_path / "b.yaml").write_text(head + "  - relu: {id: act, from: b}\n")
    result = run(str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"))
    assert result.stdout.splitlines()[2] == "  changed  relu_1 -> act  relu  inputs [a] -> [b]"


def test_outputs_alone_are_a_difference(tmp_path):
    (tmp_path / "a.yaml").write_text(WIRED + "outputs: [a, s]\n")
    (tmp_path / "b.yaml").write_text(WIRED + "outputs: [s]\n")
    args = (str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"))
    result = run(*args, "--exit-code")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[2:8] == ["outputs: [a, s] -> [s]", *TOTALS]
    markdown = run(*args, "--format", "markdown").stdout.splitlines()
    assert markdown[2:5] == ["outputs: [a, s] -> [s]", "", "| | A | B | delta |"]
    doc = json.loads(run(*args, "--format", "json").stdout)
    assert (doc["identical"], doc["nodes"], doc["outputs"]) == (False, [], {"a": ["a", "s"], "b": ["s"],
                                                                             "changed": True})
    # the same outputs, named or by default (the last layer): no difference
    (tmp_path / "b.yaml").write_text(WIRED)
    (tmp_path / "c.yaml").write_text(WIRED + "outputs: [s]\n")
    result = run(str(tmp_path / "b.yaml"), str(tmp_path / "c.yaml"), "--exit-code")
    assert result.exit_code == 0 and result.stdout.splitlines()[2] == "no difference in structure or counts"
