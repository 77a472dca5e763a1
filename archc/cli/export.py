"""ONNX: ``archc export`` (a network to an .onnx file, checked against PyTorch, optionally
quantized) and ``archc infer`` (a model run on an input file)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from archc.cli.common import (UsageLine, _onnx_errors, import_root_option, load_graphs, memory_check_option,
                              preset_option, require_file, set_option, spec_argument)
from archc.cli.group import main
from archc.errors import SpecErrors
from archc.printable import printable


def check_onnx_target(graphs, opset=None) -> None:
    """Ops that cannot be exported (or not at ``opset``), before any tracing (torch-free)."""
    from archc.validate_many import onnx_target_errors

    errors = onnx_target_errors(graphs, opset)
    if errors:
        raise SpecErrors(errors)


def stage_printer():
    """On a terminal, a stage line on stderr as each slow step starts (export can take a
    minute on a large network); piped or redirected, nothing: the output stays the result."""
    if not _stderr_is_terminal():
        return None
    return lambda stage: click.echo(f"export: {stage} …", err=True)


def _stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


@main.command()
@spec_argument
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The .onnx file to write.")
@click.option("--weights", default=None, metavar="CKPT", help="Trained weights (state_dict, checkpoint, "
              ".safetensors); default: the spec's initialisation.")
@click.option("--opset", type=int, default=None, help="ONNX opset, 18-25 (default 20).")
@click.option("--dynamic-batch/--static-batch", "dynamic", default=True, show_default=True,
              help="A batch of any size, or fixed at 1.")
@click.option("--single-file/--external-data", "single", default=True, show_default=True,
              help="Weights inside the file, or beside it in FILE.data (needed above 2 GiB).")
@click.option("--optimize", type=click.Choice(["none", "basic", "extended"]), default="none", show_default=True,
              help="Rewrite the file with onnxruntime's graph optimisations (extended: onnxruntime-only ops).")
@click.option("--check/--no-check", default=True, show_default=True,
              help="Checker, ONNX shape inference vs archc's shapes, onnxruntime vs torch.")
@click.option("--quantize", type=click.Choice(["int8", "fp16"]), default=None,
              help="Write the model in int8 (static, QDQ) or fp16, the fp32 one beside it "
                   "(M.onnx: M.fp32.onnx), and measure one against the other on the test split.")
@click.option("--calibrate", type=click.IntRange(min=1), default=None, metavar="N",
              help="int8: calibrate on N training examples (default 300).")
@click.option("--data", default=None, metavar="SOURCE", help="With --quantize: the data (default: train.data).")
@click.option("--max-drop", type=float, default=None, metavar="POINTS",
              help="With --quantize: exit 1 when test accuracy falls by more (default 1).")
@click.option("--fp16-io", is_flag=True, help="With --quantize fp16: fp16 inputs and outputs (default fp32).")
@set_option
@preset_option
@import_root_option
@memory_check_option
def export(spec, output, weights, opset, dynamic, single, optimize, check, quantize, calibrate, data, max_drop,
           fp16_io, sets, preset):
    """Export SPEC[:NETWORK] to ONNX (through torch.onnx) and check it against PyTorch."""
    from archc.backends.onnx.commands import export_lines
    from archc.backends.onnx.quantize import flag_problem

    problem = flag_problem(quantize, calibrate, data, max_drop, fp16_io, optimize, single)
    if problem:
        raise click.UsageError(problem)
    require_file(weights, "--weights")
    graphs = load_graphs(spec, sets, preset, all_networks=False)
    check_onnx_target(graphs, opset)
    if quantize:
        from archc.backends.onnx.quantize import quantize_options, quantize_lines

        options = quantize_options(weights, opset, dynamic, check, calibrate, data, max_drop, fp16_io)
        lines, ok = _onnx_errors(lambda: quantize_lines(graphs[0], output, quantize, options, stage_printer()))
    else:
        lines, ok = _onnx_errors(lambda: export_lines(graphs[0], output, weights, opset, dynamic,
                                                      not single, optimize, check, stage_printer()))
    for line in lines:
        click.echo(line)
    if not ok:
        sys.exit(1)


@main.command()
@click.argument("model", metavar="MODEL.onnx|SPEC")
@click.option("--input", "input_file", required=True, metavar="FILE",
              help=".npy/.npz array (batch first, or one example), or an image for image classifiers.")
@click.option("--provider", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--topk", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Save the output array (.npy) instead of printing top-k classes.")
@click.option("--weights", default=None, metavar="CKPT", help="With a SPEC: the trained weights (runs torch).")
@set_option
@preset_option
@import_root_option
def infer(model, input_file, provider, topk, output, weights, sets, preset):
    """Run MODEL.onnx with onnxruntime (or SPEC with --weights in torch) on an input file."""
    from archc.backends.onnx.commands import infer_onnx, infer_spec, is_onnx_file

    if is_onnx_file(model) and not Path(model).exists():
        raise UsageLine(f"no such file: {model}")
    require_file(input_file, "--input")
    require_file(weights, "--weights")
    if is_onnx_file(model):
        lines, note = _onnx_errors(lambda: infer_onnx(model, input_file, provider, topk, output))
        if note:  # one warning a line; a path or names from the file's metadata in them
            click.echo(printable(note, keep="\n"), err=True)
    else:
        graph = load_graphs(model, sets, preset, all_networks=False)[0]
        lines = _onnx_errors(lambda: infer_spec(graph, weights, input_file, topk, output))
    for line in lines:  # class names come from the model file or the checkpoint
        click.echo(printable(line))
