"""The command line: a thin, typed shell over the API (click).

Exit status: 0 success, 1 the spec (or model, data) is invalid or a step failed,
2 usage errors (bad flag, missing file). Heavy commands import torch/onnx lazily."""

from __future__ import annotations

import os
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


# Packages of the optional extras (pyproject.toml), and the extra that brings each: the
# static commands need none of them, the others say what to install instead of failing.
OPTIONAL_MODULES = {
    "torch": "torch", "numpy": "train", "sklearn": "train", "PIL": "train",
    "matplotlib": "train", "onnx": "onnx", "onnxruntime": "onnx", "onnxscript": "onnx",
    "safetensors": "torch",
}
COMMAND_EXTRAS = {"train": "train", "evaluate": "train", "generate": "train", "export": "onnx", "infer": "onnx"}


class ArchcGroup(click.Group):
    """The command group. A spec error escaping a command is reported like any other; any
    other Python exception is a bug in archc: the user sees one line saying so, never a
    traceback (ARCHC_DEBUG=1 re-raises it, for developers), and the status is 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort,
                SystemExit, KeyboardInterrupt):
            raise
        except SpecErrors as exc:
            report_errors(exc)
        except ModuleNotFoundError as exc:
            extra = OPTIONAL_MODULES.get((exc.name or "").split(".")[0])
            if extra is None or os.environ.get("ARCHC_DEBUG"):
                raise
            extra = COMMAND_EXTRAS.get(ctx.invoked_subcommand, extra)
            click.echo(f"archc: error: `archc {ctx.invoked_subcommand}` needs the Python package "
                       f"{exc.name!r}, which is not installed — pip install 'archc[{extra}]'",
                       err=True)
            sys.exit(1)
        except BrokenPipeError:  # `archc ops | head`: the reader left; say nothing more
            # the interpreter flushes stdout again at exit: point it at /dev/null (Python's recipe)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except Exception as exc:  # noqa: BLE001 (the last line of defence)
            if os.environ.get("ARCHC_DEBUG"):
                raise
            text = printable(str(exc).splitlines()[0][:300]) if str(exc) else ""
            click.echo(f"archc: internal error: {type(exc).__name__}: {text} — this is a bug in "
                       "archc, please report it with the spec (ARCHC_DEBUG=1 shows the traceback)",
                       err=True)
            sys.exit(1)


@click.group(cls=ArchcGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="archc")
def main():
    """archc — compile declarative network specs to shapes, counts, PyTorch and ONNX."""


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


def check_onnx_target(graphs, opset=None) -> None:
    """Ops that cannot be exported (or not at ``opset``), before any tracing (torch-free)."""
    from archc.validate_many import onnx_target_errors

    errors = onnx_target_errors(graphs, opset)
    if errors:
        raise SpecErrors(errors)


@main.command()
@spec_argument
@set_option
@preset_option
@import_root_option
def expand(spec, sets, preset):
    """Print SPEC fully resolved: blocks, repeats, variables, conditions and imports expanded."""
    from archc.report.expanded import render_all

    click.echo(render_all(load_graphs(spec, sets, preset)), nl=False)


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


# --------------------------------------------------------------------------- training


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

    if nproc and nproc > 1 and int(os.environ.get("WORLD_SIZE", "1")) <= 1:  # not yet under torchrun
        from archc.train.distributed import launch, passthrough_args

        ctx = click.get_current_context()
        ctx.exit(launch(passthrough_args(ctx), nproc))
    if spec is None and resume is None:
        raise click.UsageError("give SPEC, or --resume RUN_DIR")
    require_file(resume, "--resume", "folder")
    require_file(init_from, "--init-from")
    path, network, overrides = _train_target(spec, sets, preset) if spec else (None, None, {})
    if batch_size == "auto":
        batch_size = _auto_batch(path, network, overrides, preset, memory_size, device, quiet, strategy, freeze)
    flags = {"data": data, "epochs": epochs, "batch_size": batch_size, "lr": lr, "device": device,
             "seed": seed, "init_from": init_from, "strategy": strategy, "compile": compile_ or None,
             "freeze": [f.strip() for f in freeze.split(",") if f.strip()] if freeze else None}

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


def stage_printer():
    """On a terminal, a stage line on stderr as each slow step starts (export can take a
    minute on a large network); piped or redirected, nothing: the output stays the result."""
    if not _stderr_is_terminal():
        return None
    return lambda stage: click.echo(f"export: {stage} …", err=True)


def _stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


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


# --------------------------------------------------------------------------- ONNX


def _onnx_errors(fn):
    """Run ``fn``; an OnnxError is one line and exit 1, a SpecErrors the usual report."""
    from archc.backends.onnx import OnnxError

    try:
        return fn()
    except OnnxError as exc:
        raise CliError(str(exc)) from None
    except SpecErrors as exc:
        report_errors(exc)


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


# --------------------------------------------------------------------------- import


@main.command("import")
@click.argument("model", metavar="MODEL.onnx|torchvision:NAME")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The spec (.yaml) to write.")
@click.option("--weights-out", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="The weights: .safetensors (default: beside the spec; torchvision: only when given) or .pt/.pth.")
def import_(model, output, weights_out):
    """Import an ONNX model, or a torchvision model traced by torch.fx, as an editable spec
    and its weights (docs/import.md)."""
    from archc.importers.onnx import WEIGHT_SUFFIXES, import_lines

    if weights_out and not weights_out.lower().endswith(WEIGHT_SUFFIXES):
        raise click.BadParameter(f"{weights_out}: use one of " + " ".join(WEIGHT_SUFFIXES),
                                 param_hint="--weights-out")
    if model.startswith("torchvision:"):
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


if __name__ == "__main__":
    main()
