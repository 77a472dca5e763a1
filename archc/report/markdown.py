"""A Markdown summary that pastes into a README; the same numbers as the table."""

from __future__ import annotations

from archc.ir.graph import Graph
from archc.report.table import rows, totals
from archc.report import variant


def render(g: Graph) -> str:
    out = [f"### {variant.label(g)}", "", "| Layer | Op | Output shape | Params | MACs | RF |",
           "|---|---|---|---:|---:|---:|"]
    for depth, label, op, shape, params, macs, rf in rows(g):
        name = "&nbsp;&nbsp;" * depth + (f"**{label}**" if not shape else f"`{label}`")
        out.append(f"| {name} | {op} | {shape} | {params} | {macs} | {rf} |")
    out += ["", "| Total | |", "|---|---:|"]
    out += [f"| {k} | {v} |" for k, v in totals(g)]
    return "\n".join(out) + "\n"
