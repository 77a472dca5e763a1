"""Inputs and outputs of ``archc infer``: arrays from .npy/.npz, images for image
classifiers, and the top-k reading of a classifier's output.

An image is read with Pillow, converted to the network's channels (L or RGB), resized to
its height and width (bilinear), scaled to [0, 1] and, when the spec's ``train.data`` (or
the training run beside the checkpoint) gives ``normalize: {mean, std}``, standardised per
channel — what training did to its images.
"""

from __future__ import annotations

from pathlib import Path

from archc.backends.onnx import OnnxError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


def read_input(path, shape, normalize: dict | None = None):
    """The batch to run, float32, batch first. ``shape`` is the input without the batch."""
    path = Path(path)
    if not path.is_file():
        raise OnnxError(f"no such input file: {path}")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return read_image(path, shape, normalize)
    if suffix not in (".npy", ".npz"):
        raise OnnxError(f"{path}: give a .npy or .npz array, or an image ({' '.join(IMAGE_SUFFIXES[:5])} …)")
    array = _read_array(path)
    if array.ndim == len(shape):  # one example: add the batch
        array = array[None]
    return array


def _read_array(path: Path):
    """The array of a .npy, or of a .npz (its `input`, `x` or `inputs`, else its first),
    read within bounds: no pickle, headers checked before allocating (archc/datafiles.py)."""
    from archc.datafiles import DataFileError, npz_names, read_npy, read_npz

    try:
        if path.suffix.lower() == ".npy":
            return read_npy(path)
        names = npz_names(path)
        if not names:
            raise OnnxError(f"{path}: the .npz holds no array")
        name = next((n for n in ("input", "x", "inputs") if n in names), names[0])
        return read_npz(path, [name])[name]
    except DataFileError as exc:
        raise OnnxError(str(exc)) from None


def read_image(path: Path, shape, normalize: dict | None):
    import numpy as np

    if len(shape) != 3 or shape[0] not in (1, 3):
        raise OnnxError(f"{path}: an image fits a network whose input is (1 or 3, H, W), "
                        f"not {list(shape)}; give a .npy array")
    try:
        from PIL import Image
    except ImportError:
        raise OnnxError("reading images needs Pillow (pip install pillow)") from None
    c, h, w = shape
    try:
        with Image.open(path) as img:
            img = img.convert("L" if c == 1 else "RGB").resize((w, h), Image.Resampling.BILINEAR)
            array = np.asarray(img, dtype=np.float32) / 255.0
    except Exception as exc:
        raise OnnxError(f"{path}: not a readable image ({type(exc).__name__})") from None
    array = array[None] if c == 1 else array.transpose(2, 0, 1)  # (C, H, W)
    if normalize:
        mean = np.asarray(normalize["mean"], np.float32).reshape(-1, 1, 1)
        std = np.asarray(normalize["std"], np.float32).reshape(-1, 1, 1)
        array = (array - mean) / std
    return array[None].astype(np.float32)


def probabilities(out, op: str | None):
    """(probabilities, how) from a classifier's output (batch, classes)."""
    import numpy as np

    out = out.astype(np.float64)
    if op == "softmax":
        return out, "the model's own softmax"
    if op == "log_softmax":
        return np.exp(out), "exp of the model's log_softmax"
    if op == "sigmoid":
        return out, "the model's sigmoid (independent per class)"
    z = np.exp(out - out.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True), "softmax applied to the model's logits"


def topk_lines(out, k: int, op: str | None, classes=None) -> list[str]:
    """Readable top-k lines for each example of a (batch, classes) output."""
    import numpy as np

    probs, how = probabilities(out, op)
    lines = [f"top-{min(k, probs.shape[1])} classes (probabilities: {how})"]
    for i, row in enumerate(probs):
        best = np.argsort(-row, kind="stable")[:k]
        names = [classes[j] if classes and j < len(classes) else f"class {j}" for j in best]
        lines.append(f"[{i}] " + ", ".join(f"{n}: {row[j]:.4f}" for n, j in zip(names, best)))
    return lines
