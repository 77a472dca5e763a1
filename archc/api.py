"""The Python API: load a spec into an analysed graph (torch-free).

>>> import archc
>>> g = archc.load("archc: 1\\ninput: [4]\\nlayers:\\n  - linear: {out: 2}\\n")
>>> g.summary.total_params
10
"""

from __future__ import annotations

import os
from pathlib import Path

from archc.analysis.analyse import analyse
from archc.errors import SpecErrors
from archc.gcpause import gc_paused
from archc.ir.graph import Graph
from archc.spec.document import Document, load_document
from archc.spec.expand import expand


def split_target(target: str) -> tuple[str, str | None]:
    """``FILE:NAME`` -> (FILE, NAME); a plain path (even with a drive colon) -> (path, None)."""
    path, sep, name = str(target).rpartition(":")
    if sep and path and name and "/" not in name and "\\" not in name and not Path(target).exists():
        return path, name
    return str(target), None


def _looks_like_text(source) -> bool:
    return isinstance(source, str) and ("\n" in source or source.lstrip().startswith("archc:"))


def load_doc(source, preset: str | None = None, overrides: dict | None = None) -> tuple[Document, str | None]:
    if _looks_like_text(source):
        return load_document(text=source, preset=preset, overrides=overrides), None
    from archc.zoo import resolve

    path, network = split_target(resolve(os.fspath(source)))  # "lenet5" names the zoo spec, as on the CLI
    return load_document(path, preset=preset, overrides=overrides), network


@gc_paused
def load(source, network: str | None = None, overrides: dict | None = None,
         preset: str | None = None) -> Graph:
    """Load, validate, expand and analyse one network.

    ``source`` is a path (``"specs/dcgan.yaml:generator"`` picks a network), a zoo name
    (``"lenet5"``, ``"dcgan:generator"``), or YAML text.
    ``overrides`` maps variables (or ``input``, ``train.epochs``) to values, as ``--set``.
    Raises :class:`archc.errors.SpecErrors` listing every problem found.
    """
    doc, chosen = load_doc(source, preset, overrides)
    graph = expand(doc, network or chosen)
    graph.summary = analyse(graph)
    return graph


@gc_paused
def load_all(source, overrides: dict | None = None, preset: str | None = None) -> list[Graph]:
    """Every network of a file (or the one named by ``FILE:NAME``), analysed; errors of all
    networks are collected before raising."""
    doc, chosen = load_doc(source, preset, overrides)
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
