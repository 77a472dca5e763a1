"""Transfer learning: --init-from loads matching tensors (a replaced head starts fresh),
--freeze keeps the named layers' weights unchanged while the rest trains."""

import pytest

torch = pytest.importorskip("torch")

from test_bad_input import TINY, run, tiny  # noqa: E402,F401  (the fixture)

from archc.train import checkpoint as ckpt  # noqa: E402


def test_init_from_with_a_new_head_and_frozen_body(tiny, tmp_path):  # noqa: F811
    assert run("train", tiny, "--out", tmp_path / "base", "--quiet").exit_code == 0
    base = ckpt.load(tmp_path / "base" / "best.pt")["model"]
    r = run("train", tiny, "--set", "classes=4", "--init-from", tmp_path / "base" / "best.pt",
            "--freeze", "conv2d_*", "--out", tmp_path / "ft")
    assert r.exit_code == 0, r.output
    assert "init-from" in r.output and "2 tensors loaded, 2 of another shape left fresh (head.bias, head.weight)" \
        in r.output
    assert "frozen: 2 tensors (40 parameters)" in r.output
    tuned = ckpt.load(tmp_path / "ft" / "last.pt")["model"]
    assert torch.equal(tuned["conv2d_1.weight"], base["conv2d_1.weight"])  # frozen: unchanged
    assert tuned["head.weight"].shape == (4, 256)


def test_freeze_pattern_that_matches_nothing(tiny, tmp_path):  # noqa: F811
    r = run("train", tiny, "--freeze", "conv", "--out", tmp_path / "run")
    assert r.exit_code == 1 and "--freeze 'conv' matches no layer" in r.output


def test_init_from_a_file_that_fits_nothing_is_explained(tiny, tmp_path):  # noqa: F811
    torch.save({"features.0.weight": torch.zeros(3)}, tmp_path / "foreign.pt")
    r = run("train", tiny, "--init-from", tmp_path / "foreign.pt", "--out", tmp_path / "run")
    assert r.exit_code == 1 and "foreign.pt" in r.output


def test_init_from_a_foreign_state_dict_through_the_weight_mapping(tiny, tmp_path):  # noqa: F811
    pytest.importorskip("archc.backends.torch.weights")
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                 torch.nn.Linear(256, 3))
    torch.save(theirs.state_dict(), tmp_path / "theirs.pt")
    r = run("train", tiny, "--init-from", tmp_path / "theirs.pt", "--freeze", "conv2d_1", "--out", tmp_path / "run")
    assert r.exit_code == 0, r.output
    assert "4 tensors loaded by the weight mapping" in r.output
    ours = ckpt.load(tmp_path / "run" / "last.pt")["model"]
    assert torch.equal(ours["conv2d_1.weight"], theirs[0].weight.detach())  # loaded, then frozen
