"""Distributed data parallel through torch's launcher: a 2-process run on the CPU (gloo)
trains to the weights of one process with the same global batch, reports the same
metrics (reduced across ranks), and only rank 0 writes the run directory.

The spec (tests/train/specs/mlp_digits.yaml) has no batch norm, dropout or augmentation,
and 256 training examples (a multiple of the global batch 32 and of 2 ranks), so both
runs see the same examples in the same global batches: they differ only by float
rounding (the mean of two half-batch means against the mean of the batch)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

import torch.distributed as dist  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SPEC = str(Path(__file__).parent / "specs" / "mlp_digits.yaml")
LR = {"train.optimizer.lr": 0.5}
ENV = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")} | {"OMP_NUM_THREADS": "1"}

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch built without gloo")


def archc(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "archc", *map(str, args)], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def weights(run_dir: Path) -> dict:
    return torch.load(run_dir / "last.pt", weights_only=True)["model"]


def test_two_processes_train_the_weights_of_one(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    from archc.train import train

    # lr 0.5 for 4 epochs: the best validation loss is epoch 2's, so the test pass measures a
    # restored best.pt — on every rank (rank 0 reads it, the others take its weights)
    m1, _ = train(SPEC, out=str(one), device="cpu", progress="quiet", epochs=4, overrides=LR)  # one process, here
    r2 = archc("train", SPEC, "--device", "cpu", "--out", two, "--json", "--epochs", 4, "--set",
               "train.optimizer.lr=0.5", "--nproc", 2)
    assert r2.returncode == 0, r2.stderr[-3000:]
    a, b = weights(one), weights(two)
    assert a.keys() == b.keys() == {"linear_1.weight", "linear_1.bias", "linear_2.weight", "linear_2.bias"}
    for k in a:  # 32 SGD steps with momentum: equal up to float rounding
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=0), (k, float((a[k] - b[k]).abs().max()))
    m2 = json.loads(r2.stdout)  # rank 0 alone prints the JSON
    assert m2["run_dir"] == str(two)
    assert m1["best_epoch"] == m2["best_epoch"] == 2 and m2["epochs_run"] == 4
    for key in ("train_loss", "val_loss", "test_loss"):  # sums and counts all-reduced, not averaged per rank
        assert m2[key] == pytest.approx(m1[key], abs=1e-5), key
    for key in ("train_accuracy", "val_accuracy", "test_accuracy"):
        assert m2[key] == pytest.approx(m1[key], abs=1e-9), key
    config = json.loads((two / "config.json").read_text())
    assert config["train"]["batch_size"] == 32  # the global batch is what the run records
    assert sorted(p.name for p in two.iterdir() if p.name != "curves.png") == \
        ["best.pt", "config.json", "last.pt", "metrics.json", "metrics.jsonl"]
    assert "training mlp_digits" in r2.stderr and r2.stderr.count("epoch 4/4") == 1  # rank 0 prints


def test_global_batch_must_split_over_the_processes():
    from archc.train.config import make_config
    from archc.train.distributed import World, rank_config
    from archc.train.errors import TrainError

    cfg = make_config({"batch_size": 64})
    assert rank_config(cfg, World(1, 4)).batch_size == 16 and cfg.batch_size == 64  # the run keeps the global one
    assert rank_config(cfg, World()) is cfg
    with pytest.raises(TrainError) as err:
        rank_config(make_config({"batch_size": 31}), World(0, 2))
    assert str(err.value) == ("train.batch_size 31 (the global batch) does not split over 2 processes — "
                              "use a multiple of 2")


def test_what_every_worker_would_refuse_is_refused_before_torchrun_starts(tmp_path, monkeypatch):
    """--nproc N: a batch that does not split, a spec that does not load or a missing file
    is one error from the launcher, exit 1 (or 2), before torchrun starts N workers that
    would each print it and torchrun its traceback."""
    from click.testing import CliRunner

    from archc.cli import main
    from archc.train import distributed

    started = []
    monkeypatch.setattr(distributed, "launch", lambda args, n: started.append(n) or 0)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    runner = CliRunner()
    r = runner.invoke(main, ["train", "specs/lenet5.yaml", "--nproc", "3", "--batch-size", "32", "--out",
                             str(tmp_path / "run")])
    assert (r.exit_code, r.output) == (1, "archc: error: train.batch_size 32 (the global batch) does not "
                                          "split over 3 processes — use a multiple of 3\n")
    r = runner.invoke(main, ["train", "specs/lenet5.yaml", "--nproc", "2", "--set", "train.batch_size=33"])
    assert r.exit_code == 1 and "does not split over 2 processes" in r.output
    r = runner.invoke(main, ["train", str(tmp_path / "missing.yaml"), "--nproc", "2"])
    assert r.exit_code != 0 and "missing.yaml" in r.output
    r = runner.invoke(main, ["train", "--nproc", "2"])
    assert r.exit_code == 2 and "give SPEC, or --resume RUN_DIR" in r.output
    assert started == [] and not (tmp_path / "run").exists()
    r = runner.invoke(main, ["train", "specs/lenet5.yaml", "--nproc", "2", "--batch-size", "32"])
    assert (r.exit_code, started) == (0, [2])  # a batch that splits: torchrun starts


# ----------------------------------------------------------------------------- pieces, in one process


def test_one_process_is_left_alone(monkeypatch):
    from archc.train import distributed

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    world = distributed.setup("cpu")
    assert (world.rank, world.size, world.active, world.device) == (0, 1, False, None)
    assert distributed.shard(10, 0, 1) is None
    assert distributed.all_reduce_totals(3, 1.5, {"a": 2}) == (3, 1.5, {"a": 2})


def test_shards_cover_every_example_once():
    from archc.train import distributed
    from archc.train.data import epoch_order

    assert [distributed.shard(7, r, 3).tolist() for r in range(3)] == [[0, 3, 6], [1, 4], [2, 5]]
    whole = epoch_order(64, 5, 2)
    parts = [epoch_order(64, 5, 2, r, 2) for r in range(2)]
    for i in range(4):  # global batch i of 16 = rank 0's and rank 1's batch i of 8
        both = torch.cat([p[8 * i:8 * (i + 1)] for p in parts])
        assert sorted(both.tolist()) == sorted(whole[16 * i:16 * (i + 1)].tolist())


def test_passthrough_rebuilds_the_command_line_without_nproc():
    import click

    from archc.cli import main
    from archc.train.distributed import passthrough_args

    command = main.commands["train"]
    args = ["specs/lenet5.yaml", "--epochs", "3", "--set", "classes=10", "--set", "width=8", "--quiet", "--nproc", "2"]
    with click.Context(command, info_name="train") as ctx:
        command.parse_args(ctx, list(args))
        rebuilt = passthrough_args(ctx)
    assert rebuilt == ["train", "specs/lenet5.yaml", "--epochs", "3", "--quiet", "--set", "classes=10",
                       "--set", "width=8"]


def test_the_launched_processes_ignore_modules_of_the_current_folder(tmp_path):
    # a user's click.py beside their spec once replaced the package in torchrun's workers
    from archc.train.distributed import launch_command

    (tmp_path / "click.py").write_text("raise ImportError('the click.py of the current folder')\n")
    command, env = launch_command(["--version"], 2)
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert command[-3:] == ["-m", "archc", "--version"]
    # each worker is `python -m archc ...` in the user's folder, with the launcher's environment
    worker = subprocess.run([sys.executable, "-m", "archc", "--version"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert worker.returncode == 0, worker.stderr[-2000:]
    assert "version" in worker.stdout
