"""Segmentation data: synthetic shapes (the offline default) and image/mask folders.

``shapes``: images of circles, rectangles and triangles on a noisy background, drawn from a
seed, with a mask that gives each pixel its class — 0 background, 1 circle, 2 rectangle,
3 triangle (:data:`SHAPE_CLASSES`). The images are drawn at the spec's input size, so
any U-Net input works without resizing. Every image has 1–3 shapes of random size
(radius 12–30 % of the side), position and brightness (a colour on 3-channel inputs); a later
shape covers an earlier one, and the mask says what is visible. Shapes are brighter
(0.55–1) than the background (0–0.35), and Gaussian noise (σ = 0.1) covers everything:
telling a shape from the background is easy, telling a circle from a rectangle or a
triangle needs the outline. The seed is
``train.data.split_seed``: the same seed draws the same data set on every machine.

Image/mask folders: a folder with ``images/`` and ``masks/`` sub-folders whose files
pair up by name (``images/a.jpg`` with ``masks/a.png``); a mask is a one-channel image
(grey or palette) whose values are class indices. With ``train.data.resize: true`` both
are resized to the spec's input (images bilinear, masks nearest so classes stay classes).

Masks are stored as uint8 (N, H, W); the segmentation task turns each batch into int64.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from archc.train.data import Arrays, register_source
from archc.train.data.sources import IMAGE_SUFFIXES
from archc.train.errors import TrainError

SHAPE_CLASSES = ["background", "circle", "rectangle", "triangle"]
MAX_SHAPES_BYTES = 1 << 26  # at most ~64 MiB of float32 images (572×572 inputs get fewer of them)
SHAPES_COUNT = 600


def _triangle(yy, xx, cy, cx, r, angle) -> np.ndarray:
    """Pixels inside the triangle whose corners lie on the circle (cy, cx, r), turned by ``angle``."""
    corners = [(cy + r * np.sin(angle + k * 2 * np.pi / 3), cx + r * np.cos(angle + k * 2 * np.pi / 3))
               for k in range(3)]
    signs = []
    for (y0, x0), (y1, x1) in zip(corners, corners[1:] + corners[:1]):
        signs.append((x1 - x0) * (yy - y0) - (y1 - y0) * (xx - x0) >= 0)  # side of each edge
    return (signs[0] == signs[1]) & (signs[1] == signs[2])


def _shape_mask(kind: int, yy, xx, rng, h: int, w: int) -> np.ndarray:
    side = min(h, w)
    r = rng.uniform(0.12, 0.30) * side
    cy, cx = rng.uniform(r * 0.6, h - r * 0.6), rng.uniform(r * 0.6, w - r * 0.6)
    if kind == 1:
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    if kind == 2:
        ry, rx = r * rng.uniform(0.6, 1.0), r * rng.uniform(0.6, 1.0)
        return (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)
    return _triangle(yy, xx, cy, cx, r * 1.15, rng.uniform(0, 2 * np.pi))


def draw_shapes(n: int, shape: tuple, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images (N, C, H, W) float32 in [0, 1] and masks (N, H, W) uint8 from ``seed``."""
    c, h, w = shape
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5  # pixel centres
    images = np.empty((n, c, h, w), np.float32)
    masks = np.zeros((n, h, w), np.uint8)
    for i in range(n):
        background = rng.uniform(0.0, 0.35, size=(c, 1, 1))
        image = np.broadcast_to(background, (c, h, w)).copy()
        for _ in range(rng.integers(1, 4)):
            kind = int(rng.integers(1, 4))
            inside = _shape_mask(kind, yy, xx, rng, h, w)
            image[:, inside] = rng.uniform(0.55, 1.0, size=(c, 1))  # brighter than any background
            masks[i][inside] = kind
        images[i] = np.clip(image + rng.normal(0, 0.1, size=(c, h, w)), 0, 1)
    return images, masks


@register_source("shapes")
def shapes(path, cfg, shape) -> Arrays:
    """Synthetic shapes for segmentation: circles, rectangles, triangles on noise, masks of 4 classes."""
    if len(shape) != 3:
        raise TrainError(f"the shapes data set draws images, but the spec's input is {list(shape)}",
                         "give the network an input of [channels, height, width]")
    n = int(min(SHAPES_COUNT, max(32, MAX_SHAPES_BYTES // (4 * int(np.prod(shape))))))
    images, masks = draw_shapes(n, tuple(shape), cfg.split_seed)
    return Arrays(torch.from_numpy(images), torch.from_numpy(masks), list(SHAPE_CLASSES), name="shapes")


# --------------------------------------------------------------------------- image/mask folders


def _files(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def _is_mask_folder(path: Path) -> bool:
    return path.is_dir() and (path / "images").is_dir() and (path / "masks").is_dir()


def _read(file: Path, mode: str | None, size: tuple | None, resample) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as im:
            if mode is None and im.mode not in ("L", "P", "I", "I;16", "1"):
                raise TrainError(f"{file}: a mask must have one channel of class indices, this one is {im.mode}",
                                 "save masks as grey or palette PNGs whose values are the classes")
            im = im.convert(mode) if mode else im
            if size is not None and im.size != size:
                im = im.resize(size, resample)
            return np.asarray(im)
    except (UnidentifiedImageError, OSError) as exc:
        raise TrainError(f"{file}: cannot read this image ({exc})") from None


@register_source("masks", claims=_is_mask_folder, specific=True)
def mask_folder(path, cfg, shape) -> Arrays:
    """A folder with images/ and masks/ sub-folders paired by file name (masks hold class indices)."""
    from PIL import Image

    images, masks = _files(path / "images"), _files(path / "masks")
    names = sorted(set(images) & set(masks))
    alone = sorted(set(images) ^ set(masks))
    if not names or alone:
        raise TrainError(f"{path}: {len(names)} image/mask pairs" + (f"; no partner for {alone[0]!r}" if alone else ""),
                         "give every file in images/ a mask of the same name in masks/")
    mode = "L" if shape[0] == 1 else "RGB"
    size = (shape[2], shape[1]) if cfg.resize and len(shape) == 3 else None
    xs, ys = [], []
    for name in names:
        x = _read(images[name], mode, size, Image.BILINEAR)
        y = _read(masks[name], None, size, Image.NEAREST)
        if x.shape[:2] != y.shape[:2]:
            raise TrainError(f"{path}: image {name!r} is {x.shape[1]}×{x.shape[0]} but its mask is "
                             f"{y.shape[1]}×{y.shape[0]}", "give masks of their images' size")
        if y.max() > 255:
            raise TrainError(f"{masks[name]}: class index {int(y.max())} is above 255")
        xs.append(x)
        ys.append(y.astype(np.uint8))
    if len({a.shape for a in xs}) > 1:
        raise TrainError(f"{path}: the images have different sizes", "set train.data.resize: true")
    x = torch.from_numpy(np.stack(xs)).float().div_(255.0)
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2).contiguous()  # (N, C, H, W)
    return Arrays(x, torch.from_numpy(np.stack(ys)), name=str(path))
