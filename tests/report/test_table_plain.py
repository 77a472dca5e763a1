"""The terminal table: plain aligned text for every size (rich's layout took seconds for
large specs), 80 columns when piped, long ids shortened in the middle, no trailing spaces,
and totals that add up as Keras' model.summary() does."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

import archc
from archc.cli import main
from archc.report import table

ROOT = Path(__file__).resolve().parents[2]
ZOO = sorted(p.stem for p in (ROOT / "specs").glob("*.yaml"))


def spec(units: int) -> str:
    return ("archc: 1\ninput: [4, 8, 8]\nblocks:\n  unit:\n    layers:\n"
            "      - conv2d: {out: 4, kernel: 3, padding: 1}\n      - relu\n"
            f"layers:\n  - unit: {{repeat: {units}, id: s}}\n")


def render(text: str, width: int = 80) -> str:
    out = io.StringIO()
    table.render(archc.loads(text), Console(file=out, width=width))
    return out.getvalue()


def test_large_tables_have_every_row():
    g = archc.loads(spec(1500))  # 1,500 headers + 3,000 nodes
    text = render(spec(1500))
    lines = text.splitlines()
    assert lines[0] == f"{g.name}  (3000 nodes)"
    assert lines[2].split() == ["Layer", "Op", "Output", "shape", "Params", "MACs", "RF"]
    body = lines[4:4 + 4500]
    assert body[0].split() == ["s.0", "(unit)"]
    assert body[1].split() == ["conv2d_1", "conv2d", "[4,", "8,", "8]", "148", "9.22", "K", "3"]  # 8·8·4 outputs × 4·9
    assert body[-1].split() == ["relu_1", "relu", "[4,", "8,", "8]", "0", f"{2 * 1500 + 1}"]
    assert totals(text)["Total params"] == "222,000"  # 1,500 × (4·4·9 + 4)


@pytest.mark.parametrize("name", ZOO)
def test_zoo_tables_fit_80_columns_without_trailing_spaces(name):
    """`archc validate SPEC | cat`: each line at most 80 characters, none ending in a space."""
    result = CliRunner().invoke(main, ["validate", str(ROOT / "specs" / f"{name}.yaml")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert [line for line in lines if line != line.rstrip()] == []


LONG = "a_very_long_layer_identifier_that_names_the_layer_fully"


def test_long_ids_are_shortened_in_the_middle_not_wrapped():
    text = render(f"archc: 1\ninput: [4]\nlayers:\n  - linear: {{out: 3, id: {LONG}}}\n"
                  "  - relu\n")
    lines = text.splitlines()
    row = next(line for line in lines if line.startswith("a_very"))
    assert max(len(line) for line in lines) <= 80 and "…" in row
    cell = row.split()[0]
    start, end = cell.split("…")
    assert LONG.startswith(start) and LONG.endswith(end) and len(start) >= 5 and len(end) >= 5
    assert row.split()[1:] == ["linear", "[3]", "15", "12", "global"]  # 4·3 + 3; 4·3 MACs
    assert not any("_fully" in line and not line.startswith("a_very") for line in lines)  # no wrap


def test_a_wide_terminal_shows_ids_whole():
    text = render(f"archc: 1\ninput: [4]\nlayers:\n  - linear: {{out: 3, id: {LONG}}}\n", width=200)
    assert LONG in text and "…" not in text


@pytest.mark.parametrize("text, width, want", [
    ("layer4.2.downsample.0", 21, "layer4.2.downsample.0"),
    ("layer4.2.downsample.0", 15, "layer4.…ample.0"),
    ("abcdef", 4, "ab…f"),
    ("abcdef", 1, "…"),
])
def test_shorten_keeps_both_ends(text, width, want):
    got = table.shorten(text, width)
    assert got == want and len(got) == min(len(text), width)


def test_only_the_text_columns_give_way():
    cells = [("x" * 40, "y" * 30, "[1, 2, 3]", "1,000", "1.00 K", "5")]
    widths = table.column_widths(cells, 80)
    assert sum(widths) + 2 * 5 == 80
    assert widths[2:] == [len("Output shape"), len("Params"), len("1.00 K"), len("RF")]  # as wide as needed


def test_block_rows_are_bold_on_a_colour_terminal_only():
    plain = render(spec(1))
    assert "\x1b[" not in plain
    out = io.StringIO()
    table.render(archc.loads(spec(1)), Console(file=out, width=80, force_terminal=True))
    bold = [line for line in out.getvalue().splitlines() if line.startswith("\x1b[1m")]
    assert [line.split()[0] for line in bold] == ["\x1b[1ms.0"]


FROZEN = ("archc: 1\ninput: [3, 8, 8]\nlayers:\n"
          "  - conv2d: {out: 4, kernel: 3, trainable: false}\n"
          "  - batchnorm2d\n  - flatten\n  - linear: {out: 2}\n")


def totals(text: str) -> dict:
    lines = text.splitlines()
    start = lines.index("", 2) + 1
    return dict(re.split(r"\s{2,}", line, maxsplit=1) for line in lines[start:])


def test_totals_add_up_as_keras_does():
    """Total = trainable + non-trainable (the frozen layers); buffers on their own line."""
    frozen = 4 * 3 * 9 + 4        # conv 3→4, 3×3, bias
    trainable = 2 * 4 + 4 * 6 * 6 * 2 + 2  # batch norm γ, β; linear 144→2
    buffers = 2 * 4 + 1           # running mean, var, num_batches_tracked
    t = totals(render(FROZEN))
    assert t["Total params"] == f"{frozen + trainable:,}"
    assert t["Trainable params"] == f"{trainable:,}"
    assert t["Non-trainable params"] == f"{frozen:,} (trainable: false)"
    assert t["Buffers"] == f"{buffers:,}"
    model = archc.build(text=FROZEN, seed=0)
    assert sum(p.numel() for p in model.parameters()) == frozen + trainable
    assert sum(b.numel() for b in model.buffers()) == buffers


def test_no_frozen_layers_say_zero():
    t = totals(render(spec(1)))
    assert t["Non-trainable params"] == "0" and t["Buffers"] == "0"
