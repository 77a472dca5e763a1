"""Text for language models: ``pysource``, Python's own standard library as bytes.

A language model needs text, and every Python installation ships some: the sources of its
standard library. ``pysource`` reads a fixed list of them (:data:`PYSOURCE_FILES`, about
1.5 MB on CPython 3.11) in that order, separated by a blank line, as **bytes**: the
tokens are the byte values 0..255 (vocab 256), so no tokenizer is needed and any text
encodes (UTF-8). The files differ a little between Python versions; the list does not.

Split (fixed, no shuffling — neighbouring windows would otherwise leak text between the
parts): the first ``1 − val_split`` of the byte stream trains, the rest (default the last
10 %) validates; there is no separate test part.

Examples: a network reading L tokens learns from windows of L + 1 bytes — x the first L,
y the last L (the next byte at every position). Validation uses consecutive windows of
the validation stream (stride L). Training windows start at random offsets, drawn afresh
every epoch from the run's seed (:meth:`TokenWindows.draw`, called by the
language_model task's trainer); an epoch has ``len(train stream) // L`` windows (about one
pass over the text), or ``train.data.limit`` of them.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

import torch

from archc.train.data import Arrays, register_source
from archc.train.errors import TrainError

# Modules present as plain source files from Python 3.9 to 3.13, read in this order.
PYSOURCE_FILES = [
    "argparse", "ast", "base64", "bisect", "calendar", "configparser", "contextlib", "copy", "csv",
    "dataclasses", "difflib", "enum", "fractions", "functools", "gettext", "heapq", "inspect",
    "ipaddress", "os", "pprint", "queue", "random", "shlex", "shutil", "statistics", "string",
    "tempfile", "textwrap", "threading", "tokenize", "typing", "uuid", "warnings",
    "collections/__init__", "logging/__init__",
]
BYTE_VOCAB = 256


def encode(text: str) -> list[int]:
    """Text -> token ids: its UTF-8 bytes."""
    return list(text.encode("utf-8"))


def decode(ids) -> str:
    """Token ids (bytes) -> text; a multi-byte character cut in half shows as U+FFFD."""
    return bytes(int(i) for i in ids).decode("utf-8", errors="replace")


def pysource_bytes() -> bytes:
    """The standard-library files of :data:`PYSOURCE_FILES` that this Python has, joined."""
    root = Path(sysconfig.get_paths()["stdlib"])
    parts = [p.read_bytes() for p in (root / f"{name}.py" for name in PYSOURCE_FILES) if p.is_file()]
    if not parts:
        raise TrainError(f"pysource: no standard-library sources under {root}",
                         "this Python ships without its .py files; give --data a text file's path")
    return b"\n\n".join(parts)


class TokenWindows(Arrays):
    """Windows of a token stream: ``x`` (N, L) and ``y`` (N, L), y shifted by one.

    Made with consecutive windows (stride L); :meth:`draw` replaces them with ``count``
    windows at random offsets."""

    def __init__(self, stream: torch.Tensor, length: int, name: str, count: int | None = None):
        self.stream, self.length = stream, length
        self.count = count if count is not None else (len(stream) - 1) // length
        n = (len(stream) - 1) // length
        starts = torch.arange(n) * length
        super().__init__(*self._windows(starts), name=name)

    def _windows(self, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        index = starts[:, None] + torch.arange(self.length + 1)  # (N, L + 1)
        w = self.stream[index]
        return w[:, :-1], w[:, 1:]

    def draw(self, g: torch.Generator) -> None:
        """New training windows: ``count`` random offsets from generator ``g``."""
        starts = torch.randint(0, len(self.stream) - self.length, (self.count,), generator=g)
        self.x, self.y = self._windows(starts)

    def subset(self, index) -> "TokenWindows":
        """``limit``: an epoch of fewer random windows (a slice 0:N sets their count)."""
        count = len(range(*index.indices(self.count))) if isinstance(index, slice) else len(index)
        part = TokenWindows(self.stream, self.length, self.name, count)
        part.x, part.y = self.x[index], self.y[index]
        return part


def token_splits(data: bytes, shape: tuple, val_split: float, name: str) -> Arrays:
    """Training windows with the last ``val_split`` of ``data`` as their fixed validation part."""
    if len(shape) != 1:
        raise TrainError(f"data {name}: text feeds a network reading a sequence of token ids, "
                         f"but the spec's input is {list(shape)}",
                         "give the network an input like {shape: [128], dtype: int64, vocab: 256}")
    length = shape[0]
    stream = torch.frombuffer(bytearray(data), dtype=torch.uint8).long()
    cut = round(len(stream) * (1 - val_split))
    if cut < 2 * (length + 1) or len(stream) - cut < length + 1:
        raise TrainError(f"data {name}: {len(stream):,} tokens are too few for windows of {length + 1} "
                         f"in both parts (val_split {val_split})", "use a shorter input (--set input=[64])")
    train = TokenWindows(stream[:cut], length, name)
    train.val = TokenWindows(stream[cut:], length, name)
    return train


@register_source("pysource")
def pysource(path, cfg, shape) -> Arrays:
    """Python's standard-library sources as bytes (vocab 256): text for language models, offline."""
    return token_splits(pysource_bytes(), tuple(shape), cfg.val_split or 0.1, "pysource")
