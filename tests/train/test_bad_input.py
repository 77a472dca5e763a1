"""Bad input gives one clear error, exit status 1, no traceback, and loses nothing:
missing data, wrong sizes, labels out of range, a NaN loss, an unwritable run directory,
a full disk; bad configuration keys are named with a suggestion."""

import errno
import os

import numpy as np
import pytest
from click.testing import CliRunner

torch = pytest.importorskip("torch")

from archc.cli import main  # noqa: E402
from archc.train import checkpoint as ckpt  # noqa: E402
from archc.train import tasks  # noqa: E402
from archc.train.config import make_config  # noqa: E402
from archc.train.errors import TrainError  # noqa: E402

TINY = """archc: 1
name: tiny
input: [1, 8, 8]
vars: {classes: 3}
layers:
  - conv2d: {out: 4, kernel: 3, padding: 1}
  - relu
  - flatten
  - linear: {out: $classes, id: head}
train:
  data: {source: DATA, val_split: 0.2, test_split: 0.2}
  optimizer: {name: sgd, lr: 0.1, momentum: 0.9}
  batch_size: 8
  epochs: 3
"""


@pytest.fixture
def tiny(tmp_path):
    """A spec over a small .npz data set of 3 classes."""
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    x = rng.normal(size=(60, 1, 8, 8)).astype(np.float32) + y[:, None, None, None]
    np.savez(tmp_path / "d.npz", x=x, y=y)
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY.replace("DATA", str(tmp_path / "d.npz")))
    return spec


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def test_tiny_run_works(tiny, tmp_path):
    r = run("train", tiny, "--out", tmp_path / "run", "--quiet", "--json")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "run" / "last.pt").exists()


def test_missing_data_path(tiny, tmp_path):
    r = run("train", tiny, "--data", tmp_path / "nope.npz", "--out", tmp_path / "run")
    assert r.exit_code == 1
    assert f"archc: error: data source '{tmp_path / 'nope.npz'}': no such file or folder" in r.output


def test_wrong_image_size(tiny, tmp_path):
    r = run("train", tiny, "--set", "input=[1,16,16]", "--out", tmp_path / "run")
    assert r.exit_code == 1
    assert ("examples have shape [1, 8, 8] but the spec's input is [1, 16, 16] — set train.data.resize: true, "
            "or --set input=[1, 8, 8]") in r.output


def test_labels_out_of_range(tiny, tmp_path):
    r = run("train", tiny, "--set", "classes=2", "--out", tmp_path / "run")
    assert r.exit_code == 1
    assert "labels go from 0 to 2 but the network has 2 outputs — set the output size to 3" in r.output
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_unknown_key_and_wrong_type(tiny, tmp_path):
    r = run("train", tiny, "--set", "train.optimizer.momentun=0.5", "--out", tmp_path / "run")
    assert r.exit_code == 1 and "train.optimizer: unknown key 'momentun' — did you mean `momentum`?" in r.output
    r = run("train", tiny, "--set", "train.epochs=many", "--out", tmp_path / "run")
    assert r.exit_code == 1 and "train.epochs: expected an integer, got 'many'" in r.output


