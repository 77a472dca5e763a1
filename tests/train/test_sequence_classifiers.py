"""Sequence classifiers on the digits read as sequences of rows (specs/lstm_digits.yaml,
specs/conv1d_digits.yaml): parameter counts equal torch's own modules built by hand, and
a short training run classifies well above chance (10 %)."""

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

import archc  # noqa: E402
from archc.train import train  # noqa: E402

SPECS = Path(__file__).resolve().parents[2] / "specs"
LSTM = str(SPECS / "lstm_digits.yaml")
CONV1D = str(SPECS / "conv1d_digits.yaml")


def _params(*modules) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def test_lstm_digits_counts_equal_torch_modules():
    expected = _params(torch.nn.LSTM(8, 64, batch_first=True), torch.nn.Linear(64, 10))
    assert archc.load(LSTM).summary.total_params == expected == 19_594


def test_gru_digits_counts_equal_torch_modules():
    g = archc.loads(Path(LSTM).read_text().replace("- lstm:", "- gru:"))
    assert g.summary.total_params == _params(torch.nn.GRU(8, 64, batch_first=True), torch.nn.Linear(64, 10))


def test_conv1d_digits_counts_equal_torch_modules():
    nn = torch.nn
    reference = nn.Sequential(nn.Conv1d(8, 32, 3, padding=1), nn.BatchNorm1d(32), nn.ReLU(),
                              nn.Conv1d(32, 64, 3, padding=1), nn.BatchNorm1d(64), nn.ReLU(),
                              nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(64, 10))
    s = archc.load(CONV1D).summary
    assert s.total_params == _params(reference)
    assert s.buffers == sum(b.numel() for b in reference.buffers())


def test_the_digits_feed_an_input_of_rows():
    from archc.train.config import make_config
    from archc.train.data import prepare

    splits = prepare(make_config({"data": "digits"}), (8, 8))
    assert tuple(splits.train.x.shape[1:]) == (8, 8)


@pytest.mark.parametrize("spec, cell", [(LSTM, "lstm"), (LSTM, "gru"), (CONV1D, None)],
                         ids=["lstm", "gru", "conv1d"])
def test_a_short_run_classifies_the_digits(tmp_path, spec, cell):
    if cell == "gru":  # the same spec with a GRU cell
        spec_file = tmp_path / "gru_digits.yaml"
        spec_file.write_text(Path(LSTM).read_text().replace("- lstm:", "- gru:"))
        spec = str(spec_file)
    metrics, _ = train(spec, epochs=4, out=str(tmp_path / "run"), progress="quiet")
    assert metrics["test_accuracy"] >= 0.85
