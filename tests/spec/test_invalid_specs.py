"""Data-driven bad input: every tests/specs/invalid/*.yaml fails with exactly the error
lines recorded in its header (the JSON-Schema-Test-Suite's way; format in
tests/specs/README.md).

Each case runs through the real command line (click's CliRunner) from a copy of the
folder, so the test pins what a user sees: the exit status 1, every rendered error and
note line (file, line, column, node path, message, fix), the count line, no traceback,
and that nothing was written (a `!!python/...` tag must never run).

To record a new case: write the spec and its comment, then
``python tests/spec/test_invalid_specs.py NAME`` prints the header lines of the current
output — read them before pasting; they are the expected behaviour from then on.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from archc.cli import main

CASES = Path(__file__).resolve().parents[1] / "specs" / "invalid"
PLACEHOLDER = "FILE"  # stands for the case's own file name in expected lines


def read_case(path: Path) -> tuple[list[str], list[str]]:
    """(command-line arguments, expected lines) of a case: from its ``# cli:`` and
    ``# expect:`` header comments, or from the sidecar NAME.yaml.expect (for files that
    cannot hold a comment: the empty file)."""
    sidecar = path.with_name(path.name + ".expect")
    if sidecar.exists():
        header = sidecar.read_text(encoding="utf-8").splitlines()
    else:
        header = [line[2:] for line in path.read_text(encoding="utf-8").splitlines()
                  if line.startswith("# ")]
    cli = next((line[len("cli: "):] for line in header if line.startswith("cli: ")),
               "validate {file}")
    expected = [line[len("expect: "):] for line in header if line.startswith("expect: ")]
    return shlex.split(cli.replace("{file}", path.name)), expected


def run_case(path: Path, cwd: Path):
    """Run one case from ``cwd`` (a copy of the cases folder): (result, rendered lines
    with the case's file name replaced by FILE)."""
    args, _ = read_case(path)
    old = os.getcwd()
    os.chdir(cwd)
    try:
        # ARCHC_DEBUG: an internal error must fail the test with its traceback, not be
        # turned into the CLI's one-line "internal error" message.
        result = CliRunner(env={"ARCHC_DEBUG": "1"}).invoke(main, args)
    finally:
        os.chdir(old)
    lines = [PLACEHOLDER + line[len(path.name):] if line.startswith(path.name + ":") else line
             for line in result.stderr.splitlines()]
    return result, lines


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("path", sorted(CASES.glob("*.yaml")), ids=lambda p: p.stem)
def test_invalid_spec(path: Path, tmp_path: Path):
    work = tmp_path / "invalid"
    shutil.copytree(CASES, work)
    before = _files(work)
    _, expected = read_case(path)
    assert expected, f"{path.name} records no `# expect:` lines"

    result, lines = run_case(path, work)

    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert "Traceback" not in result.output
    assert result.exit_code == 1, result.output
    n = sum(1 for line in expected if ": error: " in line or line.startswith("error: "))
    assert lines[-1] == f"{n} error{'s' if n != 1 else ''}"
    assert lines[:-1] == expected
    assert _files(work) == before, "the spec made archc write a file"


def test_every_case_has_a_description():
    """The first line of each case says what it tests."""
    for path in CASES.glob("*.yaml"):
        if path.with_name(path.name + ".expect").exists():
            continue
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# ") and not first.startswith(("# expect:", "# cli:")), path.name


def _print_header(name: str) -> None:
    """Print the header lines of a case's current output, for review and pasting."""
    import tempfile

    path = CASES / (name if name.endswith(".yaml") else name + ".yaml")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "invalid"
        shutil.copytree(CASES, work)
        result, lines = run_case(path, work)
    print(f"# {path.name}: exit {result.exit_code}")
    for line in lines[:-1]:
        print(f"# expect: {line}")
    print(f"# ({lines[-1] if lines else 'no output'})")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        _print_header(arg)
