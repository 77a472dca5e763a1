"""``archc plan --nproc N --strategy ddp|fsdp`` (archc/analysis/parallel.py) against what
each process really holds: 2 gloo processes on the CPU (tests/analysis/parallel_worker.py,
started by torchrun as ``archc train --nproc`` starts its workers) train one step of a
small network with archc's DDP and with archc's FSDP2 sharding, and every rank's bytes of
parameters, gradients, optimizer state, buffers and DDP's buckets must equal the plan's
exactly. The network's sizes are odd (5 and 7 channels, 3 classes), so FSDP's shards are
uneven and padded, and two of its layers are frozen (train.freeze), one in the root unit
and one inside a wrapped block."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import archc
from archc.analysis import parallel
from archc.analysis.memory import Settings, plan
from archc.cli import main

HERE = Path(__file__).parent

SHARDS = """\
archc: 1
name: shards
input: [3, 8, 8]
blocks:
  unit:
    args: {out: required}
    layers:
      - conv2d: {out: $out, kernel: 3, padding: 1, id: conv}
      - batchnorm2d: {id: bn}
      - relu
layers:
  - conv2d: {out: 5, kernel: 3, padding: 1, id: stem}
  - unit: {out: 7, repeat: 2, id: body}
  - global_avgpool: {keepdims: false}
  - linear: {out: 3, id: head}
train:
  optimizer: {name: adam}
  batch_size: 6
  freeze: [stem, body.0.bn]
