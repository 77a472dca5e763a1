"""Training: ``archc plan`` (the memory of one training step, torch-free) and ``archc train``
(with --batch-size auto, the largest batch the plan fits)."""

from __future__ import annotations

import os

import click

from archc.cli.common import (FORMATS, CliError, _run_training, _train_target, import_root_option,
                              load_graphs, memory_check_option, preset_option, report_errors,
                              require_file, set_option, spec_argument)
from archc.cli.group import main
from archc.completion import SpecType
from archc.errors import SpecErrors


@main.command()
@spec_argument
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Default: train.batch_size.")
@click.option("--optimizer", type=click.Choice(["sgd", "adam", "adamw", "rmsprop"]), default=None,
              help="Default: train.optimizer.")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default=None,
              help="Default: train.amp (auto: bf16 on a GPU, fp32 on the CPU).")
@click.option("--amp", "amp", is_flag=True, help="Mixed precision: the same as --precision bf16.")
@click.option("--memory", default=None, metavar="SIZE", help="Also print the largest batch that fits in SIZE (24GiB, 512MiB).")
@click.option("--device", default="cuda", show_default=True, metavar="cuda|cpu|cuda:N",
              help="The kernels to plan for; cuda:N also reads that GPU's free memory (imports torch).")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="Also one process's memory among N (batch-size is the global batch).")
@click.option("--strategy", type=click.Choice(["ddp", "fsdp"]), default=None,
              help="With --nproc: replicas or shards. Default: train.strategy (fsdp imports torch).")