def test_flags_override_the_spec_and_set():
    cfg = make_config({"epochs": 3, "optimizer": "adam", "data": "digits", "lr": 0.5}, {"epochs": 7, "lr": 0.01,
                                                                                         "data": "x.npz"})
    assert (cfg.epochs, cfg.optimizer.name, cfg.optimizer.lr, cfg.data.source) == (7, "adam", 0.01, "x.npz")
    with pytest.raises(TrainError, match="train.data.val_split must be in"):
        make_config({"data": {"val_split": 1.5}})


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = tasks.LOSSES["cross_entropy"]

    def poisoned(cfg):
        fn = real(cfg)

        def loss(out, y):
            calls["n"] += 1
            value = fn(out, y)
            return value * float("nan") if calls["n"] > 8 else value  # 6 train batches + val in epoch 1

        return loss

    monkeypatch.setitem(tasks.LOSSES, "cross_entropy", poisoned)
    r = run("train", tiny, "--out", tmp_path / "run")
    assert r.exit_code == 1
    assert "the loss became nan in epoch 2" in r.output
    assert "the last good checkpoint is" in r.output and "lower the learning rate" in r.output
    state = ckpt.load(tmp_path / "run" / "last.pt")
    assert state["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in state["model"].values())


def test_unwritable_run_directory(tiny, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = run("train", tiny, "--out", blocker / "run")
    assert r.exit_code == 1 and "cannot create the run directory" in r.output
    if os.geteuid() != 0:  # root writes anywhere: the read-only case needs a normal user
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        r = run("train", tiny, "--out", ro / "run")
        assert r.exit_code == 1 and "cannot create the run directory" in r.output


def test_disk_full_keeps_the_previous_checkpoint(tiny, tmp_path, monkeypatch):
    real_fsync, writes = os.fsync, {"n": 0}

    def fsync(fd):
        name = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists(f"/proc/self/fd/{fd}") else ""
        if ".last.pt." in name:
            writes["n"] += 1
            if writes["n"] == 2:  # the checkpoint of epoch 2
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(ckpt.os, "fsync", fsync)
    out = tmp_path / "run"
    r = run("train", tiny, "--out", out)
    assert r.exit_code == 1
    assert f"cannot write {out / 'last.pt'}: no space left on the device — free some space" in r.output
    assert ckpt.load(out / "last.pt")["epoch"] == 1
    assert not list(out.glob(".*.tmp"))


def test_write_atomic_never_leaves_half_a_file(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    ckpt.write_atomic(target, b"old")

    def fail(*a):
        raise OSError(errno.ENOSPC, "full")

    monkeypatch.setattr(ckpt.os, "replace", fail)
    with pytest.raises(TrainError, match="no space left"):
        ckpt.write_atomic(target, b"new" * 1000)
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["f.bin"]


def test_evaluate_rejects_weights_of_another_network(tiny, tmp_path):
    assert run("train", tiny, "--out", tmp_path / "run", "--quiet").exit_code == 0
    r = run("evaluate", tiny, "--weights", tmp_path / "run" / "best.pt", "--set", "classes=4")
    assert r.exit_code == 1 and "does not fit this network" in r.output
    r = run("evaluate", tiny, "--weights", tmp_path / "nothing.pt")
    assert r.exit_code == 2 and r.output == f"archc: error: --weights: no such file: {tmp_path / 'nothing.pt'}\n"


def test_a_run_directory_holding_a_run_is_never_replaced_silently(tiny, tmp_path):
    out = tmp_path / "run"
    assert run("train", tiny, "--out", out, "--quiet").exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    r = run("train", tiny, "--out", out, "--quiet")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert f"--out {out} already holds a run (config.json, last.pt, best.pt, metrics.jsonl)" in r.output
    assert f"--resume {out}" in r.output and "--overwrite" in r.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing touched
    assert run("train", tiny, "--out", out, "--quiet", "--overwrite").exit_code == 0


def test_run_files_follow_the_umask(tiny, tmp_path):
    old = os.umask(0o022)
    try:
        assert run("train", tiny, "--out", tmp_path / "run", "--quiet").exit_code == 0
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "run").iterdir() if p.is_file()}
    assert modes and set(modes.values()) == {0o644}, modes  # mkstemp alone would give 0600


def test_the_first_line_comes_before_the_data_is_read(tiny, tmp_path):
    """The run is named before the data and the model are prepared (they take seconds):
    a bad data file is reported after the first line, not before it."""
    r = run("train", tiny, "--out", tmp_path / "ok", "--epochs", 1)
    lines = r.output.splitlines()
    data = str(tmp_path / "d.npz")  # the fixture's data file
    assert lines[0] == f"training tiny (811 parameters) on {data} for 1 epochs on cpu; run: {tmp_path / 'ok'}"
    assert lines[1].startswith(f"data: {data}: ") and " train, " in lines[1]
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an npz")
    r = run("train", tiny, "--data", bad, "--out", tmp_path / "bad")
    assert r.exit_code == 1 and r.output.splitlines()[0].startswith("training tiny (")


@pytest.mark.parametrize("config, why", [("[1, 2]", "not a JSON object"),
                                         ('{"spec": 3, "train": {}}', "wrong or missing spec")])
def test_resume_of_a_folder_with_a_foreign_config_is_refused(tmp_path, config, why):
    (tmp_path / "config.json").write_text(config)
    (tmp_path / "last.pt").write_bytes(b"")
    r = run("train", "--resume", tmp_path)
    assert r.exit_code == 1 and "internal error" not in r.output
    assert f"config.json is not an archc run's ({why}" in r.output


def test_missing_run_directory_and_non_weights_files_raise_archcs_errors(tmp_path):
    import archc
    from archc.backends.torch.weights import WeightsError
    from archc.train import train

    with pytest.raises(TrainError, match="no such run directory"):
        train(None, resume=str(tmp_path / "nothing"))
    text = tmp_path / "notes.txt"
    text.write_text("not weights\n")
    with pytest.raises(WeightsError, match="is not a weights file: not a torch.save checkpoint"):
        archc.load_weights(archc.build("lenet5"), text)


def test_a_null_section_means_its_defaults_and_a_wrong_one_says_mapping():
    assert make_config({"augment": None}).augment.translate == 0.0  # `augment: null`: no augmentation
    with pytest.raises(TrainError, match=r"train.augment: expected a mapping, got 3"):
        make_config({"augment": 3})
