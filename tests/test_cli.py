"""The command line's contract: exit 0 on success, 1 when the spec is invalid (every error
on stderr, then a count, never a traceback), 2 on usage errors; a Python exception that
escapes a command is one line, not a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from archc.cli import main

GOOD = "archc: 1\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {out: 4, kernel: 3}\n  - flatten\n  - linear: {out: 2}\n"
# Two independent errors in different layers: both must be reported.
BAD = "archc: 1\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {out: 4, kernal: 3}\n  - linear: {out: $clases}\n"
BAD_LINES = [
    "bad.yaml:4:22: error: layers[0].conv2d.kernal: `conv2d` has no attribute `kernal` — did you mean `kernel`?",
    "bad.yaml:5:19: error: layers[1].linear.out: undefined variable $clases — define it under `vars:` "
    "or pass --set clases=VALUE",
    "2 errors",
]


@pytest.fixture
def specs(tmp_path, monkeypatch):
    """A folder with good.yaml and bad.yaml, as the working directory."""
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "bad.yaml").write_text(BAD)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args, debug=True):
    env = {"ARCHC_DEBUG": "1"} if debug else {"ARCHC_DEBUG": ""}
    return CliRunner(env=env).invoke(main, list(args))


# -- exit 0 -------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["table", "json", "markdown"])
def test_valid_spec_exits_0(specs, fmt):
    result = run("validate", "good.yaml", "--format", fmt)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    if fmt == "json":
        assert json.loads(result.stdout)
    else:
        assert "conv2d_1" in result.stdout


def test_expand_and_set_exit_0(specs):
    result = run("expand", "good.yaml", "--set", "input=[3, 10, 10]")
    assert result.exit_code == 0, result.output
    assert "input: [3, 10, 10]" in result.stdout


# -- exit 1: the spec is invalid ---------------------------------------------------------

def test_invalid_spec_exits_1_with_every_error(specs):
    result = run("validate", "bad.yaml")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == BAD_LINES
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args, first", [
    (["validate", "good.yaml:nothing"], "good.yaml: error: no network 'nothing' in this file"),
    (["validate", "good.yaml", "--preset", "big"], "good.yaml:1:1: error: --preset: no preset 'big'"),
    (["validate", "good.yaml", "--set", "width=3"], "good.yaml: error: --set width: the spec has no variable"),
    (["validate", "good.yaml", "--set", "input=[0]"], "good.yaml: error: --set input: [0] is not a shape"),
])
def test_spec_level_option_errors_exit_1(specs, args, first):
    result = run(*args)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(first), result.stderr
    assert result.stderr.splitlines()[-1] == "1 error"


# -- exit 2: usage errors ----------------------------------------------------------------

@pytest.mark.parametrize("args, says", [
    (["validate", "missing.yaml"], "no such file: missing.yaml"),
    (["compile", ".", "--print"], "is a folder, not a spec file"),  # validate checks a folder's specs
    (["validate", "good.yaml", "--bogus"], "No such option '--bogus'"),
    (["validate", "good.yaml", "--format", "xml"], "'xml' is not one of 'table', 'json', 'markdown'"),
    (["validate", "good.yaml", "--set", "width"], "--set 'width' is not KEY=VALUE"),
    (["validate", "good.yaml", "--set", "=3"], "--set '=3' is not KEY=VALUE"),
    (["validate", "good.yaml", "--set", "width=[1, 2"], "the value is not valid YAML"),
    (["validate"], "Missing argument 'SPEC[:NETWORK]...'"),
    (["frobnicate"], "No such command 'frobnicate'"),
])
def test_usage_errors_exit_2(specs, args, says):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert says in result.stderr, result.stderr
    assert "Traceback" not in result.output


# -- a bug escaping a command -------------------------------------------------------------

def test_internal_error_is_one_line_exit_1(specs, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr("archc.api.load_all", boom)
    result = run("validate", "good.yaml", debug=False)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "archc: internal error: RuntimeError: boom — this is a bug in archc, please report it "
        "with the spec (ARCHC_DEBUG=1 shows the traceback)"]
    assert "Traceback" not in result.output


def test_internal_error_reraised_with_archc_debug(specs, monkeypatch):
    monkeypatch.setattr("archc.api.load_all", lambda *a, **k: 1 / 0)
    result = run("validate", "good.yaml", debug=True)
    assert isinstance(result.exception, ZeroDivisionError)


def test_spec_errors_escaping_a_command_are_reported(specs, monkeypatch):
    from archc.errors import Pos, SpecErrors

    def fail(*args, **kwargs):
        raise SpecErrors.one("late problem", Pos("good.yaml", 2, 1), "input", "fix it")

    monkeypatch.setattr("archc.api.load_all", fail)
    result = run("validate", "good.yaml", debug=False)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == ["good.yaml:2:1: error: input: late problem — fix it",
                                          "1 error"]


# -- the real process ----------------------------------------------------------------------

def test_subprocess_invalid_spec_exits_1_without_traceback(tmp_path):
    (tmp_path / "bad.yaml").write_text(BAD)
    proc = subprocess.run([sys.executable, "-m", "archc", "validate", "bad.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == BAD_LINES
    assert "Traceback" not in proc.stderr


def test_subprocess_python_tag_is_never_run(tmp_path):
    marker = tmp_path / "PWNED"
    spec = tmp_path / "evil.yaml"
    spec.write_text(f'archc: 1\ninput: [3]\nlayers:\n  - !!python/object/apply:os.system ["touch {marker}"]\n')
    proc = subprocess.run([sys.executable, "-m", "archc", "validate", str(spec)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "YAML tag !!python/object/apply:os.system is not allowed" in proc.stderr
    assert not marker.exists()
    assert not Path("PWNED").exists()


def test_missing_optional_package_names_the_extra(monkeypatch, tmp_path):
    """A command whose extra is not installed says what to install, in one line, exit 1."""
    monkeypatch.delenv("ARCHC_DEBUG", raising=False)
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails
    spec = Path(__file__).resolve().parents[1] / "specs" / "lenet5.yaml"
    result = CliRunner().invoke(main, ["compile", str(spec), "-o", str(tmp_path / "m.pt")])
    assert result.exit_code == 1
    assert result.output.strip() == ("archc: error: `archc compile` needs the Python package "
                                     "'torch', which is not installed — pip install 'archc[torch]'")
    assert not (tmp_path / "m.pt").exists()


# -- archc ops ------------------------------------------------------------------------------

def test_ops_describes_the_ops_named():
    import inspect

    result = run("ops", "conv2d")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "conv2d: 2-D convolution over (C, H, W)."
    assert not any(line.startswith(("conv1d", "linear")) for line in lines)  # one op, not the list
    attrs = {line.split()[0]: line.split()[1:3] for line in lines if line.startswith("  ") and line[2] != " "}
    assert attrs["out"] == attrs["kernel"] == ["required", "·"]
    torch = pytest.importorskip("torch")  # the defaults are torch's own
    signature = inspect.signature(torch.nn.Conv2d).parameters
    for name in ("stride", "padding", "dilation", "groups", "bias"):
        assert attrs[name] == ["default", str(signature[name].default).lower()], name


def test_ops_unknown_name_suggests_and_exits_1():
    result = run("ops", "conv2")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == ["archc: error: unknown op `conv2` — did you mean `conv2d` or `conv3d` or "
                                          "`conv1d`?"]


# -- weights that do not fit ------------------------------------------------------------------

@pytest.mark.parametrize("command", [
    ["evaluate", "lenet5"],
    ["export", "lenet5", "-o", "{tmp}/m.onnx"],
    ["infer", "lenet5", "--input", "{tmp}/x.npy"],
])
def test_weights_that_do_not_fit_say_what_does_not(tmp_path, command):
    # every command names the conflicts, the leftovers with their shapes and a did-you-mean,
    # in one line (the builder is pinned in tests/backends/test_torch_weights.py)
    pytest.importorskip("onnx")
    np = pytest.importorskip("numpy")
    from weights_cases import NEAR_MISFIT, near_lenet5

    np.save(tmp_path / "x.npy", np.zeros((1, 1, 32, 32), np.float32))
    weights = near_lenet5(tmp_path / "near.pt")
    result = run(*[a.format(tmp=tmp_path) for a in command], "--weights", str(weights), debug=False)
    assert result.exit_code == 1, result.output
    assert result.stderr == f"archc: error: --weights {weights} {NEAR_MISFIT}\n"
    assert not (tmp_path / "m.onnx").exists()
    torch = pytest.importorskip("torch")
    import archc

    other = tmp_path / "mnist_cnn.pt"  # another network altogether (was "0 tensors paired ()" for some)
    torch.save(archc.build("mnist_cnn", seed=0).state_dict(), other)
    result = run(*[a.format(tmp=tmp_path) for a in command], "--weights", str(other), debug=False)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"archc: error: --weights {other} does not fit this network: 7 shape conflicts "
                                    "(network vs weights: output.weight (10, 84) vs output.weight (10, 128), ")
    assert "; 2 network tensors without a source (f6.weight (84, 120), f6.bias (84,)); 1 paired — " in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_reader_that_leaves_early_gets_no_traceback():
    """`archc ops | head -1`: the pipe closes under archc; no 'internal error', no traceback."""
    import subprocess
    import sys

    proc = subprocess.run(f"'{sys.executable}' -m archc ops | head -1", shell=True, capture_output=True,
                          text=True, timeout=120)
    assert proc.stdout.startswith("adaptive_avgpool1d") and proc.stdout.count("\n") == 1
    assert proc.stderr == ""
