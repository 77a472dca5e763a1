"""Models from elsewhere and side by side: ``archc import`` (an ONNX or torchvision model
to a spec and its weights) and ``archc diff`` (two networks compared node by node)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from archc.cli.common import FORMATS, UsageLine, parse_sets, require_file, resolve_spec
from archc.cli.group import main
from archc.completion import SpecType


@main.command("import")
@click.argument("model", metavar="MODEL.onnx|torchvision:NAME")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The spec (.yaml) to write.")
@click.option("--weights-out", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="The weights: .safetensors (default: beside the spec; torchvision: only when given) or .pt/.pth.")
def import_(model, output, weights_out):
    """Import an ONNX model, or a torchvision model traced by torch.fx, as an editable spec
    and its weights (docs/import.md)."""
    from archc.importers.onnx import import_lines, weights_path

    torchvision = model.startswith("torchvision:")
    if not torchvision:
        require_file(model, "MODEL")
    if not Path(output).name:  # '' or '..': no file name to write
        raise click.BadParameter(f"{output!r}: give the spec's file name (model.yaml)", param_hint="-o")
    written = {"--output": output}
    if weights_out or not torchvision:  # torchvision's weights are written only when asked for
        try:
            written["--weights-out"] = weights_path(output, weights_out)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--weights-out" if weights_out else "-o") from None
    for option, path in written.items():
        _check_written(option, Path(path), None if torchvision else Path(model))
    if torchvision:
        from archc.importers.torch_import import import_torchvision

        for line in import_torchvision(model.split(":", 1)[1], output, weights_out):
            click.echo(line)
        return
    for line in import_lines(model, output, weights_out):
        click.echo(line)


def _check_written(option: str, path: Path, model: Path | None) -> None:
    """A file import writes must not replace the model it reads, and its missing folders
    (made by the import) must not sit under a file: both said before the model is read."""
    if model is not None and path.resolve() == model.resolve():
        raise UsageLine(f"{option}: {path} is the model being imported — write the import elsewhere")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UsageLine(f"{option}: {folder} is a file, not a folder")


# --------------------------------------------------------------------------- diff


@main.command("diff")
@click.argument("a", metavar="A", type=SpecType())
@click.argument("b", metavar="B", type=SpecType())
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a variable on both sides.")
@click.option("--set-a", multiple=True, metavar="KEY=VALUE", help="Override a variable of A only.")
@click.option("--set-b", multiple=True, metavar="KEY=VALUE", help="Override a variable of B only.")
@click.option("--preset-a", default=None, help="A named preset of A.")
@click.option("--preset-b", default=None, help="A named preset of B.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--exit-code", is_flag=True, help="Exit 1 when A and B differ (as git diff --exit-code).")
def diff(a, b, sets, set_a, set_b, preset_a, preset_b, fmt, exit_code):
    """Compare two networks node by node: specs (FILE or FILE:NETWORK), zoo names or .onnx files."""
    from archc.report.diff import compare, load_side, render

    sides = []
    for target, own, preset in ((a, set_a, preset_a), (b, set_b, preset_b)):
        if target.lower().endswith(".onnx"):
            require_file(target, "MODEL")
        else:
            target = resolve_spec(target)
        sides.append(load_side(target, parse_sets(sets) | parse_sets(own), preset))
    d = compare(*sides)
    click.echo(render(d, fmt), nl=False)
    sys.exit(1 if exit_code and not d.identical else 0)
