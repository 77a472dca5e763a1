"""The command group ``archc``: every command registers on ``main``, and any error that
escapes a command is said in one line, exit 1, never a traceback."""

from __future__ import annotations

import os
import sys

import click

from archc.cli.common import report_errors
from archc.errors import SpecErrors
from archc.printable import printable


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
