"""`archc validate` for CI and editors (issue 12, point 8): several files, a folder and `-`
(standard input) in one call, a summary line and the worst exit status; `--format json`
on an invalid spec prints the errors as JSON (archc/report/errors.schema.json); and a path
that is not there is one line and exit 2 in every command."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from archc.cli import main

ROOT = Path(__file__).resolve().parents[1]
ERRORS_SCHEMA = json.loads((ROOT / "archc" / "report" / "errors.schema.json").read_text())
REPORT_SCHEMA = json.loads((ROOT / "archc" / "report" / "report.schema.json").read_text())

GOOD = "archc: 1\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {out: 4, kernel: 3}\n  - flatten\n  - linear: {out: 2}\n"
GOOD_PARAMS = (3 * 3 * 3 * 4 + 4) + (4 * 6 * 6 * 2 + 2)  # conv 3x3, 3->4; linear 144->2: 402
BAD = "archc: 1\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {out: 4, kernal: 3}\n  - linear: {out: $clases}\n"
BAD_ERRORS = [
    "bad.yaml:4:22: error: layers[0].conv2d.kernal: `conv2d` has no attribute `kernal` — did you mean `kernel`?",
    "bad.yaml:5:19: error: layers[1].linear.out: undefined variable $clases — define it under `vars:` "
    "or pass --set clases=VALUE",
]


@pytest.fixture
def specs(tmp_path, monkeypatch):
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "bad.yaml").write_text(BAD)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args, stdin=None):
    return CliRunner(env={"ARCHC_DEBUG": "1"}).invoke(main, [str(a) for a in args], input=stdin)


def schema_errors(schema, doc) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in Draft202012Validator(schema).iter_errors(doc)]


# -- several specs: every one checked, a summary, the worst status --------------------------

def test_several_files_one_line_each_then_a_summary(specs):
    result = run("validate", "good.yaml", "bad.yaml", "missing.yaml")
    assert result.exit_code == 2  # the worst: a path that is not there
    assert result.stdout == f"good.yaml: valid (good: {GOOD_PARAMS} params)\n"
    assert result.stderr.splitlines() == BAD_ERRORS + [
        "bad.yaml: 2 errors", "archc: error: no such file: missing.yaml",
        "3 specs: 1 valid, 1 with errors, 1 not found"]


@pytest.mark.parametrize("args, status, summary", [
    (["good.yaml", "good.yaml"], 0, "2 specs: 2 valid, 0 with errors"),
    (["bad.yaml", "good.yaml"], 1, "2 specs: 1 valid, 1 with errors"),
    (["good.yaml", "nope.yaml"], 2, "2 specs: 1 valid, 0 with errors, 1 not found"),
])
def test_the_exit_status_is_the_worst(specs, args, status, summary):
    result = run("validate", *args)
    assert result.exit_code == status, result.output
    assert result.stderr.splitlines()[-1] == summary


def test_a_folder_is_every_spec_below_it(specs):
    """Recursive, sorted, *.yaml and *.yml only, hidden folders skipped."""
    (specs / "nested" / "deeper").mkdir(parents=True)
    (specs / "nested" / "deeper" / "z.yml").write_text(GOOD)
    (specs / ".hidden").mkdir()
    (specs / ".hidden" / "skipped.yaml").write_text(BAD)
    (specs / "notes.txt").write_text("not a spec")
    result = run("validate", ".")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [f"good.yaml: valid (good: {GOOD_PARAMS} params)",
                                          f"nested/deeper/z.yml: valid (z: {GOOD_PARAMS} params)"]
    assert result.stderr.splitlines() == BAD_ERRORS + ["bad.yaml: 2 errors", "3 specs: 2 valid, 1 with errors"]


def test_a_folder_without_specs_is_a_usage_error(tmp_path):
    result = run("validate", tmp_path)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"archc: error: no spec (*.yaml, *.yml) in {tmp_path}",
                                          "1 spec: 0 valid, 0 with errors, 1 not found"]


def test_spec_network_and_zoo_names_among_several():
    result = run("validate", "dcgan:generator", ROOT / "specs" / "lenet5.yaml")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"{ROOT / 'specs' / 'dcgan.yaml'}: valid (generator: 3,576,704 params)",
                                          f"{ROOT / 'specs' / 'lenet5.yaml'}: valid (lenet5: 61,706 params)"]


def test_a_format_asked_for_prints_every_report(specs):
    one = run("validate", "good.yaml", "--format", "markdown").stdout
    both = run("validate", "good.yaml", "good.yaml", "--format", "markdown")
    assert both.exit_code == 0 and both.stdout == one + one


def test_set_applies_to_every_spec(specs):
    result = run("validate", "good.yaml", "good.yaml", "--set", "input=[3, 10, 10]")
    params = GOOD_PARAMS + 4 * (64 - 36) * 2  # the linear layer now reads 4x8x8
    assert result.stdout == f"good.yaml: valid (good: {params:,} params)\n" * 2


# -- standard input -------------------------------------------------------------------------

def test_stdin_reads_like_a_file(specs):
    from_file = run("validate", "good.yaml")
    from_stdin = run("validate", "-", stdin=GOOD)
    assert from_stdin.exit_code == 0
    # a spec without `name:` is named after its file: `<stdin>` here
    assert from_stdin.stdout == from_file.stdout.replace("good  (", "<stdin>  (", 1)


def test_stdin_errors_are_located_in_stdin(specs):
    result = run("validate", "-", stdin=BAD)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [e.replace("bad.yaml", "<stdin>") for e in BAD_ERRORS] + ["2 errors"]


def test_stdin_beside_files(specs):
    result = run("validate", "good.yaml", "-", stdin=BAD)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-2:] == ["<stdin>: 2 errors", "2 specs: 1 valid, 1 with errors"]


def test_stdin_name_is_the_file_the_buffer_stands_for(specs):
    """An editor pipes an unsaved buffer: errors name its file, imports are found beside it."""
    (specs / "lib").mkdir()
    (specs / "lib" / "blocks.yaml").write_text("archc: 1\nblocks:\n  head:\n    layers:\n      - linear: {out: 2}\n")
    buffer = "archc: 1\nimports: [blocks.yaml]\ninput: [4]\nlayers:\n  - head\n  - relu: {bogus: 1}\n"
    result = run("validate", "-", "--stdin-name", "lib/net.yaml", stdin=buffer)
    assert result.exit_code == 1
    assert result.stderr.startswith("lib/net.yaml:6:"), result.stderr  # only the relu error, the import works
    assert run("validate", "-", stdin=buffer).stderr.startswith("<stdin>:2:"), "blocks.yaml is not in ."


# -- errors as JSON -------------------------------------------------------------------------

LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<column>\d+): error: (?P<path>[^:]+): "
                  r"(?P<message>.*?) — (?P<fix>.*)$")


def test_json_errors_say_what_the_text_says(specs):
    """Each error of the JSON document equals its rendered line, parsed back."""
    text = run("validate", "bad.yaml")
    result = run("validate", "bad.yaml", "--format", "json")
    assert result.exit_code == 1
    assert result.stderr == text.stderr  # stderr does not depend on --format
    doc = json.loads(result.stdout)
    assert schema_errors(ERRORS_SCHEMA, doc) == []
    expected = []
    for line in BAD_ERRORS:
        m = LINE.match(line).groupdict()
        expected.append({**m, "line": int(m["line"]), "column": int(m["column"]),
                         "severity": "error", "notes": []})
    assert doc == {"format": "archc.errors/1", "file": "bad.yaml", "errors": expected}


def test_json_error_without_position_or_fix_is_null(specs):
    result = run("validate", "good.yaml:nothing", "--format", "json")
    assert result.exit_code == 1
    (error,) = json.loads(result.stdout)["errors"]
    assert error == {"file": "good.yaml", "line": None, "column": None, "path": None,
                     "message": "no network 'nothing' in this file", "fix": error["fix"],
                     "severity": "error", "notes": []}


def test_json_of_a_missing_file(specs):
    result = run("validate", "missing.yaml", "--format", "json")
    assert result.exit_code == 2
    assert result.stderr == "archc: error: no such file: missing.yaml\n"
    assert json.loads(result.stdout)["errors"] == [
        {"file": "missing.yaml", "line": None, "column": None, "path": None,
         "message": "no such file: missing.yaml", "fix": None, "severity": "error", "notes": []}]


def test_json_of_several_specs(specs):
    result = run("validate", "good.yaml", "bad.yaml", "missing.yaml", "--format", "json")
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert schema_errors(ERRORS_SCHEMA, doc) == []
    assert doc["summary"] == {"specs": 3, "valid": 1, "with_errors": 1, "not_found": 1,
                              "text": "3 specs: 1 valid, 1 with errors, 1 not found"}
    good, bad, missing = doc["specs"]
    assert (good["status"], bad["status"], missing["status"]) == ("valid", "invalid", "not_found")
    assert good["report"] == json.loads(run("validate", "good.yaml", "--format", "json").stdout)
    assert schema_errors(REPORT_SCHEMA, good["report"]) == [] and good["errors"] == []
    assert bad["report"] is None and len(bad["errors"]) == 2
    assert missing["errors"][0]["message"] == "no such file: missing.yaml"


@pytest.mark.parametrize("breakage", [
    lambda d: d.update(format="archc.report/1"),
    lambda d: d["errors"][0].update(line=0),
    lambda d: d["errors"][0].update(severity="fatal"),
    lambda d: d["errors"][0].pop("fix"),
    lambda d: d.update(extra=1),
])
def test_the_errors_schema_rejects_broken_documents(specs, breakage):
    doc = json.loads(run("validate", "bad.yaml", "--format", "json").stdout)
    breakage(doc)
    assert schema_errors(ERRORS_SCHEMA, doc)


def test_every_errors_field_is_documented():
    """docs/json.md names every property of the errors schema (as `name` in a table row)."""
    documented = set(re.findall(r"^\| `([a-z_]+)`", (ROOT / "docs" / "json.md").read_text(), re.M))
    defs = ERRORS_SCHEMA["$defs"]
    fields = set()
    for name in ("errors_document", "error", "results_document"):
        fields |= set(defs[name]["properties"])
    fields |= set(defs["results_document"]["properties"]["summary"]["properties"])
    fields |= set(defs["results_document"]["properties"]["specs"]["items"]["properties"])
    assert fields - documented == set()


# -- a path that is not there: one line, exit 2, in every command ---------------------------

@pytest.mark.parametrize("args, line", [
    (["validate", "missing.yaml"], "no such file: missing.yaml"),
    (["expand", "missing.yaml"], "no such file: missing.yaml"),
    (["graph", "missing.yaml", "-o", "g.svg"], "no such file: missing.yaml"),
    (["compile", "missing.yaml", "--print"], "no such file: missing.yaml"),
    (["export", "missing.yaml", "-o", "m.onnx"], "no such file: missing.yaml"),
    (["train", "missing.yaml"], "no such file: missing.yaml"),
    (["evaluate", "missing.yaml", "--weights", "good.yaml"], "no such file: missing.yaml"),
    (["generate", "missing.yaml", "--weights", "good.yaml", "--prompt", "a"], "no such file: missing.yaml"),
    (["infer", "missing.yaml", "--input", "good.yaml"], "no such file: missing.yaml"),
    (["infer", "missing.onnx", "--input", "good.yaml"], "no such file: missing.onnx"),
    (["validate", "lenet"], "no such file: lenet (nor a zoo spec; did you mean lenet5?)"),
    (["evaluate", "good.yaml", "--weights", "w.pt"], "--weights: no such file: w.pt"),
    (["generate", "good.yaml", "--weights", "w.pt", "--prompt", "a"], "--weights: no such file: w.pt"),
    (["export", "good.yaml", "-o", "m.onnx", "--weights", "w.pt"], "--weights: no such file: w.pt"),
    (["infer", "good.yaml", "--input", "x.npy"], "--input: no such file: x.npy"),
    (["train", "good.yaml", "--init-from", "w.pt"], "--init-from: no such file: w.pt"),
    (["train", "--resume", "runs/none"], "--resume: no such folder: runs/none"),
])
def test_a_missing_path_is_one_line_and_exit_2(specs, args, line):
    result = run(*args)
    assert (result.exit_code, result.output) == (2, f"archc: error: {line}\n")
    assert not (specs / "runs").exists() and not (specs / "m.onnx").exists()


# -- torch stays out ------------------------------------------------------------------------

def test_validating_several_specs_never_imports_torch(specs):
    code = ("import sys; from click.testing import CliRunner; from archc.cli import main; "
            "r = CliRunner().invoke(main, ['validate', '.', '-', '--target', 'torch'], input=open('good.yaml').read()); "
            "assert r.exit_code == 1, r.output; assert 'torch' not in sys.modules; print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=specs, capture_output=True, text=True, timeout=120)
    assert proc.stdout == "ok\n", proc.stderr
