"""FSDP through torchrun (issue 13.6): ``--strategy fsdp`` on 2 gloo processes shards the
parameters, gradients and Adam's moments per block instance, trains the weights of one
process (up to float rounding, as the DDP test: tests/train/test_distributed.py), reports
the same metrics, writes plain state_dicts (best.pt, last.pt), and the run resumes on 1
process to the weights an uninterrupted one-process run reaches.

tests/train/specs/mlp_blocks.yaml: two residual blocks (res.0, res.1, the FSDP units), no
batch norm, dropout or augmentation, 256 training examples (a multiple of the global batch
32 and of 2 ranks). Its lr makes epoch 2 of 3 the best, so the test pass measures best.pt
restored on every rank (rank 0 reads it, FSDP scatters it to the other's shards); its 65
validation examples are 3 batches on rank 0 and 2 on rank 1, whose filler forward keeps
the collective gathers in step."""

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
SPEC = str(Path(__file__).parent / "specs" / "mlp_blocks.yaml")
ENV = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")} | {"OMP_NUM_THREADS": "1"}
NAMES = ["stem.weight", "stem.bias", "res.0.fc1.weight", "res.0.fc1.bias", "res.0.fc2.weight", "res.0.fc2.bias",
         "res.1.fc1.weight", "res.1.fc1.bias", "res.1.fc2.weight", "res.1.fc2.bias", "head.weight", "head.bias"]

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch built without gloo")


def one_process(tmp_path, epochs):
    from archc.train import train

    return train(SPEC, out=str(tmp_path / f"one-{epochs}"), device="cpu", progress="quiet", epochs=epochs)


def checkpoint(run_dir: Path, name="last.pt") -> dict:
    return torch.load(run_dir / name, weights_only=True)


def assert_same_weights(a: dict, b: dict):
    assert list(a) == list(b) == NAMES
    for k in a:  # 24 Adam steps: equal up to float rounding
        assert type(b[k]) is torch.Tensor, k  # a plain tensor, not a DTensor shard
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=0), (k, float((a[k] - b[k]).abs().max()))


def test_two_fsdp_processes_train_the_weights_of_one_and_resume_on_one(tmp_path):
    m1, one = one_process(tmp_path, 3)
    two = tmp_path / "two"
    r2 = subprocess.run([sys.executable, "-m", "archc", "train", SPEC, "--device", "cpu", "--out", str(two),
                         "--json", "--nproc", "2", "--strategy", "fsdp"],
                        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert r2.returncode == 0, r2.stderr[-3000:]
    last = checkpoint(two)
    assert_same_weights(checkpoint(one)["model"], last["model"])
    m2 = json.loads(r2.stdout)  # rank 0 alone prints the JSON
    assert m1["best_epoch"] == m2["best_epoch"] == 2 and m2["epochs_run"] == 3
    for key in ("train_loss", "val_loss", "test_loss"):  # the test pass: best.pt, restored on both ranks
        assert m2[key] == pytest.approx(m1[key], abs=1e-5), key
    for key in ("train_accuracy", "val_accuracy", "test_accuracy"):
        assert m2[key] == pytest.approx(m1[key], abs=1e-9), key
    best = checkpoint(two, "best.pt")
    assert best["epoch"] == 2 and list(best["model"]) == NAMES  # what evaluate and export read
    # Adam's moments, gathered whole and keyed by parameter name (any process count reads them)
    state = last["optimizer"]["state"]
    assert list(state) == NAMES and state["res.0.fc1.weight"]["exp_avg"].shape == (16, 16)
    assert json.loads((two / "config.json").read_text())["train"]["strategy"] == "fsdp"
    assert "training mlp_blocks" in r2.stderr and r2.stderr.count("epoch 3/3") == 1  # rank 0 prints

    # resumed on one process: the 4th epoch computes what a one-process run's 4th computes
    from archc.train import train

    m3, _ = train(SPEC, resume=str(two), device="cpu", progress="quiet", epochs=4)
    _, one4 = one_process(tmp_path, 4)
    assert_same_weights(checkpoint(one4)["model"], checkpoint(two)["model"])
    assert m3["epochs_run"] == 4


# ----------------------------------------------------------------------------- pieces, in one process


def test_the_wrapping_units_are_block_instances():
    import archc
    from archc.train.fsdp import unit_layers, wrapping_units

    graph = archc.load(SPEC)
    assert wrapping_units(graph) == ["res.0", "res.1"]
    model = archc.build(graph)
    assert unit_layers(model, "res.1") == [model.res[1].fc1, model.res[1].fc2]
    # an instance holding repeats is opened: ViT's encoder -> its 12 layers (the mlp inside each stays)
    vit = wrapping_units(archc.load("vit_b_16"))
    assert vit == [f"encoder.layers.encoder_layer_{i}" for i in range(12)] + ["heads"]
    resnet = wrapping_units(archc.load("resnet18"))  # the shortcut stays in its block
    assert resnet == ["layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0", "layer3.1", "layer4.0", "layer4.1"]


def test_optimizer_state_by_name_and_back():
    from archc.train.fsdp import by_index, by_name

    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(4, 2)).sum().backward()
    opt.step()
    plain = opt.state_dict()
    named = by_name(model, opt, plain)
    assert list(named["state"]) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert named["param_groups"][0]["params"] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert torch.equal(named["state"]["2.weight"]["exp_avg"], plain["state"][2]["exp_avg"])
    back = by_index(model, opt, named)
    assert back["param_groups"] == plain["param_groups"] and list(back["state"]) == [0, 1, 2, 3]
    assert by_index(model, opt, plain) is plain and by_name(model, opt, named) is named


def test_an_unknown_strategy_is_refused():
    from archc.train.config import make_config
    from archc.train.errors import TrainError

    with pytest.raises(TrainError) as err:
        make_config({"strategy": "zero3"})
    assert str(err.value) == "train.strategy 'zero3' is not ddp or fsdp"
