"""The documentation is checked against the code.

* docs/ops.md is generated from the op registry (`python -m archc.docs`) and in sync;
* every ```yaml block of docs/spec.md whose first line is `# example: FILE` is a complete
  spec: all are written to one folder (so imports resolve), each is validated through the
  CLI, and its `# expect:` lines are compared with the JSON report;
* the keys of the shipped spec schema (top level, common layer keys, train section) and
  every op that owns parameters or counts MACs are documented in docs/spec.md.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from archc import docs
from archc.cli import main
from archc.ops.registry import Op, all_ops
from archc.spec.schema import COMMON_KEYS, build_schema

ROOT = Path(__file__).resolve().parents[1]
SPEC_MD = (ROOT / "docs" / "spec.md").read_text()
BLOCK = re.compile(r"```yaml\n(# example: (\S+)\n.*?)```", re.S)
EXPECT = re.compile(r"^# expect(?: \((.*?)\))?: (.*)$", re.M)
PAIR = re.compile(r"(\w+)=(\[[^\]]*\]|\S+)")
EXAMPLES = {name: text for text, name in BLOCK.findall(SPEC_MD)}


def test_ops_md_is_generated_from_the_registry():
    assert (ROOT / "docs" / "ops.md").read_text() == docs.render(), \
        "docs/ops.md is out of date: run `python -m archc.docs`"


def test_ops_md_lists_every_op_and_attribute():
    text = docs.render()
    for name, op in all_ops().items():
        assert f"## {name}\n" in text
        for attr in op.attrs:
            assert f"| `{attr}` |" in text.split(f"## {name}\n", 1)[1].split("\n## ", 1)[0]


def test_the_spec_reference_has_examples():
    assert len(EXAMPLES) >= 10 and "lib.yaml" in EXAMPLES and "user.yaml" in EXAMPLES


@pytest.fixture(scope="module")
def example_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spec_examples")
    for name, text in EXAMPLES.items():
        (folder / name).write_text(text)
    return folder


def _value(text: str):
    return json.loads(text)


def _checks(name: str) -> list[tuple[str, str]]:
    """(extra arguments, expectations) of one example; no `# expect:` = must validate."""
    found = EXPECT.findall(EXAMPLES[name])
    return found or [("", "")]


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_spec_md_example(name, example_dir):
    for args, expect in _checks(name):
        args = shlex.split(args)
        target = str(example_dir / name) + (args.pop(0) if args and args[0].startswith(":") else "")
        result = CliRunner().invoke(main, ["validate", target, *args, "--format", "json"])
        if expect.startswith("error"):
            assert result.exit_code == 1, result.output
            assert shlex.split(expect)[1] in result.output
            continue
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        for key, want in PAIR.findall(expect):
            assert report[key] == _value(want), f"{name} {args}: {key}"


def _documented_keys(text: str) -> set[str]:
    return set(re.findall(r"`([a-z_]+)`", text))


def test_schema_keys_are_documented():
    schema = build_schema()
    mentioned = _documented_keys(SPEC_MD)
    for key in list(schema["properties"]) + list(COMMON_KEYS) + list(schema["$defs"]["train"]["properties"]):
        assert key in mentioned, f"`{key}` is not documented in docs/spec.md"


def test_counting_conventions_name_every_counting_op():
    section = SPEC_MD.split("## What is counted", 1)[1].split("\n## ", 1)[0]
    for name, op in all_ops().items():
        counts = type(op).params is not Op.params or type(op).macs is not Op.macs
        if counts:
            assert f"`{name}`" in section, f"What is counted does not explain `{name}`"


FENCE = re.compile(r"```(\w*)\n(.*?)```", re.S)


def _documented_commands():
    """(file, command line) of every `archc ...` the docs and README show: inline code spans
    and the lines of code blocks that are not YAML."""
    for path in sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]:
        text = path.read_text()
        for lang, body in FENCE.findall(text):
            if lang not in ("yaml", "json", "python"):
                for line in body.splitlines():
                    line = line.strip().removeprefix("$ ").split(" #")[0].strip()
                    if line.startswith("archc "):
                        yield path.name, line
        for span in re.findall(r"`(archc [^`]+)`", FENCE.sub("", text).replace("\n", " ")):
            yield path.name, span


def test_documented_commands_use_real_options():
    # docs/train.md once told users to run `archc compile ... --weights`, an option compile lacks
    wrong = []
    for name, line in _documented_commands():
        words = line.split()
        command = main.commands.get(words[1])
        if command is None:
            wrong.append(f"{name}: `{line}`: no command {words[1]!r}")
            continue
        options = {o for p in command.params for o in p.opts + p.secondary_opts} | {"-h", "--help"}
        for word in words[2:]:
            option = word.split("=")[0].rstrip(",.;)")
            if option.startswith("-") and not re.fullmatch(r"-[0-9.]+", option) and option not in options:
                wrong.append(f"{name}: `{line}`: `archc {words[1]}` has no option {option}")
    assert not wrong, "\n".join(wrong)
