"""The built-in data sources: digits (ships in scikit-learn), .npz arrays, image folders,
MNIST IDX files, CIFAR-10 python batches. Each reads into memory as :class:`Arrays`
(images float32 (N, C, H, W) in [0, 1], class labels int64)."""

from __future__ import annotations

import io
import math
import pickle
from pathlib import Path

import numpy as np
import torch

from archc.datafiles import data_limit
from archc.train.data import Arrays, register_source
from archc.train.errors import TrainError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


def _digits_file():
    """scikit-learn's digits.csv.gz, found without importing scikit-learn (2 s of start-up)."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    return None


@register_source("digits")
def digits(path, cfg, shape) -> Arrays:
    """scikit-learn's 1,797 handwritten digits (8×8, 16 grey levels), resized to the spec's input."""
    file = _digits_file()
    if file is not None:  # 1797 rows: 64 pixel values 0..16, then the label
        table = np.loadtxt(file, delimiter=",", dtype=np.float32)
        images, target = table[:, :64].reshape(-1, 8, 8), table[:, 64].astype(np.int64)
    else:
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise TrainError("the default data set (digits) needs scikit-learn",
                             "pip install 'archc[train]' (or scikit-learn), or give --data PATH") from None
        bunch = load_digits()
        images, target = bunch.images.astype(np.float32), bunch.target.astype(np.int64)
    x = torch.from_numpy(images / 16.0).unsqueeze(1)  # (N, 1, 8, 8) in [0, 1]
    return Arrays(x, torch.from_numpy(target), [str(c) for c in range(10)], name="digits", resizable=True)


# --------------------------------------------------------------------------- .npz


def _is_npz(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".npz"


@register_source("npz", claims=_is_npz)
def npz(path, cfg, shape) -> Arrays:
    """A NumPy .npz file with arrays ``x`` (N, ...) and ``y`` (N, ...); uint8 images are scaled to [0, 1]."""
    from archc.datafiles import DataFileError, npz_names, read_npz

    try:  # bounded: declared sizes, headers and decompressed bytes checked (archc/datafiles.py)
        files = npz_names(path)
        missing = [k for k in ("x", "y") if k not in files]
        if missing:
            raise TrainError(f"{path}: no array named {missing[0]!r} (it has {', '.join(files) or 'none'})",
                             "save it with np.savez(path, x=inputs, y=targets)")
        arrays = read_npz(path, ["x", "y"])
    except DataFileError as exc:
        raise TrainError(str(exc)) from None
    x, y = arrays["x"], arrays["y"]
    if len(x) != len(y):
        raise TrainError(f"{path}: x has {len(x)} examples but y has {len(y)}")
    xt = torch.from_numpy(x.astype(np.float32) / (255.0 if x.dtype == np.uint8 else 1.0))
    if xt.dim() == 3:  # (N, H, W) grey images
        xt = xt.unsqueeze(1)
    yt = torch.from_numpy(y.astype(np.int64) if np.issubdtype(y.dtype, np.integer) else y.astype(np.float32))
    return Arrays(xt, yt, name=str(path))


# --------------------------------------------------------------------------- image folders


def _class_dirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _is_folder(path: Path) -> bool:
    return path.is_dir() and any(_images_in(d) for d in _class_dirs(path))


@register_source("folder", claims=_is_folder)
def folder(path, cfg, shape) -> Arrays:
    """A folder with one sub-folder of images per class (the class names are the folder names)."""
    from PIL import Image, UnidentifiedImageError

    classes = [d for d in _class_dirs(path) if _images_in(d)]
    mode = "L" if len(shape) == 3 and shape[0] == 1 else "RGB"
    _check_fits_in_memory(path, classes, shape, mode, cfg.resize)
    xs, ys = [], []
    for label, d in enumerate(classes):
        for file in _images_in(d):
            try:
                with Image.open(file) as im:
                    im = im.convert(mode)
                    if cfg.resize and len(shape) == 3 and im.size != (shape[2], shape[1]):
                        im = im.resize((shape[2], shape[1]), Image.BILINEAR)
                    arr = np.asarray(im, dtype=np.uint8)
            except (UnidentifiedImageError, OSError) as exc:
                raise TrainError(f"{file}: cannot read this image ({exc})") from None
            xs.append(arr)
            ys.append(label)
    sizes = {a.shape for a in xs}
    if len(sizes) > 1:
        raise TrainError(f"{path}: the images have different sizes ({', '.join(map(str, sorted(sizes)[:3]))}...)",
                         "set train.data.resize: true to resize them to the spec's input")
    x = torch.from_numpy(np.stack(xs)).float().div_(255.0)
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2).contiguous()  # (N, C, H, W)
    return Arrays(x, torch.tensor(ys, dtype=torch.long), [d.name for d in classes], name=str(path))


def _check_fits_in_memory(path: Path, classes: list, shape, mode: str, resize: bool) -> None:
    """Refuse, before decoding anything, a folder whose images would not fit in memory as
    float32 (an ImageNet-sized folder): a clear error instead of the machine swapping."""
    from PIL import Image

    files = [f for d in classes for f in _images_in(d)]
    if not files:
        return
    with Image.open(files[0]) as im:
        w, h = (shape[2], shape[1]) if resize and len(shape) == 3 else im.size
    need = len(files) * h * w * (1 if mode == "L" else 3) * 4
    limit, what = data_limit()  # the limit .npy/.npz files have (ARCHC_MEMORY_LIMIT included)
    if need > limit:
        raise TrainError(f"{path}: {len(files):,} images of {w}×{h} need {need / 2**30:.1f} GiB in memory "
                         f"(more than {what}, {limit / 2**30:.1f} GiB)",
                         "archc train keeps data sets in memory: train on a folder with fewer or smaller "
                         "images (resize: true decodes them at the spec's input size)")


# --------------------------------------------------------------------------- MNIST IDX


def _idx_files(path: Path, kind: str) -> list[Path]:
    return sorted(p for p in path.rglob(f"*{kind}*idx*") if p.is_file())


def _is_mnist(path: Path) -> bool:
    return path.is_dir() and bool(_idx_files(path, "images"))


def read_idx(file: Path) -> np.ndarray:
    """An IDX file (LeCun's MNIST format, optionally gzipped): magic 0 0 TYPE NDIM, NDIM
    big-endian int32 sizes, then the data."""
    from archc.datafiles import DataFileError, read_bytes, read_gzip

    try:  # within the data limit, a .gz checked before and while it is decompressed
        raw = read_gzip(file) if file.suffix == ".gz" else read_bytes(file)
    except DataFileError as exc:
        raise TrainError(str(exc)) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or len(raw) < 4 + 4 * raw[3]:
        raise TrainError(f"{file}: not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = [int(d) for d in np.frombuffer(raw, ">i4", ndim, 4)]
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != math.prod(dims) or min(dims, default=0) < 0:
        raise TrainError(f"{file}: the header says {tuple(dims)} but the file holds {data.size} values")
    return data.reshape(tuple(dims))


@register_source("mnist", claims=_is_mnist)
def mnist(path, cfg, shape) -> Arrays:
    """A folder of MNIST IDX files: train-images/labels and t10k-images/labels (.gz or not)."""
    parts = {}
    for prefix in ("train", "t10k"):
        images = [p for p in _idx_files(path, "images") if p.name.startswith(prefix)]
        labels = [p for p in _idx_files(path, "labels") if p.name.startswith(prefix)]
        if images and labels:
            x = torch.from_numpy(read_idx(images[0]).astype(np.float32) / 255.0).unsqueeze(1)
            y = torch.from_numpy(read_idx(labels[0]).astype(np.int64))
            if len(x) != len(y):
                raise TrainError(f"{images[0]}: {len(x)} images but {labels[0].name} has {len(y)} labels")
            parts[prefix] = Arrays(x, y, [str(i) for i in range(10)], name=str(path))
    if "train" not in parts:
        raise TrainError(f"{path}: no train-images-idx3-ubyte with its train-labels-idx1-ubyte")
    train = parts["train"]
    train.test = parts.get("t10k")
    return train


# --------------------------------------------------------------------------- CIFAR-10


def _is_cifar(path: Path) -> bool:
    return path.is_dir() and (path / "data_batch_1").is_file()


class _SafeUnpickler(pickle.Unpickler):
    """CIFAR batches are pickles; a pickle can run code, so only the classes NumPy arrays
    are rebuilt from are allowed (anything else is refused, never imported)."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"),
               ("_codecs", "encode")}  # how Python 3 pickles bytes at protocol 2: a pure function

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _unpickle(file: Path) -> dict:
    from archc.datafiles import DataFileError, read_bytes

    try:
        data = read_bytes(file)  # within the data limit, before the unpickler holds it
    except DataFileError as exc:
        raise TrainError(str(exc)) from None
    try:
        with io.BytesIO(data) as f:
            data = _SafeUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, OSError, ValueError) as exc:
        raise TrainError(f"{file}: not a CIFAR-10 python batch ({exc})") from None
    if not isinstance(data, dict):
        raise TrainError(f"{file}: not a CIFAR-10 python batch")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in data.items()}


def _cifar_part(files: list[Path], classes) -> Arrays:
    xs, ys = [], []
    for file in files:
        batch = _unpickle(file)
        xs.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(batch["labels"], dtype=np.int64))
    x = torch.from_numpy(np.concatenate(xs)).float().div_(255.0)
    return Arrays(x, torch.from_numpy(np.concatenate(ys)), classes, name=str(files[0].parent))


@register_source("cifar10", claims=_is_cifar)
def cifar10(path, cfg, shape) -> Arrays:
    """A CIFAR-10 python-batches folder (data_batch_1..5, test_batch, batches.meta)."""
    classes = None
    if (path / "batches.meta").is_file():
        names = _unpickle(path / "batches.meta").get("label_names")
        classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names] if names else None
    train = _cifar_part(sorted(path.glob("data_batch_*")), classes)
    if (path / "test_batch").is_file():
        train.test = _cifar_part([path / "test_batch"], classes)
    return train