@click.option("--freeze", default=None, metavar="IDS/GLOBS", help="Comma-separated layer ids or globs to freeze. Default: train.freeze.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@set_option
@preset_option
@import_root_option
def plan(spec, batch_size, optimizer, precision, amp, memory, device, nproc, strategy, freeze, fmt, sets, preset):
    """Predict the memory of one training step of SPEC[:NETWORK], torch-free (docs/train.md#memory)."""
    from archc.report import plan as P
    from archc.train.errors import TrainError

    from archc.analysis.memory import parse_bytes

    try:
        size = parse_bytes(memory) if memory is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--memory") from None
    if device not in ("cuda", "cpu") and not device.startswith("cuda:"):
        raise click.BadParameter(f"{device!r} is not cuda, cpu or cuda:N", param_hint="--device")
    if strategy and nproc == 1:
        raise click.BadParameter("a strategy shares the work of several processes: give --nproc N too",
                                 param_hint="--strategy")
    graph = load_graphs(spec, sets, preset, all_networks=False)[0]
    try:
        if device.startswith("cuda:") and size is None:
            size = P.device_memory(device)
        settings = P.settings_for(graph, batch_size, optimizer, "bf16" if amp and not precision else precision,
                                  "cpu" if device == "cpu" else "cuda",
                                  [f.strip() for f in freeze.split(",") if f.strip()] if freeze else None)
        doc = P.make(graph, settings, size, nproc, P.strategy_for(graph, strategy))
    except (TrainError, ValueError) as exc:
        raise CliError(str(exc)) from None
    render = {"json": P.render_json, "markdown": P.render_markdown}.get(fmt, P.render_text)
    click.echo(render(doc), nl=fmt == "json")


class BatchSizeType(click.ParamType):
    """--batch-size: a positive integer or `auto`."""

    name = "batch_size"

    def convert(self, value, param, ctx):
        if value == "auto" or isinstance(value, int):
            return value
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            self.fail(f"{value!r} is not a positive integer or auto", param, ctx)
        return n


@main.command()
@click.argument("spec", metavar="SPEC[:NETWORK]", type=SpecType(), required=False)
@click.option("--data", default=None, metavar="SOURCE",
              help="digits (default), an .npz file, an image folder, an MNIST or CIFAR-10 folder.")
@click.option("--epochs", type=click.IntRange(min=1), default=None)
@click.option("--batch-size", type=BatchSizeType(), default=None, metavar="N|auto",
              help="auto: the largest batch that fits --memory (or the GPU's free memory), by archc plan.")
@click.option("--memory", "memory_size", default=None, metavar="SIZE", help="With --batch-size auto: the memory to fill (512MiB, 24GiB).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None)
@click.option("--device", default=None, metavar="auto|cpu|cuda", help="Default: auto (CUDA when available).")
@click.option("--out", default=None, metavar="RUN_DIR", help="Run directory (default: runs/NAME[-N]).")
@click.option("--resume", default=None, metavar="RUN_DIR", help="Continue a stopped run from its last.pt.")
@click.option("--overwrite", is_flag=True, help="Replace the run already in --out RUN_DIR (else refused).")
@click.option("--seed", type=int, default=None)
@click.option("--init-from", default=None, metavar="CKPT", help="Start from these weights (matching names and shapes).")
@click.option("--freeze", default=None, metavar="IDS/GLOBS", help="Comma-separated layer ids or globs to freeze.")
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
@click.option("--json", "as_json", is_flag=True, help="Print the final metrics as JSON on stdout.")
@click.option("--nproc", type=click.IntRange(min=1), default=None, metavar="N",
              help="Train on N processes (DDP) started by torchrun; --batch-size is the global batch.")
@click.option("--strategy", type=click.Choice(["ddp", "fsdp"]), default=None,
              help="With --nproc/torchrun: ddp (default) or fsdp (shards parameters, gradients, optimizer state).")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model for training (train.compile).")
@set_option
@preset_option
@import_root_option
@memory_check_option
def train(spec, data, epochs, batch_size, memory_size, lr, device, out, resume, overwrite, seed, init_from, freeze,
          quiet, as_json, nproc, strategy, compile_, sets, preset):
    """Train SPEC[:NETWORK] as its train: section says; flags override it (docs/train.md)."""
    import json

    launching = nproc and nproc > 1 and int(os.environ.get("WORLD_SIZE", "1")) <= 1  # not yet under torchrun
    if spec is None and resume is None:
        raise click.UsageError("give SPEC, or --resume RUN_DIR")
    require_file(resume, "--resume", "folder")
    require_file(init_from, "--init-from")
    path, network, overrides = _train_target(spec, sets, preset) if spec else (None, None, {})
    if batch_size == "auto" and not launching:  # under torchrun: each process plans its share
        batch_size = _auto_batch(path, network, overrides, preset, memory_size, device, quiet, strategy, freeze)
    flags = {"data": data, "epochs": epochs, "batch_size": batch_size, "lr": lr, "device": device,
             "seed": seed, "init_from": init_from, "strategy": strategy, "compile": compile_ or None,
             "freeze": [f.strip() for f in freeze.split(",") if f.strip()] if freeze else None}
    if launching:
        from archc.train.distributed import launch, passthrough_args

        if path is not None and resume is None and batch_size != "auto":
            _run_training(lambda: _check_before_launch(path, network, overrides, preset, flags, nproc))
        ctx = click.get_current_context()
        ctx.exit(launch(passthrough_args(ctx), nproc))

    def run():
        from archc.train.run import Request
        from archc.train.run import train as run_training

        return run_training(Request(path, network, overrides, preset, flags, out, resume,
                                    "quiet" if quiet else "auto", overwrite))

    metrics, run_dir = _run_training(run)
    if os.environ.get("RANK", "0") != "0":  # DDP: rank 0 reports
        return
    if as_json:
        click.echo(json.dumps(metrics | {"run_dir": str(run_dir)}, indent=2))
    elif not quiet:
        shown = {k: v for k, v in metrics.items() if k.startswith("test_")} or metrics
        click.echo("final: " + "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                         for k, v in shown.items()) + f"  (run: {run_dir})", err=True)


def _check_before_launch(path, network, overrides, preset, flags: dict, nproc: int) -> None:
    """The spec and its train section, checked once before torchrun starts the workers."""
    from archc.api import load_all
    from archc.train.distributed import check_before_launch

    graphs = load_all(path, overrides or None, preset)
    chosen = [g for g in graphs if g.name == network] or [g for g in graphs if g.train] or graphs
    check_before_launch(chosen[0].train, flags, nproc)


def _auto_batch(path, network, overrides, preset, memory_size, device, quiet, strategy, freeze) -> int:
    """The batch of --batch-size auto (archc/report/plan.py), said on the first line; under
    torchrun, the global batch whose share fits each process."""
    from archc.analysis.memory import parse_bytes
    from archc.api import load
    from archc.report.plan import auto_batch

    if path is None:
        raise click.UsageError("--batch-size auto needs SPEC (a resumed run keeps its batch)")
    try:
        size = parse_bytes(memory_size) if memory_size is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--memory") from None
    try:
        patterns = [f.strip() for f in freeze.split(",") if f.strip()] if freeze else None
        batch, line = auto_batch(load(path, network, overrides or None, preset), size, device,
                                 int(os.environ.get("WORLD_SIZE", "1")), strategy, patterns)
    except SpecErrors as exc:
        report_errors(exc)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if not quiet and os.environ.get("RANK", "0") == "0":
        click.echo(line, err=True)
    return batch
