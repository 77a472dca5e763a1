"""Tasks (classification, binary, regression), metrics, early stopping and the best model,
through the Python API on small .npz data sets."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from archc.train import TrainError, train  # noqa: E402
from archc.train.loop import SupervisedTrainer  # noqa: E402
from archc.train.tasks import get_task  # noqa: E402

SPEC = """archc: 1
name: net
input: [4]
layers:
  - linear: {out: 16}
  - tanh
  - linear: {out: OUT}
  - LAST
train:
  task: TASK
  data: DATA
  optimizer: {name: adam, lr: 0.01}
  batch_size: 16
  epochs: 30
"""


def spec(tmp_path, task, out, y, last="identity"):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=y(x))
    path = tmp_path / f"{task}.yaml"
    path.write_text(SPEC.replace("TASK", task).replace("OUT", str(out)).replace("DATA", str(tmp_path / "d.npz"))
                    .replace("LAST", last))
    return str(path)


def test_binary_logits_and_sigmoid_outputs(tmp_path):
    s = spec(tmp_path, "binary", 1, lambda x: (x[:, 0] + x[:, 1] > 0).astype(np.float32))
    metrics, _ = train(s, out=str(tmp_path / "a"), progress="quiet")
    assert metrics["test_accuracy"] >= 0.9
    s = spec(tmp_path, "binary", 1, lambda x: (x[:, 0] + x[:, 1] > 0).astype(np.float32), last="sigmoid")
    metrics, _ = train(s, out=str(tmp_path / "b"), progress="quiet")
    assert metrics["test_accuracy"] >= 0.9  # bce on probabilities, threshold 0.5


def test_regression_mse(tmp_path):
    s = spec(tmp_path, "regression", 1, lambda x: (2 * x[:, 0] - x[:, 2]).astype(np.float32))
    metrics, _ = train(s, out=str(tmp_path / "r"), progress="quiet")
    assert metrics["test_loss"] < 0.05 and metrics["test_mae"] < 0.2


def test_classification_top5_and_unknown_metric(tmp_path):
    s = spec(tmp_path, "classification", 6, lambda x: (np.abs(x[:, 0] * 3).astype(int) % 6))
    metrics, _ = train(s, out=str(tmp_path / "c"), progress="quiet", epochs=2,
                       overrides={"train.metrics": ["accuracy", "top5"]})
    assert metrics["test_top5"] >= metrics["test_accuracy"]
    with pytest.raises(TrainError, match="'iou' is not a metric of the classification task"):
        train(s, out=str(tmp_path / "d"), progress="quiet", overrides={"train.metrics": ["iou"]})


def test_top5_counts_a_label_among_the_five_largest():
    task = get_task("classification")
    out = torch.tensor([[0.0, 1, 2, 3, 4, 5, 6], [6.0, 5, 4, 3, 2, 1, 0]])
    y = torch.tensor([2, 6])
    assert float(task.metrics["top5"](out, y)) == 1 and float(task.metrics["accuracy"](out, y)) == 0


def test_early_stopping_and_best_model(tmp_path, monkeypatch):
    s = spec(tmp_path, "regression", 1, lambda x: x[:, 0].astype(np.float32))
    losses = iter([5.0, 4.0, 4.5, 4.2, 4.1, 3.0, 9.0])

    def scripted(self, epoch):
        return {"train_loss": next(losses)}

    monkeypatch.setattr(SupervisedTrainer, "train_epoch", scripted)
    metrics, run = train(s, out=str(tmp_path / "e"), progress="quiet",
                         overrides={"train.data.val_split": 0, "train.early_stopping": {"patience": 2}})
    # epoch 2 (4.0) is best; 3 epochs without improvement > patience 2: stop after epoch 5
    assert (metrics["epochs_run"], metrics["best_epoch"], metrics["stopped_early"]) == (5, 2, True)
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 5
    import archc.train.checkpoint as ckpt

    assert ckpt.load(run / "best.pt")["epoch"] == 2
    assert json.loads((run / "metrics.json").read_text())["best"] == 4.0


def test_workers_give_the_same_batches_as_memory(tmp_path):
    s = spec(tmp_path, "classification", 3, lambda x: (x[:, 0] > 0).astype(int) + (x[:, 1] > 0).astype(int))
    a, _ = train(s, out=str(tmp_path / "w0"), progress="quiet", epochs=2)
    b, _ = train(s, out=str(tmp_path / "w1"), progress="quiet", epochs=2, overrides={"train.workers": 1})
    assert a == b


def test_cli_usage_and_json(tmp_path):
    from click.testing import CliRunner

    from archc.cli import main

    r = CliRunner().invoke(main, ["train"])
    assert r.exit_code == 2 and "give SPEC, or --resume RUN_DIR" in r.output
    s = spec(tmp_path, "regression", 1, lambda x: x[:, 0].astype(np.float32))
    r = CliRunner().invoke(main, ["train", s, "--epochs", "1", "--json", "--out", str(tmp_path / "j")])
    assert r.exit_code == 0
    out = json.loads(r.stdout)
    assert out["run_dir"] == str(tmp_path / "j") and out["epochs_run"] == 1
