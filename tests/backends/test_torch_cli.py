"""`archc compile`: source, weights, printing, seeds, and its errors and exit codes."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from click.testing import CliRunner

import archc
from archc.cli import main

LENET = "lenet5"


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_compile_to_source(tmp_path):
    out = tmp_path / "model.py"
    r = invoke("compile", LENET, "-o", str(out))
    assert r.exit_code == 0, r.output
    assert r.output == f"wrote {out}\n"
    assert out.read_text() == archc.generate_source(LENET)


def test_print_shows_the_source():
    r = invoke("compile", LENET, "--print")
    assert r.exit_code == 0
    assert r.output == archc.generate_source(LENET)


def test_compile_to_weights_is_seeded(tmp_path):
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    for path in (a, b):
        assert invoke("compile", LENET, "-o", str(path), "--seed", "3").exit_code == 0
    sa, sb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    model = archc.build(LENET, seed=3)
    assert list(sa) == list(model.state_dict())
    assert all(torch.equal(sa[k], sb[k]) and torch.equal(sa[k], v) for k, v in model.state_dict().items())


def test_init_and_set_options(tmp_path):
    path = tmp_path / "w.pt"
    r = invoke("compile", LENET, "-o", str(path), "--init", "zeros", "--set", "classes=3")
    assert r.exit_code == 0, r.output
    state = torch.load(path, weights_only=True)
    weights = [v for k, v in state.items() if k.endswith("weight")]
    assert weights[-1].shape[0] == 3 and all(not w.any() for w in weights)


def test_safetensors(tmp_path):
    path = tmp_path / "w.safetensors"
    r = invoke("compile", LENET, "-o", str(path))
    if importlib.util.find_spec("safetensors") is None:
        assert r.exit_code == 1
        assert "needs the safetensors package" in r.output
    else:
        from safetensors.torch import load_file

        assert r.exit_code == 0 and set(load_file(path)) == set(archc.build(LENET).state_dict())


@pytest.mark.parametrize("args, code, text", [
    (["compile", LENET], 2, "give -o FILE"),
    (["compile", LENET, "-o", "model.txt"], 2, "the suffix picks what is written"),
    (["compile", "dcgan", "--print"], 1, "defines 2 networks"),
    (["compile", LENET, "--print", "--init", "he_normall"], 1, "unknown initialisation 'he_normall'"),
    (["compile", "no/such.yaml", "--print"], 2, "no such file"),
])
def test_errors(args, code, text):
    r = invoke(*args)
    assert r.exit_code == code, r.output
    assert text in r.output
