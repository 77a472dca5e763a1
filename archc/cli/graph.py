"""``archc graph``: a network drawn to a picture file (Graphviz, Mermaid, HTML)."""

from __future__ import annotations

from pathlib import Path

import click

from archc.cli.common import CliError, import_root_option, load_graphs, preset_option, set_option, spec_argument
from archc.cli.group import main


@main.command()
@spec_argument
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, writable=True),
              help="Picture file; its suffix picks the format: .dot .svg .png .mmd .html")
@click.option("--collapse-blocks/--expand-blocks", "collapse", default=None,
              help="Draw each block instance as one box, or open every block "
                   "(default: open; the .html page opens the top level only).")
@click.option("--depth", type=click.IntRange(min=0), default=None, metavar="N",
              help="Open blocks nested at most N deep; deeper ones are one box each.")
@set_option
@preset_option
@import_root_option
def graph(spec, output, collapse, depth, sets, preset):
    """Draw SPEC's network to a picture file (Graphviz, Mermaid or a self-contained HTML page).

    SPEC may be an .onnx file: it is imported in memory (nothing written)."""
    from archc.report.graph import SUFFIXES, UNLIMITED, write

    if Path(output).suffix.lower() not in SUFFIXES:
        raise click.BadParameter(f"{output}: the suffix picks the format, one of "
                                 + " ".join(SUFFIXES), param_hint="--output")
    if collapse is False and depth is not None:
        raise click.UsageError("--expand-blocks opens every block; leave out --depth or use --collapse-blocks")
    if depth is None and collapse is not None:
        depth = 0 if collapse else UNLIMITED
    graphs = load_graphs(spec, sets, preset, onnx=True)
    if not graphs:
        raise CliError(f"{spec} is a library of blocks: no network to draw")
    if len(graphs) > 1:
        names = ", ".join(g.name for g in graphs)
        raise click.UsageError(f"draw one network at a time: SPEC:NAME with NAME one of {names}")
    try:
        path = write(graphs[0], output, depth)
    except (RuntimeError, OSError) as exc:  # Graphviz or the layout library missing, a failed write
        raise CliError(str(exc)) from None
    click.echo(f"wrote {path}")
