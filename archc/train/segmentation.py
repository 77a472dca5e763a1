"""The segmentation task: one class per pixel.

The network's output is (K, h, w) — K class scores per pixel — and the targets are masks
(H, W) of class indices 0..K-1 (the ``shapes`` source, or image/mask folders; see
archc/train/data/shapes.py).

- Loss: per-pixel cross-entropy, the mean over every pixel of the batch (``F.cross_entropy``
  of (N, K, h, w) against (N, h, w)); a network that ends with ``log_softmax`` gets the
  NLL, one that ends with ``softmax`` the NLL of the log of its probabilities.
- Valid convolutions: a U-Net without padding outputs a smaller map than its input
  (572×572 → 388×388). The prediction is then for the *centre* of the tile (Ronneberger
  et al. 2015, Fig. 2, the overlap-tile strategy), so the target mask is **centre-cropped
  to the output size** before the loss and the metrics — rows ``(H - h) // 2`` onwards,
  likewise columns. An output larger than the input is refused.
- Metrics, from a confusion matrix summed over the whole split (not averaged per batch):
  ``pixel_accuracy`` = correct pixels / pixels; ``iou`` = mean over classes of
  TP / (TP + FP + FN) (the mean IoU, "Jaccard index"), over the classes that occur in the
  targets or the predictions of the split (a class absent from both has no IoU and is
  left out of the mean, as in the PASCAL VOC evaluation).
- Augmentation moves the mask with its image: flips, crops, rotations, translations and
  zooms are drawn once and applied to both (the mask as one-hot channels, resampled and
  turned back into classes by argmax, so a class never blends into another); brightness
  changes the image only.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from archc.train import augment as aug
from archc.train.errors import TrainError
from archc.train.tasks import LOSSES, Meter, Task, last_op, register_task

SEGMENTATION_LOSSES = ("cross_entropy", "nll", "nll_of_probs")


def center_crop(y: torch.Tensor, size) -> torch.Tensor:
    """The centre ``size`` = (h, w) of masks ``y`` (N, H, W)."""
    h, w = size
    top, left = (y.shape[-2] - h) // 2, (y.shape[-1] - w) // 2
    return y[..., top:top + h, left:left + w]


def confusion(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """K×K counts, rows the true class, columns the predicted one, of scores ``out``
    (N, K, h, w) against masks ``y`` (N, H, W) (centre-cropped to h×w)."""
    k = out.shape[1]
    y = center_crop(y, out.shape[-2:])
    pred = out.argmax(1)
    index = (y.reshape(-1) * k + pred.reshape(-1)).long()
    return torch.bincount(index, minlength=k * k).reshape(k, k)


def scores(matrix: torch.Tensor) -> dict:
    """Pixel accuracy and mean IoU of a confusion matrix."""
    m = matrix.double()
    total = m.sum()
    tp = m.diagonal()
    union = m.sum(0) + m.sum(1) - tp
    present = union > 0
    iou = (tp[present] / union[present]).mean() if bool(present.any()) else torch.tensor(0.0)
    return {"pixel_accuracy": float(tp.sum() / total) if total > 0 else 0.0, "iou": float(iou)}


class SegmentationMeter(Meter):
    """The loss per example and one confusion matrix over every batch seen."""

    def __init__(self, names, classes: int | None = None):
        super().__init__({})
        self.names = list(names)
        # K×K zeros when K is known, so a DDP rank without examples still adds a K×K matrix
        self.sums = {"confusion": torch.zeros(classes, classes, dtype=torch.long) if classes else 0}

    @torch.no_grad()
    def update(self, out, y, loss) -> None:
        self.n += len(y)
        self.loss = self.loss + loss.detach().float() * len(y)
        matrix = confusion(out.detach(), y)
        self.sums["confusion"] = matrix + self.sums["confusion"].to(matrix.device) \
            if torch.is_tensor(self.sums["confusion"]) else matrix

    def result(self, prefix: str = "") -> dict:
        n, loss, sums = self.totals()
        matrix = sums["confusion"]
        values = scores(matrix) if torch.is_tensor(matrix) else {"pixel_accuracy": 0.0, "iou": 0.0}
        return {f"{prefix}loss": float(loss) / max(n, 1)} | {f"{prefix}{k}": values[k] for k in self.names}


@register_task("segmentation")
class Segmentation(Task):
    """Class masks against (K, h, w) per-pixel scores; see the module doc."""

    default_loss = "cross_entropy"
    metrics = {"pixel_accuracy": None, "iou": None}  # computed by SegmentationMeter
    default_metrics = ["pixel_accuracy", "iou"]
    monitor = ("val_iou", "max")
    target_dtype = torch.long

    def __init__(self):
        self.classes = None

    def loss_for(self, graph) -> str:
        return {"softmax": "nll_of_probs", "log_softmax": "nll"}.get(last_op(graph), "cross_entropy")

    def loss(self, cfg, graph):
        name = cfg.loss.name or self.loss_for(graph)
        if name not in SEGMENTATION_LOSSES:
            raise TrainError(f"train.loss {name!r} does not fit the segmentation task",
                             "losses: " + ", ".join(SEGMENTATION_LOSSES))
        base = LOSSES[name](cfg)
        return lambda out, y: base(out, center_crop(y, out.shape[-2:]))

    def meter(self, names) -> Meter:
        names = self.default_metrics if names is None else names
        unknown = [m for m in names if m not in self.metrics]
        if unknown:
            raise TrainError(f"train.metrics: {unknown[0]!r} is not a metric of the segmentation task",
                             "metrics: " + ", ".join(self.metrics))
        return SegmentationMeter(names, self.classes)

    def check(self, splits, out_shape) -> None:
        if len(out_shape) != 3:
            raise TrainError(f"segmentation needs an output of shape [classes, height, width], the network "
                             f"gives {list(out_shape)}", "end the network with a 1×1 conv2d to the classes")
        k, h, w = out_shape
        self.classes = k
        for part, a in (("train", splits.train), ("validation", splits.val), ("test", splits.test)):
            if a is not None and len(a):
                _check_masks(part, a, k, h, w)

    def augment(self, x, y, cfg, g):
        """The same geometric draw for images and masks; brightness for the images only."""
        k = self.classes or int(y.max()) + 1
        onehot = F.one_hot(y.long(), k).permute(0, 3, 1, 2).to(x.dtype)  # (N, K, H, W)
        both = aug.augment(torch.cat([x, onehot], 1), dataclasses.replace(cfg, brightness=0.0), g)
        x, masks = both[:, :x.shape[1]], both[:, x.shape[1]:].argmax(1)
        if cfg.brightness:
            x = aug.augment(x, type(cfg)(brightness=cfg.brightness), g)  # only the brightness
        return x, masks.to(y.dtype)


def _check_masks(part: str, a, k: int, h: int, w: int) -> None:
    if a.y.dim() != 3 or a.y.dtype.is_floating_point:
        raise TrainError(f"the {part} targets are not masks of class indices (N, H, W)",
                         "use the shapes source or an images/ + masks/ folder")
    if tuple(a.y.shape[-2:]) != tuple(a.x.shape[-2:]):
        raise TrainError(f"the {part} masks are {list(a.y.shape[-2:])} but the images {list(a.x.shape[-2:])}")
    height, width = a.y.shape[-2:]
    if h > height or w > width:
        raise TrainError(f"the network's output {h}×{w} is larger than its {height}×{width} masks",
                         "segmentation crops masks to the output, it never pads them")
    hi = int(a.y.max())
    if hi >= k:
        raise TrainError(f"the {part} masks have classes 0..{hi} but the network has {k} output channels",
                         f"set the output channels to {hi + 1} (e.g. --set classes={hi + 1})")
