"""Fitting data to the network: the spec's input shape, and normalisation."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from archc.train.data import Arrays
from archc.train.errors import TrainError


def _shape_text(shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def fit_images(a: Arrays, shape: tuple, resize: bool, source: str, notes: list | None = None) -> Arrays:
    """``a`` with inputs of the spec's input ``shape`` (C, H, W or features).

    Images are resized (bilinear, antialiased when shrinking) when the source allows it
    (digits) or ``resize`` is set, and grey ones then also feed a 3-channel input (the
    grey level in each channel); flat vectors feed a 1-d input of the same size and
    images of N values feed an input of N features; grey images [1, H, W] feed a
    sequence input [H, W] (rows as steps); channels-last images (N, H, W, C) — as NumPy,
    PIL and TensorFlow store them — feed a (C, H, W) input transposed, with a note in
    ``notes``. Anything else is an error that names both shapes."""
    have = tuple(a.x.shape[1:])
    if have == tuple(shape):
        return a
    if _channels_last(have, shape):
        if notes is not None:
            notes.append(f"{source} holds channels-last images (N, {have[0]}, {have[1]}, {have[2]}): "
                         f"read as (N, {have[2]}, {have[0]}, {have[1]})")
        a = Arrays(a.x.permute(0, 3, 1, 2).contiguous(), a.y, a.classes, a.test, a.name, a.resizable)
        return fit_images(a, shape, resize, source, notes)
    if len(shape) == 1 and math.prod(have) == shape[0]:
        return Arrays(a.x.reshape(len(a), -1), a.y, a.classes, a.test, a.name)
    if len(shape) == 2 and have == (1, *shape):
        # grey images for a sequence model: rows are the steps, a row's pixels their features
        # ([8, 8] digits for an LSTM's [L, D], or a conv1d's [C, L])
        return Arrays(a.x.reshape(len(a), *shape), a.y, a.classes, a.test, a.name)
    if len(shape) == 3 and len(have) == 3 and have[0] == 1 and shape[0] == 3 and (resize or a.resizable):
        # grey images for a colour input (digits for DCGAN): the grey level in all three channels
        a = Arrays(a.x.expand(-1, 3, -1, -1).contiguous(), a.y, a.classes, a.test, a.name, a.resizable)
        return fit_images(a, shape, resize, source)
    if len(shape) == 3 and len(have) == 3 and have[0] == shape[0] and (resize or a.resizable):
        x = F.interpolate(a.x, size=tuple(shape[1:]), mode="bilinear", align_corners=False,
                          antialias=have[1] > shape[1] or have[2] > shape[2])
        return Arrays(x, a.y, a.classes, a.test, a.name, a.resizable)
    fix = f"set train.data.resize: true, or --set input={_shape_text(have)}"
    if len(shape) != len(have) or have[0] != shape[0]:
        fix = f"give data of shape {_shape_text(shape)}, or --set input={_shape_text(have)}"
    raise TrainError(f"data {source}: examples have shape {_shape_text(have)} but the spec's input is "
                     f"{_shape_text(shape)}", fix)


def _channels_last(have: tuple, shape: tuple) -> bool:
    """(H, W, C) images for a (C, H, W) input: the channel count last and not first (a 3×32×3
    array is ambiguous and taken as it is). Sizes may differ: resizing comes after."""
    return (len(have) == 3 and len(shape) == 3 and have[2] == shape[0] and have[0] != shape[0]
            and have[2] in (1, 3, 4))


def normalize(parts: list, setting) -> dict:
    """Normalise every part in place with per-channel statistics: of the training part
    (``true``) or given (``{mean, std}``). Returns the statistics used ({} for none)."""
    if not setting or parts[0].x.dim() < 2:
        return {}
    train = parts[0].x
    dims = [0] + list(range(2, train.dim()))  # all but the channel axis
    if setting is True:
        mean, std = train.mean(dim=dims), train.std(dim=dims).clamp_min(1e-8)
    else:
        try:
            mean = torch.tensor(setting["mean"], dtype=torch.float32).flatten()
            std = torch.tensor(setting["std"], dtype=torch.float32).flatten()
        except (KeyError, TypeError, ValueError):
            raise TrainError("train.data.normalize: expected true or {mean: [...], std: [...]}") from None
        if len(mean) not in (1, train.shape[1]) or len(std) != len(mean) or bool((std <= 0).any()):
            raise TrainError(f"train.data.normalize: give one mean and one positive std per channel "
                             f"({train.shape[1]}) or one for all")
    view = (1, -1) + (1,) * (train.dim() - 2)
    for p in parts:
        if p is not None:
            p.x = (p.x - mean.view(view)) / std.view(view)
    return {"mean": mean.tolist(), "std": std.tolist()}
