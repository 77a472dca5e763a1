"""Using trained weights: ``archc evaluate`` (loss and metrics on a data set, of a
checkpoint or an exported .onnx file) and ``archc generate`` (a language model's text)."""

from __future__ import annotations

from pathlib import Path

import click

from archc.cli.common import (UsageLine, _onnx_errors, _run_training, _train_target, import_root_option,
                              preset_option, require_file, set_option, spec_argument)
from archc.cli.group import main
from archc.completion import SpecType


@main.command()
@click.argument("spec", metavar="SPEC[:NETWORK]|MODEL.onnx", type=SpecType())
@click.option("--weights", default=None, metavar="CKPT", help="A checkpoint (best.pt, last.pt) or state_dict "
              "(a SPEC needs it; an .onnx file holds its own).")
@click.option("--data", default=None, metavar="SOURCE", help="Default: the spec's train.data.")
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=None)
@click.option("--device", default=None, metavar="auto|cpu|cuda")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@set_option
@preset_option
@import_root_option
def evaluate(spec, weights, data, split, batch_size, device, as_json, sets, preset):
    """Report the loss and metrics of trained weights (or of an exported .onnx file, under
    onnxruntime) on a data set."""
    import json

    from archc.backends.onnx.commands import is_onnx_file

    if is_onnx_file(spec):
        metrics = _evaluate_onnx(spec, weights or sets or preset, data, split, batch_size, device)
        click.echo(json.dumps(metrics, indent=2) if as_json else
                   "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()))
        return
    if weights is None:
        raise click.UsageError("Missing option '--weights' (a checkpoint; an .onnx file needs none).")
    require_file(weights, "--weights")
    path, network, overrides = _train_target(spec, sets, preset)

    def run():
        from archc.train import evaluate as evaluate_weights

        return evaluate_weights(path, weights, network, overrides=overrides, preset=preset, split=split,
                                data=data, batch_size=batch_size, device=device)

    metrics = _run_training(run)
    if as_json:
        click.echo(json.dumps(metrics, indent=2))
    else:
        click.echo("  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()))


def _evaluate_onnx(model, spec_flags, data, split, batch_size, device) -> dict:
    """`archc evaluate MODEL.onnx`: the file's metrics under onnxruntime (--device picks the provider)."""
    if spec_flags:
        raise click.UsageError("an .onnx file holds its weights and its network: leave out --weights, --set, --preset")
    if not Path(model).exists():
        raise UsageLine(f"no such file: {model}")
    from archc.backends.onnx.evaluation import evaluate_onnx

    return _onnx_errors(lambda: _run_training(lambda: evaluate_onnx(model, data, split, batch_size, device or "cpu")))


@main.command()
@spec_argument
@click.option("--weights", required=True, metavar="CKPT|RUN_DIR", help="A run directory (its best.pt), "
              "a checkpoint or a state_dict.")
@click.option("--prompt", required=True, help="The text to continue (encoded as bytes).")
@click.option("--tokens", type=click.IntRange(min=1), default=200, show_default=True, help="How many to sample.")
@click.option("--temperature", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Divides the logits; 0 takes the most likely token.")
@click.option("--top-k", type=click.IntRange(min=1), default=None, help="Sample among the K most likely tokens.")
@click.option("--seed", type=int, default=0, show_default=True)
@set_option
@preset_option
@import_root_option
def generate(spec, weights, prompt, tokens, temperature, top_k, seed, sets, preset):
    """Continue a prompt with a trained language model (token ids in, [L, vocab] logits out)."""
    require_file(weights, "--weights")
    path, network, overrides = _train_target(spec, sets, preset)
    target = f"{path}:{network}" if network else path

    def run():
        from archc.generate import generate as sample_text

        return sample_text(target, weights, prompt, tokens, temperature, top_k, seed, overrides, preset)

    text, notes = _run_training(run)
    for note in notes:
        click.echo(f"archc: note: {note}", err=True)
    click.echo(text)
