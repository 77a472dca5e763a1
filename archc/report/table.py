"""The terminal summary: Keras' model.summary() with torchinfo's extra columns.

Rows are grouped by block instance (a header row per instance, its nodes indented), so a
ResNet reads stage by stage. Totals at the bottom. Fits 100 columns."""

from __future__ import annotations

from archc.ir.graph import Graph
from archc.report import numbers as N


def rows(g: Graph):
    """(indent, label, op, shape, params, macs, rf) for each node, with block headers."""
    open_scope: tuple = ()
    for n in g.nodes:
        common = 0
        while common < min(len(open_scope), len(n.scope)) and open_scope[common] == n.scope[common]:
            common += 1
        for depth in range(common, len(n.scope)):
            yield depth, n.scope[depth], f"({n.blocks[depth]})", "", "", "", ""
        open_scope = n.scope
        m = n.meta
        op = f"{n.op} (tied: {m['tie'][0]})" if "tie" in m else n.op  # its weight is counted there
        yield (len(n.scope), n.local_name, op, N.shape(m.get("shape")), N.count(m.get("params")),
               N.si(m.get("macs")) if m.get("macs") else ("" if m.get("macs") == 0 else N.UNKNOWN),
               N.rf(m.get("rf")))


def totals(g: Graph) -> list[tuple[str, str]]:
    s = g.summary
    ids = " token ids" if g.input_dtype == "int64" else ""
    return [
        ("Input", N.shape(s.input_shape) + ids),
        ("Output", ", ".join(N.shape(x) for x in s.output_shapes)),
        ("Total params", N.count(s.total_params)),
        ("Trainable params", N.count(s.trainable_params)),
        ("Non-trainable", f"{N.count(s.non_trainable)} (buffers {N.count(s.buffers)}"
                          f"{', frozen ' + N.count(s.frozen_params) if s.frozen_params else ''})"),
        ("MACs", f"{N.si(s.macs)} ({N.count(s.macs)})"),
        ("Weights (fp32)", N.nbytes(s.weight_bytes)),
        ("Activations (fp32, per sample)", N.nbytes(s.activation_bytes)),
    ]


# Above this many rows rich's table layout costs seconds (about 0.5 ms per row), so the
# same columns are written as plain aligned text instead (docs/benchmarks.md).
PLAIN_ROWS = 2000
HEADERS = ("Layer", "Op", "Output shape", "Params", "MACs", "RF")


def render(g: Graph, console) -> None:
    table = list(rows(g))
    if len(table) > PLAIN_ROWS:
        render_plain(g, table, console.file)
        return
    from rich.table import Table
    from rich import box

    t = Table(title=f"{g.name}  ({g.summary.nodes} nodes)", box=box.SIMPLE_HEAD,
              title_justify="left", pad_edge=False)
    t.add_column("Layer", overflow="fold", max_width=30)
    t.add_column("Op", max_width=24, overflow="fold")
    t.add_column("Output shape", no_wrap=True)
    t.add_column("Params", justify="right", no_wrap=True)
    t.add_column("MACs", justify="right", no_wrap=True)
    t.add_column("RF", justify="right", no_wrap=True)
    for depth, label, op, shape, params, macs, rf in table:
        style = "bold" if not shape else None
        t.add_row("  " * depth + label, op, shape, params, macs, rf, style=style)
    console.print(t)
    width = max(len(k) for k, _ in totals(g))
    for key, value in totals(g):
        console.print(f"{key:<{width}}  {value}", highlight=False)


def render_plain(g: Graph, table: list, out) -> None:
    """The same table as aligned plain text, written at once: linear and fast."""
    cells = [("  " * depth + label, op, shape, params, macs, rf)
             for depth, label, op, shape, params, macs, rf in table]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(HEADERS)]

    def line(values):
        left = [f"{v:<{w}}" for v, w in zip(values[:3], widths)]
        right = [f"{v:>{w}}" for v, w in zip(values[3:], widths[3:])]
        return "  ".join(left + right).rstrip()

    head = line(HEADERS)
    text = [f"{g.name}  ({g.summary.nodes} nodes)", "", head, "─" * len(head)]
    text += [line(c) for c in cells] + [""]
    width = max(len(k) for k, _ in totals(g))
    text += [f"{key:<{width}}  {value}" for key, value in totals(g)]
    out.write("\n".join(text) + "\n")
