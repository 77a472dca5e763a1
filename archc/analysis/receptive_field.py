"""Receptive fields, per spatial axis, as in Araujo, Norris & Sim, "Computing Receptive
Fields of Convolutional Neural Networks" (Distill, 2019).

For each node and each axis (height, width) we keep, in input-pixel units:

* ``size`` r — how many input pixels one output pixel sees;
* ``jump`` j — the distance in input pixels between two adjacent output pixels;
* ``start`` — the centre of the first output pixel's field (may be negative: padding).

A window op with kernel k, stride s, left padding p and dilation d maps (r, j, start) to
``r + (d(k-1)) j``, ``j s``, ``start + ((d(k-1))/2 - p) j``. A transposed window divides the
jump by its stride and each output depends on ceil(k/s) inputs. Where inputs of a merge
(add, concat, multiply) arrive with different jumps or starts the field is *misaligned*:
we keep the largest size and say so, instead of pretending they agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from archc.ops.registry import Window


@dataclass(frozen=True)
class RF:
    size: tuple  # per axis (h, w)
    jump: tuple
    start: tuple
    aligned: bool = True
    is_global: bool = False

    def as_json(self):
        if self.is_global:
            return {"global": True}
        return {"size": [_num(v) for v in self.size], "jump": [_num(v) for v in self.jump],
                "start": [_num(v) for v in self.start], "aligned": self.aligned}

    def text(self) -> str:
        if self.is_global:
            return "global"
        # whole pixels as integers; a fractional field (after resizing) with two decimals on
        # every axis, as the table's other figures (5.29 K), so that a column reads evenly
        whole = all(float(v).is_integer() for v in self.size)
        sizes = [f"{int(v)}" if whole else f"{v:.2f}" for v in self.size]
        core = sizes[0] if len(set(sizes)) == 1 else "×".join(sizes)
        return core + ("" if self.aligned else " (misaligned)")


GLOBAL = RF((), (), (), True, True)


def _num(v):
    return int(v) if float(v).is_integer() else round(v, 3)


def identity_rf(axes: int = 2) -> RF:
    """The network input: every pixel sees itself; pixel centres sit at 0, 1, 2, ...
    ``axes`` spatial axes: 1 for (C, L) sequences, 2 for images, 3 for volumes."""
    return RF((1,) * axes, (1,) * axes, (0,) * axes)


def apply_window(rf: RF, wins: list[Window]) -> RF:
    size, jump, start = [], [], []
    for r, j, s0, w in zip(rf.size, rf.jump, rf.start, wins):
        span = w.dilation * (w.kernel - 1)
        if w.transposed:
            taps = math.ceil(w.kernel / w.stride)
            size.append(r + (taps - 1) * j)
            jump.append(j / w.stride)
            start.append(s0 + j * (w.pad - span / 2) / w.stride)
        else:
            size.append(r + span * j)
            jump.append(j * w.stride)
            start.append(s0 + (span / 2 - w.pad) * j)
    return RF(tuple(size), tuple(jump), tuple(start), rf.aligned)


def merge(rfs: list[RF]) -> RF:
    if any(r.is_global for r in rfs):
        return GLOBAL
    first = rfs[0]
    aligned = all(r.aligned and r.jump == first.jump and r.start == first.start for r in rfs)
    size = tuple(max(r.size[i] for r in rfs) for i in range(len(first.size)))
    return RF(size, first.jump, first.start, aligned)
