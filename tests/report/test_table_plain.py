"""Tables of more than PLAIN_ROWS rows are written as plain aligned text (rich's layout
would take seconds); the rows and totals are those of the rich table."""

from __future__ import annotations

import io

from rich.console import Console

import archc
from archc.report import table


def spec(units: int) -> str:
    return ("archc: 1\ninput: [4, 8, 8]\nblocks:\n  unit:\n    layers:\n"
            "      - conv2d: {out: 4, kernel: 3, padding: 1}\n      - relu\n"
            f"layers:\n  - unit: {{repeat: {units}, id: s}}\n")


def render(text: str) -> str:
    out = io.StringIO()
    table.render(archc.load(text), Console(file=out, width=100))
    return out.getvalue()


def test_large_tables_are_plain_text_with_every_row():
    g = archc.load(spec(1500))  # 1,500 headers + 3,000 nodes
    text = render(spec(1500))
    lines = text.splitlines()
    assert lines[0] == "s  (3000 nodes)".replace("s", g.name, 1)
    assert lines[2].split() == ["Layer", "Op", "Output", "shape", "Params", "MACs", "RF"]
    body = lines[4:4 + 4500]
    assert body[0].split() == ["s.0", "(unit)"]
    assert body[1].split() == ["conv2d_1", "conv2d", "[4,", "8,", "8]", "148", "9.22", "K", "3"]  # 8·8·4 outputs × 4·9
    assert body[-1].split() == ["relu_1", "relu", "[4,", "8,", "8]", "0", f"{2 * 1500 + 1}"]
    assert "Total params                    222,000" in text  # 1,500 × (4·4·9 + 4)


def test_small_tables_keep_the_rich_layout():
    text = render(spec(3))
    assert "───" in text and "(unit)" in text and table.PLAIN_ROWS > 9
