"""The language_model task on pysource (Python's standard library as bytes): the data's
fixed split and windows, the metrics, the errors, and a short run of specs/gpt_tiny.yaml
(shrunk) whose validation loss ends clearly below the uniform baseline ln 256 = 5.545."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from archc.train import TrainError, train  # noqa: E402
from archc.train.config import make_config  # noqa: E402
from archc.train.data import prepare  # noqa: E402
from archc.train.data.text import decode, encode, pysource_bytes  # noqa: E402
from archc.train.tasks import get_task  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SPEC = str(ROOT / "specs" / "gpt_tiny.yaml")
SMALL = {"input": [32], "context": 32, "layers": 2, "width": 64, "heads": 2}


def test_pysource_is_the_default_data_of_the_task():
    assert make_config({"task": "language_model"}).data.source == "pysource"


def test_pysource_splits_the_text_at_a_fixed_place():
    cfg = make_config({"task": "language_model", "data": "pysource"})
    splits = prepare(cfg, (32,))
    text = pysource_bytes()
    train, val = splits.train, splits.val
    assert splits.test is None
    assert train.x.dtype == torch.long and train.x.shape[1:] == (32,)
    assert torch.equal(train.x[:, 1:], train.y[:, :-1])          # y is x shifted by one
    cut = round(len(text) * 0.9)
    assert decode(val.x[0].tolist()) == text[cut:cut + 32].decode("utf-8", errors="replace")
    assert len(val) == (len(text) - cut - 1) // 32
    assert int(train.x.max()) < 256


def test_training_windows_are_redrawn_from_the_seed():
    splits = prepare(make_config({"task": "language_model"}), (16,))
    a = splits.train
    a.draw(torch.Generator().manual_seed(5))
    first = a.x.clone()
    a.draw(torch.Generator().manual_seed(5))
    assert torch.equal(first, a.x)
    a.draw(torch.Generator().manual_seed(6))
    assert not torch.equal(first, a.x)


def test_bytes_round_trip():
    assert decode(encode("déf ∑")) == "déf ∑"


def test_perplexity_and_bits_come_from_the_mean_loss():
    meter = get_task("language_model").meter(None)
    out = torch.zeros(2, 4, 256)  # uniform logits: loss ln 256
    loss = torch.nn.functional.cross_entropy(out.reshape(-1, 256), torch.zeros(8, dtype=torch.long))
    meter.update(out, torch.zeros(2, 4, dtype=torch.long), loss)
    result = meter.result("val_")
    assert result["val_loss"] == pytest.approx(math.log(256))
    assert result["val_perplexity"] == pytest.approx(256, rel=1e-5)
    assert result["val_bpc"] == pytest.approx(8.0)


def test_an_unknown_metric_is_named():
    with pytest.raises(TrainError, match="'top5' is not a metric of the language_model task"):
        get_task("language_model").meter(["top5"])


def test_a_float_input_is_refused(tmp_path):
    spec = tmp_path / "float.yaml"  # train takes a path (or a zoo name), never YAML text
    spec.write_text("archc: 1\ninput: [8]\nlayers:\n  - linear: {out: 4}\ntrain: {task: language_model}\n")
    with pytest.raises(TrainError) as err:
        train(str(spec), out=str(tmp_path / "run"))
    assert str(err.value) == ("the language_model task reads a sequence of token ids, but the spec's input is "
                              "[8] of float32 — declare input: {shape: [L], dtype: int64, vocab: 256}")


def test_a_short_run_learns_python(tmp_path):
    run = tmp_path / "run"
    metrics, _ = train(SPEC, overrides=SMALL, epochs=3, out=str(run), progress="quiet",
                       batch_size=32, **{"data": "pysource"})
    uniform = math.log(256)
    assert metrics["val_loss"] < uniform - 2.0, metrics  # 5.55 -> below 3.55 nats per byte
    assert metrics["val_bpc"] == pytest.approx(metrics["val_loss"] / math.log(2))
    assert metrics["val_perplexity"] == pytest.approx(math.exp(metrics["val_loss"]))
    assert (run / "best.pt").exists()
