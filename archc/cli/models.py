"""Models from elsewhere and side by side: ``archc import`` (an ONNX or torchvision model
to a spec and its weights) and ``archc diff`` (two networks compared node by node)."""

from __future__ import annotations

import sys

import click

from archc.cli.common import FORMATS, parse_sets, require_file, resolve_spec
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
    if weights_out or not torchvision:  # torchvision's weights are written only when asked for
        try:
            weights_path(output, weights_out)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--weights-out" if weights_out else "-o") from None
    if torchvision:
        from archc.importers.torch_import import import_torchvision

        for line in import_torchvision(model.split(":", 1)[1], output, weights_out):
            click.echo(line)
        return
    require_file(model, "MODEL")
    for line in import_lines(model, output, weights_out):
        click.echo(line)


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
