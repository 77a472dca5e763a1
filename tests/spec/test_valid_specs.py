"""Data-driven good input: every tests/specs/valid/*.yaml loads, and its networks have the
parameter counts and output shapes written in its header, worked out by hand there
(format in tests/specs/README.md). Each spec exercises a feature of the grammar."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import archc
from archc.cli import main

CASES = Path(__file__).resolve().parents[1] / "specs" / "valid"


def read_header(path: Path) -> dict:
    """``# load: {json}``, ``# expect NET: params=N outputs=[...]``, ``# nodes NET: a, b``
    and ``# absent NET: c`` lines of a case (NET is ``-`` for a file's single network)."""
    out = {"load": {}, "expect": {}, "nodes": {}, "absent": {}}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("# "):
            continue
        word, _, rest = line[2:].partition(" ")
        if word == "load:":
            out["load"] = json.loads(rest)
        elif word in ("expect", "nodes", "absent") and ":" in rest:
            net, _, value = rest.partition(":")
            if word == "expect":
                params, _, outputs = value.strip().partition(" outputs=")
                out[word][net] = (int(params.removeprefix("params=")), json.loads(outputs))
            else:
                out[word][net] = [v.strip() for v in value.split(",")]
    return out


@pytest.mark.parametrize("path", sorted(CASES.glob("*.yaml")), ids=lambda p: p.stem)
def test_valid_spec(path: Path):
    header = read_header(path)
    assert header["expect"], f"{path.name} records no `# expect` line"
    graphs = archc.load_all(str(path), **header["load"])
    by_name = {g.name: g for g in graphs}
    if list(header["expect"]) == ["-"]:
        assert len(graphs) == 1
        by_name = {"-": graphs[0]}
    assert set(by_name) == set(header["expect"])
    for net, (params, outputs) in header["expect"].items():
        g = by_name[net]
        assert g.summary.total_params == params, net
        assert [list(s) for s in g.summary.output_shapes] == outputs, net
        names = {n.name for n in g.nodes}
        assert set(header["nodes"].get(net, [])) <= names, sorted(names)
        assert not set(header["absent"].get(net, [])) & names


@pytest.mark.parametrize("path", sorted(CASES.glob("*.yaml")), ids=lambda p: p.stem)
def test_valid_spec_cli(path: Path):
    """`archc validate` exits 0 on each (with the header's preset and --set)."""
    load = read_header(path)["load"]
    args = ["validate", str(path), "--format", "json"]
    if "preset" in load:
        args += ["--preset", load["preset"]]
    for key, value in load.get("overrides", {}).items():
        args += ["--set", f"{key}={json.dumps(value)}"]
    result = CliRunner(env={"ARCHC_DEBUG": "1"}).invoke(main, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)


def test_block_library_validates():
    """A file with blocks only is valid and has no network."""
    assert archc.load_all(str(CASES / "lib" / "blocks.yaml")) == []
