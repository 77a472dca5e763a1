"""The worked examples of docs/diff.md and docs/import.md are run, and their output is
compared with what the docs show.

In those files a fenced ```console block is a session: each ``$ archc ...`` line is run
(through click's CliRunner, in one scratch folder per file where ``specs/`` is the
repository's zoo), must exit 0, and must print on stdout exactly the lines that follow it,
up to the next ``$`` line; a line ``...`` stands for any number of lines (a long listing,
or figures that vary from run to run such as floating-point differences)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from archc.cli import main

ROOT = Path(__file__).resolve().parents[1]
RUN = ["diff.md", "import.md"]
CONSOLE = re.compile(r"```console\n(.*?)```", re.S)


def sessions(name: str) -> list[tuple[str, list[str]]]:
    """(command, expected stdout lines) of every ``$`` line of ``docs/NAME``'s console blocks."""
    out = []
    for block in CONSOLE.findall((ROOT / "docs" / name).read_text()):
        for line in block.splitlines():
            if line.startswith("$ "):
                out.append((line[2:], []))
            else:
                assert out, f"docs/{name}: a console block starts with output, not a `$` line"
                out[-1][1].append(line)
    return out


def matches(expected: list[str], text: str) -> bool:
    """``text`` is ``expected``'s lines, each ``...`` standing for any run of lines."""
    pattern = "".join(r"(?:.*\n)*?" if line == "..." else re.escape(line) + r"\n" for line in expected)
    return re.fullmatch(pattern, text if text.endswith("\n") or not text else text + "\n") is not None


def test_the_matcher_can_fail():
    assert matches(["a", "...", "d"], "a\nb\nc\nd\n") and matches(["a", "...", "b"], "a\nb\n")
    assert not matches(["a", "b"], "a\nb\nc\n") and not matches(["a", "...", "d"], "a\nb\n")


@pytest.mark.parametrize("name", RUN)
def test_documented_session_prints_what_the_docs_show(name, tmp_path, monkeypatch):
    commands = sessions(name)
    assert commands, f"docs/{name} has no console example"
    (tmp_path / "specs").symlink_to(ROOT / "specs")
    monkeypatch.chdir(tmp_path)
    for command, expected in commands:
        words = shlex.split(command)
        assert words[0] == "archc", command
        result = CliRunner().invoke(main, words[1:])
        assert result.exit_code == 0, f"{command}\n{result.output}"
        assert matches(expected, result.stdout), f"$ {command}\n--- documented\n" + "\n".join(expected) + \
            f"\n--- printed\n{result.stdout}"
