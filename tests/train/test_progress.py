"""Progress: plain lines when not a terminal, a rich bar on one, nothing with --quiet."""

import io

import pytest

from archc.train.progress import Progress, epoch_line


class Tty(io.StringIO):
    def isatty(self):
        return True


def run_two_epochs(progress):
    for epoch in (1, 2):
        progress.start_epoch(epoch, 2, 4)
        for step in range(1, 5):
            progress.update(step, 8 * step, 0.5, ("accuracy", 0.75))
        progress.end_epoch({"epoch": epoch, "train_loss": 0.25, "lr": 0.001})
    progress.close()


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    p = Progress("auto", out)
    assert p.mode == "plain"
    run_two_epochs(p)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("epoch 1/2  train_loss 0.2500  lr 0.001  ") and " ex/s " in lines[0]
    assert "eta 0:00" in lines[0] and "eta" not in lines[1]


def test_rich_bar_on_a_terminal():
    pytest.importorskip("rich")
    out = Tty()
    p = Progress("auto", out)
    assert p.mode == "rich"
    run_two_epochs(p)
    text = out.getvalue()
    assert "loss 0.5000  accuracy 0.7500" in text and "epoch 2/2  train_loss 0.2500" in text


def test_quiet_prints_nothing():
    out = io.StringIO()
    p = Progress("quiet", out)
    run_two_epochs(p)
    p.message("hello")
    assert out.getvalue() == ""


def test_epoch_line_eta():
    line = epoch_line(3, 15, {"epoch": 3, "train_loss": 0.5, "time": 1.0}, 2.0, 1000, 125.4)
    assert line == "epoch 3/15  train_loss 0.5000  500 ex/s  2.0s  eta 2:05"
