"""A Markdown summary that pastes into a README; the same numbers as the table."""

from __future__ import annotations

from archc.ir.graph import Graph
from archc.printable import markdown_text
from archc.report.table import rows, totals
from archc.report import variant


def render(g: Graph) -> str:
    # the name is the spec's free text: Markdown renders raw HTML, so it goes in escaped
    out = [f"### {markdown_text(variant.label(g))}", "",
           "| Layer | Op | Output shape | Params | MACs | RF |", "|---|---|---|---:|---:|---:|"]
    for depth, label, op, shape, params, macs, rf in rows(g):
        name = "&nbsp;&nbsp;" * depth + (f"**{label}**" if not shape else f"`{label}`")
        out.append(f"| {name} | {op} | {shape} | {params} | {macs} | {rf} |")
    out += ["", "| Total | |", "|---|---:|"]
    out += [f"| {k} | {v} |" for k, v in totals(g)]
    return "\n".join(out) + "\n"
