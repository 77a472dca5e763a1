"""`archc graph`: pictures of a network. The output file's suffix picks the format:

* ``.dot`` — Graphviz source; ``.svg`` / ``.png`` — rendered by Graphviz's `dot` program;
* ``.mmd`` — Mermaid flowchart (GitHub renders it inside a ```mermaid block);
* ``.html`` — one self-contained interactive page (no network access, no CDN).

Block instances deeper than ``depth`` are drawn as one box (in the HTML page: start
closed, and open with a click). See docs/graph.md.
"""

from __future__ import annotations

from pathlib import Path

from archc.ir.graph import Graph
from archc.report.graph.view import UNLIMITED

__all__ = ["SUFFIXES", "UNLIMITED", "default_depth", "render", "write"]

SUFFIXES = (".dot", ".gv", ".svg", ".png", ".mmd", ".html")
HTML_DEPTH = 1  # the page opens the top-level blocks; the reader opens the rest


def default_depth(suffix: str) -> int:
    """Static pictures show everything; the interactive page starts with top-level blocks open."""
    return HTML_DEPTH if suffix == ".html" else UNLIMITED


def render(g: Graph, suffix: str, depth: int | None = None) -> bytes:
    """The picture of ``g`` in the format of ``suffix`` (one of SUFFIXES), as bytes."""
    depth = default_depth(suffix) if depth is None else depth
    if suffix == ".html":
        from archc.report.graph import html

        return html.render(g, depth).encode()
    if suffix == ".mmd":
        from archc.report.graph import mermaid

        return mermaid.render(g, depth).encode()
    from archc.report.graph import dot

    source = dot.render(g, depth)
    if suffix in (".dot", ".gv"):
        return source.encode()
    return dot.run_dot(source, suffix[1:])


def write(g: Graph, path: str | Path, depth: int | None = None) -> Path:
    """Write the picture of ``g`` to ``path``; the suffix picks the format."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"unknown picture format {path.suffix or '(none)'!r} — use one of "
                         + ", ".join(SUFFIXES))
    data = render(g, suffix, depth)
    path.write_bytes(data)
    return path
