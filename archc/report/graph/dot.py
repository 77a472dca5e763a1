"""Graphviz DOT source, and SVG/PNG rendered from it by the `dot` program.

Expanded block instances become nested ``subgraph cluster_*``; a collapsed instance is one
box (double border). Identifiers are always quoted, so dotted node names are safe."""

from __future__ import annotations

import shutil
import subprocess

from archc.ir.graph import Graph
from archc.report.graph import view

INSTALL_HINT = "install Graphviz (Debian/Ubuntu package `graphviz`: apt-get install graphviz)"


SKIP_STYLE = ' [color="#d9730d", penwidth=1.4]'  # orange, as in the HTML page


class GraphvizMissing(RuntimeError):
    """The `dot` program is not installed."""


def quote(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _box(b: view.Box, indent: str) -> str:
    label = quote("\n".join(b.lines))
    style = ', peripheries=2, style="rounded,filled", fillcolor="#eef3fb"' if b.is_block else ""
    return f"{indent}{quote(b.id)} [label={label}{style}];"


def render(g: Graph, depth: int = view.UNLIMITED) -> str:
    """The DOT source of ``g`` with instances deeper than ``depth`` collapsed."""
    members, children = view.tree(g, depth)
    lines = [f"digraph {quote(g.name)} {{", "  rankdir=TB;",
             '  node [shape=box, style=rounded, fontname="Helvetica", fontsize=10];',
             '  edge [arrowsize=0.6];']
    lines += _cluster_body(None, members, children, "  ")
    skips = view.skip_edges(g, depth)
    lines += [f"  {quote(a)} -> {quote(b)}{SKIP_STYLE if (a, b) in skips else ''};"
              for a, b in view.edges(g, depth)]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _cluster_body(cid, members, children, indent) -> list[str]:
    out = [_box(b, indent) for b in members.get(cid, [])]
    for inst in children.get(cid, []):
        out.append(f"{indent}subgraph {quote('cluster_' + inst.id)} {{")
        out.append(f"{indent}  label={quote(f'{inst.label} ({inst.block})')}; style=rounded; "
                   'color="#7a8ca8"; fontname="Helvetica"; fontsize=10;')
        out += _cluster_body(inst.id, members, children, indent + "  ")
        out.append(f"{indent}}}")
    return out


def run_dot(source: str, fmt: str) -> bytes:
    """Render DOT ``source`` to ``fmt`` (svg, png) with Graphviz; GraphvizMissing if absent."""
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizMissing(f"the `dot` program is not installed — {INSTALL_HINT}")
    done = subprocess.run([exe, f"-T{fmt}"], input=source.encode(), capture_output=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"dot -T{fmt} failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout
