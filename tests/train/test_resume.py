"""A run killed with SIGKILL in the middle of an epoch and resumed ends with exactly the
weights of an uninterrupted run with the same seed (CPU, deterministic algorithms), and
no checkpoint is ever half-written."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, OMP_NUM_THREADS="1")
ARGS = ["specs/lenet5.yaml", "--epochs", "4", "--seed", "3", "--set", "train.deterministic=true", "--quiet"]


def archc(*args, **kw):
    return subprocess.run([sys.executable, "-m", "archc", *args], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=300, **kw)


def load(path):
    return torch.load(path, weights_only=True)


def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert archc("train", *ARGS, "--out", str(whole)).returncode == 0

    proc = subprocess.Popen([sys.executable, "-m", "archc", "train", *ARGS, "--out", str(killed)],
                            cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (killed / "last.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    time.sleep(0.15)  # into the next epoch
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    state = load(killed / "last.pt")  # complete and readable: written atomically
    assert 1 <= state["epoch"] < 4

    resumed = archc("train", "--resume", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    a, b = load(whole / "last.pt"), load(killed / "last.pt")
    assert a["epoch"] == b["epoch"] == 4
    for key, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][key]), key
    strip = lambda run: [{k: v for k, v in json.loads(line).items() if k != "time"}  # noqa: E731
                         for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert strip(whole) == strip(killed)
    assert json.loads((whole / "metrics.json").read_text()) == json.loads((killed / "metrics.json").read_text())
    assert not list(killed.glob(".*.tmp"))


def test_resume_needs_a_finished_epoch(tmp_path):
    out = archc("train", "--resume", str(tmp_path))
    assert out.returncode == 1
    assert "no last.pt there" in out.stderr and "Traceback" not in out.stderr


WRITER = """
import sys, torch
from archc.train.checkpoint import save
i = 0
while True:
    i += 1
    save(sys.argv[1], {"i": i, "w": torch.full((200_000,), float(i))})
    print(i, flush=True)
"""


@pytest.mark.parametrize("delay", [0.05, 0.13, 0.31])
def test_a_checkpoint_killed_while_being_written_is_the_old_or_the_new_one(tmp_path, delay):
    path = tmp_path / "last.pt"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline()  # one complete write
    time.sleep(delay)
    proc.kill()
    proc.wait()
    state = load(path)
    assert torch.equal(state["w"], torch.full((200_000,), float(state["i"])))


def test_resume_of_a_finished_run_says_so(tmp_path):
    from click.testing import CliRunner

    from archc.cli import main
    from archc.train import train

    run = tmp_path / "run"
    spec = str(Path(__file__).parent / "specs" / "mlp_digits.yaml")  # 256 examples, 2 epochs
    train(spec, out=str(run), device="cpu", progress="quiet")
    before = (run / "last.pt").read_bytes()
    for extra in ([], ["--epochs", "2"]):
        out = CliRunner().invoke(main, ["train", "--resume", str(run), "--quiet", *extra])
        assert out.exit_code == 1, out.output
        asks = " (--epochs 2 asks for no more)" if extra else ""
        assert out.stderr.splitlines() == [f"archc: error: --resume {run}: the run already finished its 2 epochs"
                                           f"{asks} — give --epochs M, more than 2, to go on (e.g. --epochs 4)"]
    assert (run / "last.pt").read_bytes() == before  # untouched
    out = CliRunner().invoke(main, ["train", "--resume", str(run), "--quiet", "--epochs", "3"])
    assert out.exit_code == 0, out.output
    assert load(run / "last.pt")["epoch"] == 3
