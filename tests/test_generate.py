"""`archc generate`: sampling from a language model's weights (a file or a run directory),
the prompt's handling, and the one-line errors for networks that are not language models."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from archc.cli import main

torch = pytest.importorskip("torch")

import archc  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# a small byte-level GPT (gpt_tiny's layout, fewer and narrower layers, 16 bytes of context)
SMALL = ["--set", "input=[16]", "--set", "layers=1", "--set", "width=32", "--set", "heads=2",
         "--set", "context=16"]
OVERRIDES = {"input": [16], "layers": 1, "width": 32, "heads": 2, "context": 16}
SPEC = str(ROOT / "specs" / "gpt_tiny.yaml")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / "model.pt"
    torch.save(archc.build(SPEC, overrides=OVERRIDES, seed=0).state_dict(), path)
    return str(path)


def generate(*args):
    return CliRunner().invoke(main, ["generate", SPEC, *SMALL, *args])


def test_generate_continues_the_prompt(weights):
    result = generate("--weights", weights, "--prompt", "def f", "--tokens", "12", "--seed", "3")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("def f")
    again = generate("--weights", weights, "--prompt", "def f", "--tokens", "12", "--seed", "3")
    assert again.stdout == result.stdout  # the seed fixes the draws


def test_greedy_decoding_follows_the_argmax(weights):
    from archc.generate import next_token

    logits = torch.tensor([0.1, 3.0, 0.2])
    assert next_token(logits, 0.0, None, torch.Generator()) == 1
    assert next_token(logits, 1.0, 1, torch.Generator()) == 1  # top-1 leaves one choice
    result = generate("--weights", weights, "--prompt", "x", "--tokens", "4", "--temperature", "0")
    assert result.exit_code == 0, result.output


def test_a_run_directory_gives_its_best_checkpoint(weights, tmp_path):
    from archc.train import checkpoint as ckpt

    ckpt.save(tmp_path / "best.pt", {"model": torch.load(weights, weights_only=True), "epoch": 1})
    result = generate("--weights", str(tmp_path), "--prompt", "import", "--tokens", "3")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("import")


def test_a_prompt_longer_than_the_context_is_cut_with_a_note(weights):
    result = generate("--weights", weights, "--prompt", "x" * 40, "--tokens", "2")
    assert result.exit_code == 0, result.output
    assert "archc: note: the prompt has 40 tokens, the context 16: the model reads its last 16" in result.stderr
    assert result.stdout.startswith("x" * 40)


def test_a_network_that_is_not_a_language_model_is_refused(weights):
    result = CliRunner().invoke(main, ["generate", str(ROOT / "specs" / "lstm_digits.yaml"), "--weights",
                                       weights, "--prompt", "a"])
    assert result.exit_code == 1
    assert result.stderr == ("archc: error: lstm_digits is not a language model: its input is [8, 8] of "
                             "float32, not token ids — generate from a spec with input "
                             "{shape: [L], dtype: int64, vocab: V}\n")


def test_weights_of_another_network_are_refused(tmp_path):
    other = tmp_path / "other.pt"
    torch.save(archc.build(SPEC, overrides=dict(OVERRIDES, width=16), seed=0).state_dict(), other)
    result = generate("--weights", str(other), "--prompt", "a")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"archc: error: --weights {other} does not fit this network: ")
    assert "shape conflicts (network vs weights: " in result.stderr  # width 16 against the spec's
    assert "\n" not in result.stderr.rstrip("\n")


def test_a_missing_weights_file_is_one_line(tmp_path):
    result = generate("--weights", str(tmp_path / "none.pt"), "--prompt", "a")
    assert result.exit_code == 2  # a missing file is a usage error, in every command
    assert result.stderr == f"archc: error: --weights: no such file: {tmp_path / 'none.pt'}\n"
