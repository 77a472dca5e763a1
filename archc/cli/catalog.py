"""What archc ships: ``archc zoo`` (the bundled reference specs) and ``archc ops`` (the op
kinds and their attributes)."""

from __future__ import annotations

import click

from archc.cli.common import CliError
from archc.cli.group import main
from archc.errors import SpecErrors


@main.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def zoo(fmt):
    """List the bundled reference specs: name, input, params, MACs."""
    import json

    from archc.api import load_all
    from archc.report import numbers as N
    from archc.zoo import zoo_specs

    entries = []
    for path in zoo_specs():
        try:
            graphs = load_all(str(path))
        except SpecErrors as exc:
            entries.append((path.stem, None, f"invalid: {exc.errors[0].message}"))
            continue
        for g in graphs:
            label = path.stem if len(graphs) == 1 else f"{path.stem}:{g.name}"
            entries.append((label, g, ""))
    if fmt == "json":
        click.echo(json.dumps([{"spec": label, "input_shape": list(g.input_shape),
                                "total_params": g.summary.total_params, "macs": g.summary.macs}
                               for label, g, _ in entries if g], indent=2))
        return
    click.echo(f"{'SPEC':<26} {'INPUT':<15} {'PARAMS':>13} {'MACs':>11}")
    for label, g, problem in entries:
        if g is None:
            click.echo(f"{label:<26} {problem}")
        else:
            s = g.summary
            click.echo(f"{label:<26} {N.shape(s.input_shape):<15} {N.count(s.total_params):>13} "
                       f"{N.si(s.macs):>11}")


@main.command()
@click.argument("names", nargs=-1, metavar="[OP]...")
def ops(names):
    """List the op kinds with their attributes, or describe the ops named (`archc ops conv2d`)."""
    from archc.ops.registry import REQUIRED, all_ops, get_op, suggest

    if names:
        from archc.docs import describe

        for i, name in enumerate(names):
            op = get_op(name)
            if op is None:
                raise CliError(f"unknown op `{name}` — {suggest(name, all_ops())}")
            click.echo(("\n" if i else "") + describe(op), nl=False)
        return
    for name, op in sorted(all_ops().items()):
        attrs = ", ".join(k if a.default is REQUIRED else f"{k}={a.default!r}" for k, a in op.attrs.items())
        click.echo(f"{name:<22} {op.doc}")
        if attrs:
            click.echo(f"{'':<22} {attrs}")
