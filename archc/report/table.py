"""The terminal summary: Keras' model.summary() with torchinfo's extra columns.

Rows are grouped by block instance (a header row per instance, its nodes indented), so a
ResNet reads stage by stage. Totals at the bottom, as Keras adds them up: total params =
trainable + non-trainable (frozen) params; buffers (batch norm statistics) on their own
line. The table fits the terminal (80 columns when piped): long layer ids and op labels
are shortened in the middle with "…", never wrapped, and no line ends in spaces."""

from __future__ import annotations

from bisect import bisect_right

from archc.ir.graph import Graph
from archc.printable import printable
from archc.report import numbers as N
from archc.report import variant


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
    frozen = " (trainable: false)" if s.frozen_params else ""
    return [
        ("Input", N.shape(s.input_shape) + ids),
        ("Output", ", ".join(N.shape(x) for x in s.output_shapes)),
        ("Total params", N.count(s.total_params)),
        ("Trainable params", N.count(s.trainable_params)),
        ("Non-trainable params", N.count(s.frozen_params) + frozen),
        ("Buffers", N.count(s.buffers)),
        ("MACs", f"{N.si(s.macs)} ({N.count(s.macs)})"),
        ("Weights (fp32)", N.nbytes(s.weight_bytes)),
        ("Activations (fp32, per sample)", N.nbytes(s.activation_bytes)),
    ]


HEADERS = ("Layer", "Op", "Output shape", "Params", "MACs", "RF")
GAP = "  "
# Only the two text columns give way when the table is too wide; they keep at least this
# many characters (a shortened id still shows its start and its end).
MIN_WIDTH = {0: 14, 1: 10}
ELLIPSIS = "…"
BOLD, RESET = "\x1b[1m", "\x1b[0m"


def title(g: Graph) -> str:
    """The network and the variant it is: ``resnet50 --preset resnet101  (344 nodes)``.
    The name is the spec's free text: escape sequences in it are shown, not obeyed."""
    return f"{printable(variant.label(g))}  ({g.summary.nodes} nodes)"


def shorten(text: str, width: int) -> str:
    """``layer4.2.downsample.0`` -> ``layer4.…ample.0``: the middle of ``text`` gives way,
    its start (the block) and its end (the local id) stay."""
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    tail = (width - 1) // 2
    return text[:width - 1 - tail] + ELLIPSIS + text[len(text) - tail:]


def column_widths(cells: list, width: int) -> list[int]:
    """Each column as narrow as its widest cell; when the table is wider than ``width``,
    the Layer and Op columns give up the excess between them, split so that the fewest
    cells are shortened (on a tie the Op column gives more: ids are what users type)."""
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(HEADERS)]
    excess = sum(widths) + len(GAP) * (len(widths) - 1) - width
    if excess <= 0:
        return widths
    (a, b), lengths = MIN_WIDTH, {i: sorted(len(c[i]) for c in cells) for i in MIN_WIDTH}

    def cut(i: int, w: int) -> int:  # cells of column i longer than w
        return len(lengths[i]) - bisect_right(lengths[i], w)

    room = {i: max(widths[i] - MIN_WIDTH[i], 0) for i in MIN_WIDTH}
    excess = min(excess, room[a] + room[b])  # shapes and numbers are never cut
    splits = range(max(0, excess - room[b]), min(room[a], excess) + 1)  # characters column a gives
    ra = min(splits, key=lambda r: (cut(a, widths[a] - r) + cut(b, widths[b] - excess + r), r))
    widths[a] -= ra
    widths[b] -= excess - ra
    return widths


def _cell(depth: int, label: str, width: int) -> str:
    indent = "  " * depth
    return indent + shorten(label, max(width - len(indent), 1))


def lines(g: Graph, width: int = 80, bold: bool = False) -> list[str]:
    """The report as lines of at most ``width`` characters (unless a shape or a count alone
    is wider), none ending in a space. ``bold`` marks block rows with ANSI bold."""
    table = list(rows(g))
    cells = [("  " * r[0] + r[1], *r[2:]) for r in table]
    widths = column_widths(cells, width)

    def line(values):
        left = [f"{v:<{w}}" for v, w in zip(values[:3], widths)]
        right = [f"{v:>{w}}" for v, w in zip(values[3:], widths[3:])]
        return GAP.join(left + right).rstrip()

    head = line(HEADERS)
    out = [title(g), "", head, "─" * len(head)]
    for depth, label, op, *numbers in table:
        text = line((_cell(depth, label, widths[0]), shorten(op, widths[1]), *numbers))
        out.append(f"{BOLD}{text}{RESET}" if bold and not numbers[0] else text)
    key_width = max(len(k) for k, _ in totals(g))
    out += [""] + [f"{key:<{key_width}}  {value}".rstrip() for key, value in totals(g)]
    return out


def render(g: Graph, console) -> None:
    """Write the table to ``console.file`` (a rich Console: its width, and bold block rows
    on a colour terminal). Plain text written at once: linear in the rows, and fast —
    rich's table layout cost about 0.5 ms a row (docs/benchmarks.md)."""
    bold = console.is_terminal and console.color_system is not None and not console.no_color
    console.file.write("\n".join(lines(g, console.width, bold)) + "\n")
