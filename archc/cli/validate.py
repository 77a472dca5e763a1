"""Reading a spec: ``archc validate`` (the shape-and-parameter report, the errors, the
lint warnings) and ``archc expand`` (the spec fully resolved)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from archc.cli.common import (FORMATS, import_root_option, load_graphs, parse_sets, preset_option,
                              set_option, spec_argument)
from archc.cli.group import main
from archc.completion import SpecType
from archc.printable import printable


@main.command()
@click.argument("specs", nargs=-1, required=True, metavar="SPEC[:NETWORK]...", type=SpecType())
@set_option
@preset_option
@import_root_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="table (the default for one spec), json or markdown; several specs without "
                   "--format print one line each.")
@click.option("--target", type=click.Choice(["torch", "onnx"]), default=None,
              help="Also check that every op can be compiled for this backend.")
@click.option("--stdin-name", default=None, metavar="FILE",
              help="The file that - stands for (an editor's buffer): errors name it, imports are found beside it.")
@click.option("--hints", is_flag=True,
              help="Also print info notes (channels off tensor cores' multiple of 8); warnings are always printed.")
def validate(specs, sets, preset, fmt, target, stdin_name, hints):
    """Validate each SPEC and print its shape-and-parameter report.

    SPEC is a spec file (FILE:NAME picks one of its networks), a zoo name, a folder (every
    *.yaml and *.yml below it, hidden folders skipped), - (the spec on standard input) or an
    .onnx file (imported in memory, nothing written: docs/import.md).
    Every spec is checked even after one fails; with several, a summary line ends the
    output, and the exit status is the worst: 0 all valid, 1 spec errors, 2 a path that is
    not there. --format json prints the report, or the errors, as JSON (docs/json.md).
    Lint warnings (docs/spec.md#warnings) follow on stderr and never change the status."""
    from archc.validate_many import Outcome, check, expand_inputs, read_stdin_once, summary_line

    overrides = parse_sets(sets)
    inputs = expand_inputs(specs)
    several = len(inputs) > 1 or any(Path(a).is_dir() for a in specs)  # a folder: a summary too
    read = read_stdin_once(lambda: sys.stdin.buffer)
    outcomes = []
    for item in inputs:
        outcome = item if isinstance(item, Outcome) else check(item, overrides, preset, target, read, stdin_name)
        outcomes.append(outcome)
        show_outcome(outcome, fmt or ("table" if not several else None), several)
        show_warnings(outcome, hints, several)
    if several:
        click.echo(summary_line(outcomes), err=True)
        if fmt == "json":
            from archc.report.errors_json import dumps, results_document

            click.echo(dumps(results_document(outcomes)))
    sys.exit(max(o.exit_code for o in outcomes))


def show_outcome(o, fmt, several: bool) -> None:
    """One spec's result: the report (or a line) on stdout, errors on stderr. In JSON with
    several specs, stdout gets one document at the end instead."""
    if o.status == "valid":
        if fmt is None:  # a file found in a folder: its name is anyone's text
            click.echo(printable(f"{o.file}: valid ({_networks_line(o.graphs)})"))
        elif not (several and fmt == "json"):
            show_reports(o.graphs, fmt)
        return
    if o.not_found:
        click.echo(f"archc: error: {printable(o.not_found)}", err=True)
    else:
        for e in o.errors:
            click.echo(e.render(), err=True)
        n = len(o.errors)
        click.echo(printable(f"{o.file + ': ' if several else ''}{n} error{'s' if n != 1 else ''}"), err=True)
    if fmt == "json" and not several:
        from archc.report.errors_json import dumps, outcome_errors

        click.echo(dumps(outcome_errors(o)))


def show_warnings(o, hints: bool, several: bool) -> None:
    """A valid spec's lint findings on stderr, after its report: warnings, and info notes
    with --hints. They never change the exit status."""
    from archc.analysis.lint import lint, visible

    found = [f for g in o.graphs for f in visible(lint(g), hints)]
    for f in found:
        click.echo(f.render(), err=True)
    if found:
        counts = {s: sum(f.severity == s for f in found) for s in ("warning", "info")}
        names = {"warning": ("warning", "warnings"), "info": ("info note", "info notes")}
        text = ", ".join(f"{n} {names[s][n != 1]}" for s, n in counts.items() if n)
        click.echo(printable(f"{o.file + ': ' if several else ''}{text}"), err=True)


def _networks_line(graphs) -> str:
    from archc.report import numbers as N

    if not graphs:
        return "a library of blocks, no network"
    return "; ".join(f"{g.name}: {N.count(g.summary.total_params)} params" for g in graphs)


def show_reports(graphs, fmt: str) -> None:
    """The report of a valid spec's networks in ``fmt`` (table, json, markdown)."""
    if not graphs and fmt != "json":  # JSON says the same as {"networks": []}
        click.echo("valid: a library of blocks, no network")
        return
    if fmt == "json":
        from archc.report.json_report import render

        click.echo(render(graphs))
    elif fmt == "markdown":
        from archc.report.markdown import render

        click.echo("\n".join(render(g) for g in graphs))
    else:
        from rich.console import Console

        from archc.report.table import render

        console = Console(width=80 if not sys.stdout.isatty() else None)  # piped: 80 columns
        for g in graphs:
            render(g, console)


@main.command()
@spec_argument
@set_option
@preset_option
@import_root_option
def expand(spec, sets, preset):
    """Print SPEC fully resolved: blocks, repeats, variables, conditions and imports expanded."""
    from archc.cli.common import CliError
    from archc.report.expanded import render_all

    graphs = load_graphs(spec, sets, preset)
    if not graphs:  # a library: its blocks expand where a network calls them
        raise CliError(f"{spec}: a library of blocks, no network to expand — expand a spec that imports "
                       "and calls its blocks")
    click.echo(render_all(graphs), nl=False)
