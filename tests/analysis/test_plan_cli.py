"""`archc plan` and `archc train --batch-size auto` from the command line (click's CliRunner),
and on a CUDA machine the predicted peak against torch.cuda.max_memory_allocated."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest
from click.testing import CliRunner

import archc
from archc.analysis.memory import MARGIN, Settings, parse_bytes, plan
from archc.cli import main


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_plan_json_holds_the_split_and_adds_up():
    r = run("plan", "specs/resnet18.yaml", "--batch-size", "8", "--optimizer", "adam", "--precision", "fp32",
            "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["format"] == "archc.plan/1"
    assert doc["settings"] == {"batch_size": 8, "optimizer": "adam", "momentum": 0.0, "precision": "fp32",
                               "device": "cuda", "strategy": "ddp", "nproc": 1, "frozen": []}
    assert doc["per_process"] is None  # one process
    b = doc["bytes"]
    assert b["params"] == 4 * 11_689_512 and b["gradients"] == b["params"]
    assert b["optimizer_state"] == 2 * b["params"]  # Adam's two moments (its steps live on the CPU)
    assert b["peak"] == sum(v for k, v in b.items() if k != "peak")
    assert sum(layer["saved_bytes"] for layer in doc["layers"]) == b["activations"]
    assert doc["largest_batch"] is None


@pytest.mark.parametrize("args", [("specs/gpt2.yaml", "--memory", "80GiB"), ("specs/lstm_digits.yaml",),
                                  ("specs/vgg16.yaml", "--memory", "1MiB", "--amp"),
                                  ("specs/resnet18.yaml", "--nproc", "4", "--freeze", "conv1,layer1.*"),
                                  ("specs/lenet5.yaml", "--nproc", "2", "--strategy", "fsdp")])
def test_plan_json_follows_its_schema(args):
    from pathlib import Path

    from jsonschema import Draft202012Validator

    schema = json.loads((Path(__file__).parents[2] / "archc" / "report" / "plan.schema.json").read_text())
    doc = json.loads(run("plan", *args, "--format", "json").output)
    assert [e.message for e in Draft202012Validator(schema).iter_errors(doc)] == []


def test_plan_reads_the_train_section_and_the_table_names_every_part():
    r = run("plan", "specs/lenet5.yaml", "--device", "cpu")  # train: adam, batch 64; amp auto: fp32 on the CPU
    assert r.exit_code == 0, r.output
    assert r.output.startswith("lenet5: batch 64, adam, fp32, on cpu\n")
    for label in ("Parameters (fp32)", "Gradients", "Optimizer state", "Activations kept for backward",
                  "Largest transient", "Predicted peak of one step", "c1.conv2d_1"):
        assert label in r.output


def test_largest_batch_is_the_last_that_fits():
    r = run("plan", "specs/resnet18.yaml", "--memory", "4GiB", "--format", "json")
    doc = json.loads(r.output)
    fit = doc["largest_batch"]
    assert fit["memory"] == 4 * 2**30 and fit["margin"] == MARGIN
    graph = archc.load("specs/resnet18.yaml")
    budget = (1 - MARGIN) * fit["memory"]
    settings = Settings(batch=fit["batch"], optimizer="sgd", momentum=0.9, precision="bf16")
    assert plan(graph, settings).peak <= budget < plan(graph, Settings(**{**settings.__dict__, "batch": fit["batch"] + 1})).peak
    assert "Largest batch that fits in 4.00 GiB: " in run("plan", "specs/resnet18.yaml", "--memory", "4GiB").output


def test_nothing_fits_and_bad_sizes_are_said():
    r = run("plan", "specs/vgg16.yaml", "--memory", "1MiB")
    assert r.exit_code == 0 and "Largest batch: none — one sample needs more than 1.00 MiB" in r.output
    r = run("plan", "specs/lenet5.yaml", "--memory", "lots")
    assert r.exit_code == 2 and "'lots' is not an amount of memory (e.g. 24GiB, 512MiB, 16GB)" in r.output
    assert parse_bytes("512MiB") == 512 * 2**20 and parse_bytes("24GB") == 24 * 10**9


@pytest.mark.parametrize("section", [{}, "adam", {"name": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4,
                                                  "lr": 0.1}, {"name": "adamw", "lr": 3e-4}, {"momentum": 1},
                                     {"name": "adam", "betas": [0.9, 0.95]}])
def test_the_optimizer_is_read_as_training_converts_it(section):
    """The plan reads plain optimizer sections without importing archc/train/config.py."""
    from archc.report.plan import _optimizer
    from archc.train.config import OptimizerConfig, convert

    c = convert(OptimizerConfig, section, "train.optimizer")
    assert _optimizer(section) == {"name": c.name, "momentum": c.momentum, "weight_decay": c.weight_decay,
                                   "nesterov": c.nesterov}


def test_plan_does_not_import_torch():
    code = ("import sys\nfrom click.testing import CliRunner\nfrom archc.cli import main\n"
            "r = CliRunner().invoke(main, ['plan', 'specs/resnet50.yaml', '--batch-size', '32', '--memory', '24GiB'])\n"
            "assert r.exit_code == 0, r.output\nprint('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_train_batch_size_auto_trains_with_the_chosen_batch(tmp_path):
    out = tmp_path / "run"
    r = run("train", "specs/lenet5.yaml", "--batch-size", "auto", "--memory", "512MiB", "--epochs", "1",
            "--set", "train.data.limit=64", "--device", "cpu", "--out", str(out))
    assert r.exit_code == 0, r.output
    first = r.output.splitlines()[0]
    assert first.startswith("batch size auto: ") and "fits in 512.00 MiB less 10% (archc plan)" in first
    chosen = int(first.split(":")[1].split(",")[0])
    graph = archc.load("specs/lenet5.yaml")
    budget = 0.9 * 512 * 2**20
    assert plan(graph, Settings(batch=chosen, optimizer="adam", device="cpu")).peak <= budget
    assert plan(graph, Settings(batch=chosen + 1, optimizer="adam", device="cpu")).peak > budget
    assert json.loads((out / "config.json").read_text())["train"]["batch_size"] == chosen


def test_batch_size_auto_on_the_cpu_needs_a_size():
    r = run("train", "specs/lenet5.yaml", "--batch-size", "auto", "--device", "cpu", "--epochs", "1")
    assert r.exit_code == 1 and "--batch-size auto on the CPU needs --memory SIZE" in r.output


# --------------------------------------------------------------------------- on a GPU

torch = pytest.importorskip("torch")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the predicted "
                                "peak is compared with torch.cuda.max_memory_allocated on a GPU only")


def cuda_step_peak(graph, batch: int) -> int:
    """max_memory_allocated of a second training step (SGD + momentum, fp32), weights included."""
    from archc.backends.torch.build import build, example_input

    torch.cuda.empty_cache()
    model = build(graph, seed=0).cuda().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = example_input(graph, batch).cuda()
    for _ in range(2):  # the second step has the momentum buffers, as every later one
        opt.zero_grad(set_to_none=True)
        torch.cuda.reset_peak_memory_stats()
        model(x).float().square().mean().backward()
        opt.step()
    return torch.cuda.max_memory_allocated()


@needs_cuda
@pytest.mark.parametrize("name, batch", [("resnet18", 32), ("mobilenet_v3_large", 32), ("vit_b_16", 8)])
def test_predicted_peak_within_ten_percent_of_a_real_step(name, batch):
    graph = archc.load(f"specs/{name}.yaml")
    predicted = plan(graph, Settings(batch=batch, optimizer="sgd", momentum=0.9, precision="fp32")).peak
    real = cuda_step_peak(graph, batch)
    assert abs(predicted - real) <= 0.1 * real, f"archc {predicted / 2**20:.0f} MiB, torch {real / 2**20:.0f} MiB"


@needs_cuda
def test_the_predicted_largest_batch_runs():
    from archc.analysis.memory import largest_batch

    graph = archc.load("specs/resnet18.yaml")
    free, _ = torch.cuda.mem_get_info()
    memory = min(free, 4 * 2**30)
    batch, _ = largest_batch(graph, Settings(optimizer="sgd", momentum=0.9, precision="fp32"), memory)
    assert cuda_step_peak(graph, batch) <= memory


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_batch_size_auto_under_torchrun_fills_each_process(strategy, monkeypatch):
    """Under torchrun (WORLD_SIZE=2) --batch-size auto is the largest global batch whose
    share fits each process, by the per-process plan (archc/analysis/parallel.py); the next
    multiple of 2 does not fit."""
    from archc.analysis import parallel
    from archc.analysis.memory import MARGIN
    from archc.cli.train import _auto_batch
    from archc.report.plan import settings_for

    monkeypatch.setenv("WORLD_SIZE", "2")
    batch = _auto_batch("specs/lenet5.yaml", None, {}, None, "64MiB", "cpu", True, strategy, None)
    graph = archc.load("specs/lenet5.yaml")
    settings = settings_for(graph, 1, device="cpu")
    budget = (1 - MARGIN) * 64 * 2**20
    assert batch % 2 == 0 and batch > 0
    fits = parallel.share(graph, replace(settings, batch=batch), 2, strategy).peak
    over = parallel.share(graph, replace(settings, batch=batch + 2), 2, strategy).peak
    assert fits <= budget < over
    monkeypatch.setenv("WORLD_SIZE", "1")
    single = _auto_batch("specs/lenet5.yaml", None, {}, None, "64MiB", "cpu", True, strategy, None)
    assert batch > single  # two processes hold more than one


def test_batch_size_auto_counts_frozen_layers():
    """A frozen body keeps no gradients, optimizer state or saved inputs: a larger batch fits."""
    from archc.cli.train import _auto_batch

    whole = _auto_batch("specs/lenet5.yaml", None, {}, None, "16MiB", "cpu", True, None, None)
    frozen = _auto_batch("specs/lenet5.yaml", None, {}, None, "16MiB", "cpu", True, None, "c1,c3,c5")
    assert frozen > whole
