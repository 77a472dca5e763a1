"""``archc compile``: a network to PyTorch, as a readable source file or its initial weights."""

from __future__ import annotations

from pathlib import Path

import click

from archc.cli.common import (CliError, UsageLine, import_root_option, load_graphs, memory_check_option,
                              preset_option, report_errors, set_option, spec_argument)
from archc.cli.group import main
from archc.errors import SpecErrors


COMPILE_SUFFIXES = (".py", ".pt", ".pth", ".safetensors")


@main.command("compile")
@spec_argument
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="model.py: the standalone PyTorch source; model.pt/.pth: the freshly "
                   "initialised state_dict (torch.save); model.safetensors: the same as safetensors.")
@click.option("--print", "show", is_flag=True, help="Print the generated source on stdout.")
@click.option("--seed", type=int, default=None, help="Seed of the initial weights (default: train.seed).")
@click.option("--init", "init", default=None, metavar="SCHEME",
              help="Default initialisation, overriding train.init (YAML: he_normal, "
                   "'{name: normal, std: 0.02}').")
@set_option
@preset_option
@import_root_option
@memory_check_option
def compile_(spec, output, show, seed, init, sets, preset):
    """Compile SPEC[:NETWORK] to PyTorch: a readable source file or initial weights."""
    from archc.backends.torch.codegen import generate
    from archc.spec.loader import load_value

    if output is None and not show:
        raise click.UsageError("give -o FILE (.py, .pt, .safetensors) or --print")
    suffix = Path(output).suffix.lower() if output else ""
    if output and suffix not in COMPILE_SUFFIXES:
        raise click.BadParameter(f"{output}: the suffix picks what is written, one of "
                                 + " ".join(COMPILE_SUFFIXES), param_hint="--output")
    if output and not Path(output).parent.is_dir():  # said before the work, as for a missing SPEC
        raise UsageLine(f"--output: no such folder: {Path(output).parent}")
    graph = load_graphs(spec, sets, preset, all_networks=False)[0]
    try:
        init = load_value(init, "--init") if init is not None else None
        source = generate(graph, init)
    except SpecErrors as exc:
        report_errors(exc)
    if show:
        click.echo(source, nl=False)
    if suffix == ".py":
        Path(output).write_text(source, encoding="utf-8")
    elif output:
        save_weights(graph, output, suffix, seed, init)
    if output:
        click.echo(f"wrote {output}", err=show)


def save_weights(graph, output: str, suffix: str, seed, init) -> None:
    """The freshly initialised state_dict of ``graph`` to ``output`` (imports torch)."""
    from archc.backends.torch.build import build

    model = build(graph, seed=seed, init=init)
    state = model.state_dict()
    if suffix == ".safetensors":
        try:
            from safetensors.torch import save_file
        except ImportError:
            raise CliError("writing .safetensors needs the safetensors package "
                           "(pip install safetensors); .pt works without it") from None
        save_file(distinct_tensors(state), output)
    else:
        import torch

        torch.save(state, output)


def distinct_tensors(state: dict) -> dict:
    """``state`` with no two tensors sharing memory, as safetensors requires: a tied weight
    (``tie:``) is under two keys of one tensor, and the second key gets a copy."""
    seen, out = set(), {}
    for key, value in state.items():
        value = value.contiguous()
        ptr = value.untyped_storage().data_ptr()
        out[key] = value.clone() if ptr in seen and value.numel() else value
        seen.add(ptr)
    return out
