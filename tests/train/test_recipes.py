"""The seeds' CIFAR-10 VGG-16 recipe (specs/vgg16_cifar10.yaml: SGD 0.1 momentum 0.9,
multistep, L2 1e-5, flips and 4-pixel padded crops, early stopping on val_accuracy) runs
as written on a CIFAR-10 python-batches folder (a tiny one these tests write)."""

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]


def fake_cifar(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, n in (("data_batch_1", 24), ("test_batch", 8)):
        batch = {b"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8), b"labels": [i % 10 for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return folder


def test_vgg16_cifar10_recipe_runs_on_a_cifar_folder(tmp_path):
    data = fake_cifar(tmp_path / "cifar-10-batches-py")
    proc = subprocess.run([sys.executable, "-m", "archc", "train", "specs/vgg16_cifar10.yaml", "--data", str(data),
                           "--epochs", "1", "--batch-size", "8", "--out", str(tmp_path / "run"), "--json", "--quiet"],
                          cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout)
    assert metrics["epochs_run"] == 1 and 0 <= metrics["test_accuracy"] <= 1
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data"]["test"] == 8 and config["data"]["train"] + config["data"]["val"] == 24
    assert config["train"]["augment"]["crop_padding"] == 4 and config["train"]["schedule"]["milestones"] == [30]


def test_the_digits_recipes_script_runs(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", EPOCHS="2", OUT=str(tmp_path / "runs"),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(["bash", "examples/train_recipes.sh"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "frozen: 6 tensors" in proc.stderr and "tensors loaded" in proc.stderr
    assert "split test  examples 359" in proc.stdout
    lines = (tmp_path / "runs" / "lenet5" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 + 5  # EPOCHS=2, then resumed for 5 more
