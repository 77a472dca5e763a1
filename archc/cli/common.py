"""The pieces every command shares: its errors (one line, exit 1 or 2), reading SPEC
and --set, the options several commands take, and running a slow step (training, ONNX)
so that its failures read like the rest."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from archc.completion import SpecType
from archc.errors import SpecErrors
from archc.printable import printable


FORMATS = ["table", "json", "markdown"]


class CliError(click.ClickException):
    """A failure that is not the user's typing: printed as one line, exit 1."""

    exit_code = 1

    def show(self, file=None):  # the message may quote a spec, a file name, a model's metadata
        click.echo(f"archc: error: {printable(self.message)}", err=True)


def parse_sets(items) -> dict:
    from archc.spec.document import parse_override

    out = {}
    for item in items:
        try:
            key, value = parse_override(item)
        except SpecErrors as exc:
            e = exc.errors[0]
            raise click.BadParameter(printable(e.message + (f" — {e.fix}" if e.fix else "")),
                                     param_hint="--set") from None
        out[key] = value
    return out


def report_errors(exc: SpecErrors) -> None:
    for e in exc.errors:
        click.echo(e.render(), err=True)
    n = len(exc.errors)
    click.echo(f"{n} error{'s' if n != 1 else ''}", err=True)
    sys.exit(1)


class UsageLine(click.UsageError):
    """A usage error that needs no usage text (a path that is not there): one line, exit 2,
    the same in every command."""

    def show(self, file=None):
        click.echo(f"archc: error: {printable(self.message)}", err=True)


def resolve_spec(spec: str) -> str:
    from archc.api import split_target
    from archc.validate_many import missing_message
    from archc.zoo import resolve

    if "\0" in spec:  # no file name holds one (only the API and a test can pass it)
        raise UsageLine("the spec path contains a NUL character")
    if not spec.strip():  # Path("") is the current folder
        raise UsageLine("the spec path is empty — give a spec file or a zoo name (archc zoo)")
    spec = resolve(spec)
    path, _ = split_target(spec)
    if not Path(path).exists():
        raise UsageLine(missing_message(path))
    if Path(path).is_dir():
        raise UsageLine(f"{path} is a folder, not a spec file")
    return spec


def require_file(path, option: str, what: str = "file") -> None:
    """A file (or folder) named by an option (--weights, --input, --resume) must be there:
    said in one line, exit 2, before anything slow is imported."""
    if path is not None and "\0" in str(path):
        raise UsageLine(f"{option}: the path contains a NUL character")
    if path is not None and not Path(path).exists():
        raise UsageLine(f"{option}: no such {what}: {path}")


def load_graphs(spec: str, sets, preset, all_networks=True, onnx=False):
    from archc.api import load, load_all

    try:
        if onnx and spec.lower().endswith(".onnx"):  # imported in memory (archc/importers/onnx_view.py)
            from archc.importers.onnx_view import onnx_graphs

            require_file(spec, "SPEC")
            return onnx_graphs(spec, parse_sets(sets), preset)
        spec = resolve_spec(spec)
        return load_all(spec, parse_sets(sets), preset) if all_networks else [load(spec, None, parse_sets(sets), preset)]
    except SpecErrors as exc:
        report_errors(exc)


# SpecType completes spec files, folders, zoo names and FILE:NETWORK in the shell
spec_argument = click.argument("spec", metavar="SPEC[:NETWORK]", type=SpecType())
set_option = click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                          help="Override a variable (or input, train.KEY); VALUE is YAML.")
preset_option = click.option("--preset", default=None, help="Choose a named preset of variables.")


def _import_roots(ctx, param, folders):
    if folders:
        from archc.spec.imports import add_user_roots

        ctx.call_on_close(add_user_roots(folders))


# where a spec's imports may be read from besides its own folder (archc/spec/imports.py)
import_root_option = click.option(
    "--import-root", multiple=True, metavar="DIR", expose_value=False, callback=_import_roots,
    type=click.Path(exists=True, file_okay=False), help="A library folder imports may read "
    "(repeatable; also ARCHC_IMPORT_PATH). Default: the spec's own folder only.")


def _no_memory_check(ctx, param, skip):
    if skip:
        from archc.analysis.budget import skip_checks

        ctx.call_on_close(skip_checks())


# commands that allocate a network: its size is checked against memory first (archc/analysis/budget.py)
memory_check_option = click.option(
    "--no-memory-check", is_flag=True, expose_value=False, callback=_no_memory_check,
    help="Allocate the network even when its estimated size exceeds the memory available.")


def _train_target(spec: str, sets, preset):
    """(path, network, overrides) of SPEC[:NETWORK], checked like the other commands."""
    from archc.api import split_target

    path, network = split_target(resolve_spec(spec))
    return path, network, parse_sets(sets)


def _run_training(fn):
    """Run ``fn``; TrainError/SpecErrors become one clear message and exit 1."""
    from archc.train.errors import TrainError

    try:
        return fn()
    except SpecErrors as exc:
        report_errors(exc)
    except TrainError as exc:
        raise CliError(str(exc)) from None
    except KeyboardInterrupt:
        raise CliError("interrupted; the last finished epoch is in RUN_DIR/last.pt (continue with --resume)") from None


def _onnx_errors(fn):
    """Run ``fn``; an OnnxError is one line and exit 1, a SpecErrors the usual report."""
    from archc.backends.onnx import OnnxError

    try:
        return fn()
    except OnnxError as exc:
        raise CliError(str(exc)) from None
    except SpecErrors as exc:
        report_errors(exc)
