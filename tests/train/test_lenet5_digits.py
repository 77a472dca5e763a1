"""`archc train specs/lenet5.yaml` with its defaults: ≥ 97% test accuracy on the digits
that ship in scikit-learn, and a complete run directory. (~6 s on 2 CPU cores.)"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

ROOT = Path(__file__).resolve().parents[2]


def test_lenet5_reaches_97_percent_on_digits(tmp_path):
    run = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "archc", "train", "specs/lenet5.yaml", "--out", str(run),
                           "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout)
    assert metrics["test_accuracy"] >= 0.97
    assert metrics["epochs_run"] == 8
    assert "epoch 8/8" in proc.stderr  # plain progress lines when not a terminal
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == list(range(1, 9))
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["batch_size"] == 64 and config["train"]["optimizer"]["name"] == "adam"
    assert config["data"] == {"train": 1294, "val": 144, "test": 359, "classes": [str(i) for i in range(10)],
                              "normalize": config["data"]["normalize"]}
    assert json.loads((run / "metrics.json").read_text())["test_accuracy"] == metrics["test_accuracy"]
    for name in ("best.pt", "last.pt", "curves.png"):
        assert (run / name).stat().st_size > 0
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the trained weights evaluate to the same test accuracy (in this process: no second start-up)
    from archc.train import evaluate

    again = evaluate(str(ROOT / "specs" / "lenet5.yaml"), str(run / "best.pt"))
    assert again["accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert again["examples"] == 359
