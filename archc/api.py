"""The Python API: load a spec into an analysed graph (torch-free).

A string given as ``source`` is a path (``FILE:NAME``) or a zoo name, whatever it holds —
a newline, a leading ``archc:``. YAML text is read as text only when the caller says so:
:func:`loads`, or ``text=`` (docs/python-api.md, "Paths and text").

>>> import archc
>>> g = archc.loads("archc: 1\\ninput: [4]\\nlayers:\\n  - linear: {out: 2}\\n")
>>> g.summary.total_params
10
"""

from __future__ import annotations

import os
from pathlib import Path

from archc.analysis.analyse import analyse
from archc.errors import Pos, SpecErrors
from archc.gcpause import gc_paused
from archc.ir.graph import Graph
from archc.printable import printable
from archc.spec.document import Document, load_document
from archc.spec.expand import expand


def _exists(name: str) -> bool:
    try:
        return Path(name).exists()
    except (OSError, ValueError):  # a name too long for the file system, a NUL: no such file
        return False


def split_target(target: str) -> tuple[str, str | None]:
    """``FILE:NAME`` -> (FILE, NAME); a plain path (even with a drive colon) -> (path, None)."""
    path, sep, name = str(target).rpartition(":")
    if sep and path and name and "/" not in name and "\\" not in name and not _exists(target):
        return path, name
    return str(target), None


# a name longer than this is shown cut in errors (YAML text passed as a path is kilobytes)
SHOWN = 60


def _looks_like_text(name: str) -> bool:
    """A name that is more likely YAML text than a file name: its error says how to read
    text. Only the message depends on it — such a string is a path like any other."""
    return "\n" in name or name.lstrip(" \t{").startswith("archc:")


def missing_text_path(name: str) -> SpecErrors:
    """The missing-file error (as for any spec path, archc/spec/document.py read_text) for a
    name that looks like YAML text: shown escaped and cut, with the way to read text."""
    shown = printable(name)
    if len(shown) > SHOWN:
        shown = shown[:SHOWN - 3] + "..."
    return SpecErrors.one("cannot read file: No such file or directory", Pos(shown),
                          fix="check the path; to read YAML text, use archc.loads(text) (or text=)")


def load_doc(source=None, preset: str | None = None, overrides: dict | None = None, *,
             text: str | None = None) -> tuple[Document, str | None]:
    """The document of ``source`` (a path, ``FILE:NAME``, a zoo name) or of ``text``, and
    the network ``FILE:NAME`` picked. A string ``source`` is never parsed as YAML."""
    if (source is None) == (text is None):
        raise TypeError("give a spec path (or zoo name) or text=, one of them")
    if text is not None:
        if not isinstance(text, str):
            raise TypeError(f"text= is the YAML text of a spec (str), got {type(text).__name__}")
        return load_document(text=text, preset=preset, overrides=overrides), None
    from archc.zoo import resolve

    name = os.fspath(source)
    # FILE of FILE:NAME counts as a regular file only: "archc: 1" would name the folder
    # archc/ of a source tree (anything named `name` itself is read, and refused if special)
    if isinstance(name, str) and _looks_like_text(name) and not _exists(name) \
            and not os.path.isfile(split_target(name)[0]):
        raise missing_text_path(name)
    path, network = split_target(resolve(name))  # "lenet5" names the zoo spec, as on the CLI
    return load_document(path, preset=preset, overrides=overrides), network


@gc_paused
def load(source=None, network: str | None = None, overrides: dict | None = None,
         preset: str | None = None, *, text: str | None = None) -> Graph:
    """Load, validate, expand and analyse one network.

    ``source`` is a path (``"specs/dcgan.yaml:generator"`` picks a network) or a zoo name
    (``"lenet5"``, ``"dcgan:generator"``); ``text=`` is the YAML text of a spec instead
    (as :func:`loads`). ``overrides`` maps variables (or ``input``, ``train.epochs``) to
    values, as ``--set``. Raises :class:`archc.errors.SpecErrors` listing every problem.
    """
    doc, chosen = load_doc(source, preset, overrides, text=text)
    graph = expand(doc, network or chosen)
    graph.summary = analyse(graph)
    return graph


def loads(text: str, network: str | None = None, overrides: dict | None = None,
          preset: str | None = None) -> Graph:
    """:func:`load` for the YAML text of a spec (``json.loads`` to ``load``'s file): errors
    name the file ``<string>``, imports are found from the working directory.

    >>> import archc
    >>> archc.loads("archc: 1\\ninput: [4]\\nlayers:\\n  - linear: {out: 3}\\n").outputs
    ['linear_1']
    """
    return load(network=network, overrides=overrides, preset=preset, text=text)


@gc_paused
def load_all(source=None, overrides: dict | None = None, preset: str | None = None, *,
             text: str | None = None) -> list[Graph]:
    """Every network of a file (or the one named by ``FILE:NAME``), or of ``text=``,
    analysed; errors of all networks are collected before raising."""
    doc, chosen = load_doc(source, preset, overrides, text=text)
    return analysed_networks(doc, [chosen] if chosen else list(doc.networks))


def analysed_networks(doc: Document, names: list) -> list[Graph]:
    """The named networks of a loaded document, expanded and analysed; the errors of all of
    them are collected before raising."""
    graphs, errors = [], []
    for name in names:
        try:
            g = expand(doc, name)
            g.summary = analyse(g)
            graphs.append(g)
        except SpecErrors as exc:
            errors += exc.errors
    if errors:
        raise SpecErrors(errors)
    return graphs
