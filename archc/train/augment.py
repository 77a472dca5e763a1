"""Data augmentation on batches of image tensors (N, C, H, W), on whatever device they are.

Written with plain tensor ops (no torchvision needed). Every random draw comes from the
``torch.Generator`` passed in, which the training loop seeds per epoch: a resumed run
draws the same augmentations. The draws are made on the CPU (a few numbers per image)
and moved to the batch's device.

- flips: each image flipped with probability p;
- ``crop_padding: p``: zero-pad by p and crop the original size at a random offset
  (the CIFAR recipe), i.e. an integer shift in [-p, p] filled with zeros;
- ``rotate`` (degrees), ``translate`` (fraction of the size), ``scale`` ([lo, hi]): one
  random affine map per image, bilinear, zeros outside;
- ``brightness: b``: adds one uniform value in [-b, b] per image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def active(cfg) -> bool:
    """Whether the AugmentConfig asks for anything."""
    return bool(cfg.hflip or cfg.vflip or cfg.crop_padding or cfg.rotate or cfg.translate
                or cfg.scale or cfg.brightness)


def _prob(value) -> float:
    return 0.5 if value is True else float(value or 0.0)


def _uniform(n: int, low: float, high: float, g: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=g)


def flip(x: torch.Tensor, p: float, dim: int, g: torch.Generator) -> torch.Tensor:
    mask = (torch.rand(len(x), generator=g) < p).to(x.device).view(-1, *([1] * (x.dim() - 1)))
    return torch.where(mask, x.flip(dim), x)


def random_crop(x: torch.Tensor, pad: int, g: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``pad`` and crop H×W at a random offset per image."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (n,), generator=g).to(x.device)
    ox = torch.randint(0, 2 * pad + 1, (n,), generator=g).to(x.device)
    rows = (oy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # (N, H, 1)
    cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, :]  # (N, 1, W)
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)  # (N, C, H, W)


def random_affine(x: torch.Tensor, degrees: float, translate: float, scale, g) -> torch.Tensor:
    """One rotation/translation/zoom per image, about the centre (normalised coordinates)."""
    n = len(x)
    angle = _uniform(n, -degrees, degrees, g) * (math.pi / 180)
    zoom = _uniform(n, scale[0], scale[1], g) if scale else torch.ones(n)
    shift = _uniform(2 * n, -translate, translate, g).view(n, 2) * 2  # fraction of size -> [-1, 1] units
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    # affine_grid maps output coordinates to input ones: the inverse of the wanted map
    theta = torch.stack([torch.stack([cos, -sin, -shift[:, 0]], 1),
                         torch.stack([sin, cos, -shift[:, 1]], 1)], 1)  # (N, 2, 3)
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def augment(x: torch.Tensor, cfg, g: torch.Generator) -> torch.Tensor:
    """Apply the AugmentConfig ``cfg`` to a batch ``x`` (N, C, H, W)."""
    if x.dim() != 4:
        return x
    if cfg.hflip:
        x = flip(x, _prob(cfg.hflip), -1, g)
    if cfg.vflip:
        x = flip(x, _prob(cfg.vflip), -2, g)
    if cfg.crop_padding:
        x = random_crop(x, cfg.crop_padding, g)
    if cfg.rotate or cfg.translate or cfg.scale:
        x = random_affine(x, cfg.rotate, cfg.translate, cfg.scale, g)
    if cfg.brightness:
        x = x + _uniform(len(x), -cfg.brightness, cfg.brightness, g).to(x.device, x.dtype).view(-1, 1, 1, 1)
    return x