"""


def run(*args):
    return CliRunner().invoke(main, list(args))


def gloo_available() -> bool:
    try:
        import torch.distributed as dist
    except ImportError:
        return False
    return dist.is_available() and dist.is_gloo_available()


@pytest.mark.skipif(not gloo_available(), reason="torch built without gloo")
def test_every_process_holds_what_the_plan_says(tmp_path):
    spec = tmp_path / "shards.yaml"
    spec.write_text(SHARDS)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                        str(HERE / "parallel_worker.py"), str(spec), str(tmp_path)],
                       env=env | {"OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{i}.json").read_text()) for i in range(2)]

    graph = archc.load(str(spec))
    frozen = parallel.frozen_nodes(graph, ["stem", "body.0.bn"])
    assert frozen == {"stem", "body.0.bn"}
    settings = Settings(batch=6, optimizer="adam", device="cpu", frozen=frozen)
    units = parallel.fsdp_layout(graph, frozen)
    fsdp, ddp = parallel.fsdp(graph, settings, 2, units), parallel.ddp(graph, settings, 2)
    for rank, facts in enumerate(ranks):
        f, d = facts["fsdp"], facts["ddp"]
        assert f["units"] == [u.name for u in units if u.name] == ["body.0", "body.1"]
        assert f["batch"] == d["batch"] == fsdp.batch == ddp.batch == 3
        # the local shards (to_local(), unpadded): rank 1 holds fewer rows of 5, 7 and 3
        assert {k: f[k] for k in ("params", "gradients", "optimizer_state")} == \
            parallel.shard_bytes(units, 2, rank, settings)
        # the storages: padded to ceil(rows / 2) rows on every rank, the plan's figures
        assert (f["params_storage"], f["gradients_storage"]) == (fsdp.params, fsdp.gradients)
        assert f["buffers"] == d["buffers"] == fsdp.buffers == ddp.buffers
        assert (d["params"], d["gradients"], d["optimizer_state"], d["buckets"]) == \
            (ddp.params, ddp.gradients, ddp.optimizer_state, ddp.buckets)
        # DDP's buckets are a second copy: archc does not ask for gradient_as_bucket_view
        assert not d["gradient_as_bucket_view"] and d["distinct_gradient_storages"]
        assert d["buckets"] == d["gradients"]
    first = ranks[0]["fsdp"]
    assert (first["params"], first["gradients"], first["optimizer_state"]) == \
        (fsdp.params, fsdp.gradients, fsdp.optimizer_state)  # process 0 holds the most
    assert ranks[1]["fsdp"]["params"] < fsdp.params
    # the same figures by hand: ceil(rows / 2) rows of every tensor, trainable ones for the rest
    shapes = [(5, 27, False), (5, 1, False), (7, 45, True), (7, 1, True), (7, 1, False), (7, 1, False),
              (7, 63, True), (7, 1, True), (7, 1, True), (7, 1, True), (3, 7, True), (3, 1, True)]
    assert fsdp.params == 4 * sum(-(-r // 2) * c for r, c, _ in shapes)
    assert fsdp.gradients == 4 * sum(-(-r // 2) * c for r, c, t in shapes if t)
    assert fsdp.optimizer_state == 2 * fsdp.gradients + 4 * sum(t for *_, t in shapes)  # Adam + steps


def test_ddp_per_process_table_and_json():
    graph = archc.load("specs/resnet18.yaml")
    r = run("plan", "specs/resnet18.yaml", "--nproc", "4", "--batch-size", "64", "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["settings"]["nproc"] == 4 and doc["settings"]["strategy"] == "ddp"  # resnet18 has no strategy
    share = doc["per_process"]
    assert (share["strategy"], share["nproc"], share["batch_size"], share["units"]) == ("ddp", 4, 16, 0)
    b = share["bytes"]
    one = plan(graph, Settings(batch=16, optimizer="sgd", momentum=0.9, weight_decay=1e-4, precision="bf16"))
    assert b["params"] == 4 * 11_689_512 == b["gradients"] == b["buckets"] == b["optimizer_state"]
    assert b["activations"] == one.activations and b["transient"] == one.transient
    assert b["peak"] == one.peak + b["buckets"] and b["gathered"] == b["unsharded_gradients"] == 0
    whole = plan(graph, Settings(batch=64, precision="bf16"))
    assert doc["bytes"]["activations"] == whole.activations  # the one-process plan keeps the whole batch

    text = run("plan", "specs/resnet18.yaml", "--nproc", "4", "--batch-size", "64").output
    tail = text[text.index("Per process"):].splitlines()
    assert tail[0] == "Per process of 4 (ddp, batch 16 each; every process the same)"
    assert [line.split("  ")[0] for line in tail[1:]] == [
        "Parameters (whole)", "Buffers", "Gradients", "DDP's gradient buckets", "Optimizer state",
        "Activations kept for backward", "Largest transient", "Predicted peak per process"]
    assert tail[4].endswith(" 44.59 MiB") and tail[-1].endswith(" 431.19 MiB")


@pytest.mark.skipif(not gloo_available(), reason="FSDP's units are laid out on torch's meta device")
def test_fsdp_per_process_of_the_residual_mlp():
    """tests/train/specs/mlp_blocks.yaml: every size even, so each shard is half; the root
    (stem, head) and two neighbouring blocks are gathered whole at once."""
    r = run("plan", "tests/train/specs/mlp_blocks.yaml", "--nproc", "2", "--strategy", "fsdp", "--device", "cpu",
            "--format", "json")
    assert r.exit_code == 0, r.output
    share = json.loads(r.output)["per_process"]
    stem, block, head = 64 * 16 + 16, 2 * (16 * 16 + 16), 16 * 10 + 10
    total = stem + 2 * block + head
    assert share["units"] == 2 and share["largest_unit"] == "res.0"
    b = share["bytes"]
    assert b["params"] == b["gradients"] == 4 * total // 2
    assert b["optimizer_state"] == 2 * b["params"] + 4 * 12  # Adam's moments of the shards + 12 CPU steps
    assert b["gathered"] == 4 * (stem + head + 2 * block) and b["unsharded_gradients"] == 4 * (stem + head + block)
    assert b["peak"] == sum(v for k, v in b.items() if k != "peak")
    text = run("plan", "tests/train/specs/mlp_blocks.yaml", "--nproc", "2", "--strategy", "fsdp").output
    assert ("Per process of 2 (fsdp, batch 16 each; process 0, which holds the most; 2 units + the root, "
            "the largest res.0)\nParameters (shard)  ") in text
    assert "Gathered parameters" in text and "Unsharded gradients in backward" in text


def test_strategy_comes_from_the_train_section(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(SHARDS.replace("batch_size: 6", "batch_size: 6\n  strategy: fsdp"))
    doc = json.loads(run("plan", str(spec), "--nproc", "3", "--format", "json").output) if gloo_available() else None
    if doc:
        assert doc["per_process"]["strategy"] == "fsdp" and doc["per_process"]["batch_size"] == 2
    doc = json.loads(run("plan", str(spec), "--nproc", "3", "--strategy", "ddp", "--format", "json").output)
    assert doc["per_process"]["strategy"] == "ddp" and doc["settings"]["frozen"] == ["body.0.bn", "stem"]


def test_bad_splits_and_patterns_are_said(tmp_path):
    r = run("plan", "specs/resnet18.yaml", "--nproc", "3", "--batch-size", "64")
    assert r.exit_code == 1
    assert "train.batch_size 64 (the global batch) does not split over 3 processes — use a multiple of 3" in r.output
    r = run("plan", "specs/resnet18.yaml", "--strategy", "fsdp")
    assert r.exit_code == 2 and "a strategy shares the work of several processes: give --nproc N too" in r.output
    r = run("plan", "specs/resnet18.yaml", "--freeze", "layer9.*")
    assert r.exit_code == 1 and "--freeze 'layer9.*' matches no layer — did you mean" in r.output
    spec = tmp_path / "s.yaml"
    spec.write_text(SHARDS.replace("batch_size: 6", "batch_size: 6\n  strategy: zero3"))
    r = run("plan", str(spec))
    assert r.exit_code == 1 and "train.strategy: 'zero3' is not one of ddp, fsdp" in r.output  # the spec's schema


def test_ddp_per_process_does_not_import_torch():
    code = ("import sys\nfrom click.testing import CliRunner\nfrom archc.cli import main\n"
            "r = CliRunner().invoke(main, ['plan', 'specs/resnet50.yaml', '--batch-size', '32', '--nproc', '4',"
            " '--freeze', 'layer1'])\nassert r.exit_code == 0, r.output\nprint('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_shard_rows_follow_torch_chunk():
    torch = pytest.importorskip("torch")
    for rows in (1, 2, 5, 7, 10, 64):
        for n in (2, 3, 4, 8):
            chunks = torch.arange(rows).chunk(n)
            assert [parallel.shard_rows(rows, n, r) for r in range(n)] == \
                [len(chunks[r]) if r < len(chunks) else 0 for r in range(n)], (rows, n)


def test_json_md_names_every_field_of_the_plan_schema():
    schema = json.loads((HERE.parents[1] / "archc" / "report" / "plan.schema.json").read_text())
    text = (HERE.parents[1] / "docs" / "json.md").read_text()
    share = schema["properties"]["per_process"]["oneOf"][1]["properties"]
    names = list(schema["properties"]["settings"]["properties"]) + list(share) + list(share["bytes"]["properties"])
    assert [n for n in names if f"`{n}`" not in text and f'"{n}"' not in text] == []


def test_largest_global_batch_per_process():
    """--memory with --nproc: the largest global batch (a multiple of N) whose peak per
    process fits on every process; one more example per process does not."""
    r = run("plan", "specs/resnet18.yaml", "--nproc", "4", "--memory", "4GiB", "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    fit = doc["per_process"]["largest_batch"]
    assert fit["batch"] == 4 * fit["batch_per_process"] and fit["memory"] == 4 * 2**30
    graph = archc.load("specs/resnet18.yaml")
    settings = Settings(batch=fit["batch"], optimizer="sgd", momentum=0.9, weight_decay=1e-4, precision="bf16")
    budget = 0.9 * 4 * 2**30
    assert parallel.ddp(graph, settings, 4).peak == fit["peak"] <= budget
    more = Settings(**{**settings.__dict__, "batch": fit["batch"] + 4})
    assert parallel.ddp(graph, more, 4).peak > budget
    # DDP's buckets cost each process memory: it fits fewer examples than one process alone
    assert fit["batch_per_process"] < doc["largest_batch"]["batch"]
    text = run("plan", "specs/resnet18.yaml", "--nproc", "4", "--memory", "4GiB").output
    assert text.rstrip().endswith(f"Largest global batch that fits in 4.00 GiB on each of 4 processes: {fit['batch']} "
                                  f"({fit['batch_per_process']} each; peak per process "
                                  f"{fit['peak'] / 2**30:.2f} GiB, keeping 10% free)")
    assert json.loads(run("plan", "specs/resnet18.yaml", "--nproc", "2", "--format", "json").output)[
        "per_process"]["largest_batch"] is None


def test_fsdp_without_torch_is_said(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    r = run("plan", "specs/lenet5.yaml", "--nproc", "2", "--strategy", "fsdp")
    assert r.exit_code == 1
    assert ("--strategy fsdp lays out its units with torch, which is not installed here — install torch, "
            "or plan --strategy ddp") in r.output


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_the_training_memory_check_uses_the_per_process_plan(strategy):
    """archc train's check before the data (analysis/budget.py) predicts what `archc plan
    --nproc N --strategy S` does for one process (DDP's buckets, FSDP's shards and gathered
    units), with train.freeze counted; a batch that does not split gives no estimate
    (training's own error says so)."""
    from archc.analysis.budget import estimate_training_bytes
    from archc.report.plan import settings_for
    from archc.train.config import make_config

    graph = archc.load("specs/lenet5.yaml")
    cfg = make_config(graph.train, {"batch_size": 64, "strategy": strategy})
    need, parts = estimate_training_bytes(graph, cfg, "cpu", 2)
    assert need == parallel.share(graph, settings_for(graph, 64, device="cpu"), 2, strategy).peak
    assert f"for a batch of 32 on each of 2 processes ({strategy})" in parts
    frozen = make_config(graph.train, {"batch_size": 64, "strategy": strategy, "freeze": ["c1", "c3"]})
    assert estimate_training_bytes(graph, frozen, "cpu", 2)[0] == parallel.share(
        graph, settings_for(graph, 64, device="cpu", freeze=["c1", "c3"]), 2, strategy).peak < need
    assert estimate_training_bytes(graph, make_config(graph.train, {"batch_size": 63}), "cpu", 2) is None
