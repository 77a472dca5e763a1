"""One process of tests/analysis/test_parallel.py, started by torchrun (gloo, CPU):

    python -m torch.distributed.run --standalone --nproc-per-node 2 parallel_worker.py SPEC OUT_DIR

builds SPEC's module as archc train does (train.freeze applied), once wrapped in DDP as
archc/train/distributed.py wraps it and once sharded with FSDP2 per block instance by
archc/train/fsdp.py, takes one step of the spec's optimizer on this process's part of the
global batch with each, and writes OUT_DIR/rank{R}.json: the bytes this process holds
under each strategy, measured from the tensors (both in one launch: starting torch in two
processes costs more than the steps)."""

import json
import sys

import torch
import torch.distributed as dist

import archc
from archc.backends.torch.build import build, example_input
from archc.train.config import make_config
from archc.train.distributed import rank_config, setup, teardown
from archc.train.optim import make_optimizer
from archc.train.transfer import freeze


def local(t: torch.Tensor) -> torch.Tensor:
    """A DTensor's own shard; a plain tensor as it is."""
    return t.to_local() if hasattr(t, "to_local") else t


def nbytes(tensors) -> int:
    return sum(local(t).numel() * t.element_size() for t in tensors)


def storage_bytes(tensors) -> int:
    """Bytes of the storages behind ``tensors``, each once (padding and shared buffers included)."""
    seen = {}
    for t in tensors:
        s = local(t).untyped_storage()
        seen[s.data_ptr()] = s.nbytes()
    return sum(seen.values())


def measure(graph, cfg, world, strategy: str) -> dict:
    """One step of a fresh module under ``strategy``; the bytes this process holds after it."""
    model = build(graph, seed=0)
    if cfg.freeze:
        freeze(model, cfg.freeze, say=lambda _: None)
    forward, facts = model, {}
    if strategy == "fsdp":
        from archc.train.fsdp import shard

        facts["units"] = shard(model, graph, world)
    else:
        forward = torch.nn.parallel.DistributedDataParallel(model)
    opt = make_optimizer(model.parameters(), cfg.optimizer)
    x = example_input(graph, cfg.batch_size, seed=world.rank)
    forward(x).float().square().mean().backward()
    opt.step()
    params = list(model.parameters())
    grads = [p.grad for p in params if p.grad is not None]
    state = [v for s in opt.state.values() for v in s.values() if torch.is_tensor(v)]
    facts.update(batch=cfg.batch_size, params=nbytes(params), gradients=nbytes(grads),
                 optimizer_state=nbytes(state), buffers=nbytes(model.buffers()),
                 params_storage=storage_bytes(params), gradients_storage=storage_bytes(grads))
    if strategy == "ddp":  # the reducer's flat buckets, and whether the gradients are views of them
        data = forward._get_ddp_logging_data()
        facts["buckets"] = sum(int(b) for b in str(data["bucket_sizes"]).split(",") if b.strip())
        facts["gradient_as_bucket_view"] = bool(data["gradient_as_bucket_view"])
        facts["distinct_gradient_storages"] = len({g.untyped_storage().data_ptr() for g in grads}) == len(grads)
    return facts


def main(spec: str, out: str) -> None:
    world = setup("cpu")
    graph = archc.load(spec)
    cfg = rank_config(make_config(graph.train), world)
    facts = {strategy: measure(graph, cfg, world, strategy) for strategy in ("ddp", "fsdp")}
    with open(f"{out}/rank{world.rank}.json", "w") as f:
        json.dump(facts, f)
    dist.barrier()
    teardown(world)


if __name__ == "__main__":
    main(*sys.argv[1:3])
