"""Mermaid flowchart source (`.mmd`), which GitHub renders inside a ```mermaid block.

Mermaid identifiers must be simple words, so every box and cluster gets a generated id
(``n0``, ``n1`` ... and ``b0``, ``b1`` ...); the real names are in the labels."""

from __future__ import annotations

from archc.ir.graph import Graph
from archc.report.graph import view


def label(text: str) -> str:
    """A quoted Mermaid label: quotes and angle brackets as entity codes, lines as <br/>."""
    text = text.replace("#", "#35;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    return '"' + text.replace("\n", "<br/>") + '"'


def render(g: Graph, depth: int = view.UNLIMITED) -> str:
    """The Mermaid source of ``g`` with instances deeper than ``depth`` collapsed."""
    ids = {b.id: f"n{i}" for i, b in enumerate(view.boxes(g, depth))}
    cids = {inst.id: f"b{i}" for i, inst in enumerate(view.expanded_instances(g, depth))}
    members, children = view.tree(g, depth)

    def body(cid, indent) -> list[str]:
        out = []
        for b in members.get(cid, []):
            shape = ("[[", "]]") if b.is_block else ("[", "]")
            out.append(f"{indent}{ids[b.id]}{shape[0]}{label(chr(10).join(b.lines))}{shape[1]}")
        for inst in children.get(cid, []):
            out.append(f"{indent}subgraph {cids[inst.id]}[{label(f'{inst.label} ({inst.block})')}]")
            out += body(inst.id, indent + "  ")
            out.append(f"{indent}end")
        return out

    pairs = view.edges(g, depth)
    lines = ["flowchart TB"] + body(None, "  ") + [f"  {ids[a]} --> {ids[b]}" for a, b in pairs]
    skips = view.skip_edges(g, depth)
    orange = [str(i) for i, pair in enumerate(pairs) if pair in skips]  # linkStyle counts edges
    if orange:
        lines.append(f"  linkStyle {','.join(orange)} stroke:#d9730d,stroke-width:2px")
    return "\n".join(lines) + "\n"
