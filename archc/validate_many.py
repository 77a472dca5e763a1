"""`archc validate` over several specs at once: files, folders and `-` (standard input).

What CI jobs and editors need: every input is checked even after one fails, each ends in
an :class:`Outcome` (valid, with errors, or not found), and the command's exit status is
the worst of them (0 valid, 1 spec errors, 2 a path that is not there). Torch-free, like
the rest of `validate`.

A folder stands for every ``*.yaml`` / ``*.yml`` file below it, recursively (as linters
such as ruff or yamllint walk a folder), in sorted order; hidden folders (``.git``,
``.venv``) are skipped."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path

from archc.errors import Pos, SpecError, SpecErrors

STDIN = "-"
STDIN_NAME = "<stdin>"  # the file name of errors in a spec read from standard input
SUFFIXES = (".yaml", ".yml")


@dataclass
class Outcome:
    """What became of one input: its graphs when valid, else its errors, or a missing path."""

    file: str
    graphs: list = field(default_factory=list)
    errors: list[SpecError] = field(default_factory=list)
    not_found: str = ""  # the one-line message when the path is not there (exit 2)

    @property
    def status(self) -> str:
        return "not_found" if self.not_found else "invalid" if self.errors else "valid"

    @property
    def exit_code(self) -> int:
        return {"valid": 0, "invalid": 1, "not_found": 2}[self.status]


def missing_message(path: str) -> str:
    """The one line for a spec path that is not there, with a zoo name when one is close."""
    from archc.zoo import zoo_specs

    text = f"no such file: {path}"
    if "/" not in path and os.sep not in path and not path.endswith(SUFFIXES):
        names = [p.stem for p in zoo_specs()]
        close = difflib.get_close_matches(path, names, n=1)
        text += " (nor a zoo spec" + (f"; did you mean {close[0]}?)" if close else ": `archc zoo` lists them)")
    return text


def spec_files(folder: Path) -> list[Path]:
    """Every *.yaml / *.yml below ``folder``, hidden folders skipped, in sorted order."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root) / f for f in sorted(files) if f.endswith(SUFFIXES)]
    return found


def expand_inputs(args) -> list[str | Outcome]:
    """The specs to check, in the order given: a folder becomes its spec files; a path
    that is not there (or a folder without a spec) is already its Outcome."""
    from archc.api import split_target
    from archc.zoo import resolve

    inputs: list[str | Outcome] = []
    for arg in args:
        if arg == STDIN or (arg.startswith(STDIN + ":") and not Path(arg).exists()):
            inputs.append(arg)
            continue
        target = resolve(arg)
        path, network = split_target(target)
        if Path(path).is_dir():
            files = spec_files(Path(path))
            if network:
                inputs.append(Outcome(arg, not_found=f"{arg}: :NETWORK picks a network of one file, not of a folder"))
            elif not files:
                inputs.append(Outcome(arg, not_found=f"no spec (*.yaml, *.yml) in {path}"))
            else:
                inputs += [str(f) for f in files]
        elif Path(path).exists():
            inputs.append(target)
        else:
            inputs.append(Outcome(path, not_found=missing_message(path)))
    return inputs


def check(spec: str, overrides: dict, preset, target, read_stdin, stdin_name=None) -> Outcome:
    """Load and analyse every network of ``spec`` (and check ``target`` when given); a
    SpecErrors becomes the Outcome's errors. Other exceptions are bugs: they propagate.
    ``stdin_name``: the file that `-` stands for (an editor's unsaved buffer)."""
    from archc.api import split_target

    path, network = split_target(spec)
    name = stdin_name or STDIN_NAME
    try:
        if path == STDIN:
            graphs = _load_text(read_stdin(), name, network, overrides, preset)
        elif path.lower().endswith(".onnx"):  # a model archc did not write: imported in memory
            from archc.importers.onnx_view import onnx_graphs

            graphs = onnx_graphs(path, overrides, preset, network)
        else:
            from archc.api import load_all  # looked up at call time (tests replace it)

            graphs = load_all(spec, overrides, preset)
        target_errors = check_target(graphs, target)
        if target_errors:
            raise SpecErrors(target_errors)
    except SpecErrors as exc:
        return Outcome(name if path == STDIN else path, errors=exc.errors)
    return Outcome(name if path == STDIN else path, graphs=graphs)


def _load_text(text: str, name: str, network, overrides: dict, preset) -> list:
    """archc.api.load_all for a spec read from standard input: errors name the file
    ``name`` (`<stdin>` by default), and imports are found relative to its folder (the
    working directory for `<stdin>`)."""
    from archc.api import analysed_networks
    from archc.spec.document import load_document

    doc = load_document(name, text=text, preset=preset, overrides=overrides)
    return analysed_networks(doc, [network] if network else list(doc.networks))


def read_stdin_once(stream):
    """A reader of the spec text on ``stream()`` (a binary file), read at most once and at
    most the loader's size limit, shared by every `-` of the command line."""
    from archc.spec.loader import MAX_BYTES

    cache: list[str] = []

    def read() -> str:
        if not cache:
            data = stream().read(MAX_BYTES + 1)
            if len(data) > MAX_BYTES:
                raise SpecErrors.one(f"standard input is larger than {MAX_BYTES // 1024 // 1024} MiB",
                                     Pos(STDIN_NAME), fix="a network spec is a few kilobytes")
            try:
                cache.append(data.decode("utf-8"))
            except UnicodeDecodeError:
                raise SpecErrors.one("standard input is not UTF-8 text", Pos(STDIN_NAME),
                                     fix="pipe the spec file itself") from None
        return cache[0]

    return read


def check_target(graphs, target) -> list[SpecError]:
    """Errors of compiling ``graphs`` for ``target`` ("torch", "onnx" or None), torch-free:
    ops that cannot be exported, then names that cannot be code, bad `init` values."""
    errors: list[SpecError] = []
    if target == "onnx":
        errors = onnx_target_errors(graphs)
        if errors:  # what cannot be exported first; the torch check would repeat it
            return errors
    if target in ("torch", "onnx"):  # the ONNX export goes through the torch module
        from archc.backends.torch.codegen import generate

        for g in graphs:
            try:
                generate(g)
            except SpecErrors as exc:
                errors += exc.errors
    return errors


def onnx_target_errors(graphs, opset=None) -> list[SpecError]:
    """Ops that cannot be exported (or not at ``opset``), before any tracing."""
    from archc.backends.onnx.target import DEFAULT_OPSET, target_errors

    return [e for g in graphs for e in target_errors(g, opset or DEFAULT_OPSET, single_file=False)]


def summary_line(outcomes: list[Outcome]) -> str:
    """`3 specs: 2 valid, 1 with errors` (and `, 1 not found` when a path was not there)."""
    n = len(outcomes)
    count = {s: sum(o.status == s for o in outcomes) for s in ("valid", "invalid", "not_found")}
    text = f"{n} spec{'s' if n != 1 else ''}: {count['valid']} valid, {count['invalid']} with errors"
    if count["not_found"]:
        text += f", {count['not_found']} not found"
    return text
