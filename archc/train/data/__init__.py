"""Data for training: sources, splits, checks, normalisation, batches.

A *source* turns a name or a path into arrays in memory: ``Arrays(x, y, classes)`` with
images as float32 tensors (N, C, H, W) in [0, 1] and targets as a tensor, plus an
optional ``test`` part when the data set has its own (MNIST, CIFAR-10). Sources register
themselves with :func:`register_source`; a path is given to the first source whose
``claims(path)`` says yes (an .npz file, a folder of IDX files, of CIFAR batches, of
class sub-folders). Adding a source (the segmentation helper's shapes and image/mask
folders) is one function and its decorator, no edit here.

:func:`prepare` then fixes the splits (a seeded shuffle independent of the training seed,
so the test set never changes between runs), fits the images to the spec's input,
normalises, and hands back ``Splits(train, val, test)``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from archc.train.errors import TrainError


@dataclass
class Arrays:
    """A data set in memory: inputs, targets, class names; ``test`` its own test part."""

    x: torch.Tensor
    y: torch.Tensor
    classes: list | None = None
    test: "Arrays | None" = None
    name: str = ""
    resizable: bool = False  # the source's images may be resized to the spec's input (digits)
    val: "Arrays | None" = None  # the source's own fixed validation part (text: its last 10 %)

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, index) -> "Arrays":
        return Arrays(self.x[index], self.y[index], self.classes, None, self.name, self.resizable)


@dataclass
class Splits:
    train: Arrays
    val: Arrays | None
    test: Arrays | None
    classes: list | None = None
    normalize: dict = field(default_factory=dict)  # {"mean": [...], "std": [...]} when applied
    notes: list = field(default_factory=list)  # what was done to fit the data (shown on the 'data:' line)


@dataclass(frozen=True)
class Source:
    name: str
    load: Callable  # (path or None, cfg: DataConfig, input shape) -> Arrays
    claims: Callable | None = None  # path -> bool, for sources given by a path
    doc: str = ""
    specific: bool = False  # its claim is asked before the general ones (images/ + masks/ before class folders)


SOURCES: dict[str, Source] = {}


def register_source(name: str, claims: Callable | None = None, specific: bool = False):
    """Decorator: ``@register_source("digits")`` over ``load(path, cfg, shape) -> Arrays``;
    ``specific``: a layout that a general source would also claim, asked first."""

    def deco(load):
        if name in SOURCES:
            raise ValueError(f"data source {name!r} registered twice")
        SOURCES[name] = Source(name, load, claims, (load.__doc__ or "").strip().splitlines()[0], specific)
        return load

    return deco


def load_source(spec: str, cfg, shape: tuple) -> Arrays:
    """A source name (``digits``, ``mnist``) or path -> Arrays; ``cfg`` is the DataConfig, ``shape``
    the spec's input (sources that decode images may decode them at that size). Raises TrainError."""
    from archc.train.data import catalog, shapes, sources, text  # noqa: F401  (registers the built-in sources)

    if spec in catalog.CATALOG and spec in SOURCES:  # a named data set whose files are fetched once (mnist)
        return _load_named(spec, cfg, shape)
    if spec in SOURCES:
        source = SOURCES[spec]
        if source.claims is not None:  # a kind of file or folder, not a data set by itself
            raise TrainError(f"data source {spec!r} is a kind of file or folder, not a data set",
                             f"give its path: --data PATH, where PATH is {_sentence(source.doc)}")
        return source.load(None, cfg, shape)
    path = Path(spec).expanduser()
    meant = catalog.for_missing_path(path)
    if not path.exists():
        if meant is not None:  # the spec's conventional folder (data/cifar-10-batches-py), not fetched yet
            raise TrainError(f"data source '{spec}': no such folder — it should hold {meant.title}: {meant.files}",
                             catalog.fetch_fix(meant))
        close = difflib.get_close_matches(spec, names(), n=1)
        fix = f"did you mean `{close[0]}`?" if close else "give " + WHAT_DATA_IS
        raise TrainError(f"data source {spec!r}: no such file or folder", fix)
    for source in sorted(SOURCES.values(), key=lambda s: not s.specific):  # specific first, else in order
        if source.claims is not None and source.claims(path):
            return source.load(path, cfg, shape)
    if meant is not None:
        raise TrainError(f"data source {spec}: no {meant.title} files there (it needs {meant.files})",
                         catalog.fetch_fix(meant))
    raise TrainError(f"data source {spec}: not a data set archc can read", "give " + WHAT_DATA_IS)


def _sentence(doc: str) -> str:
    """A source's one-line docstring inside a message: lower-case start, no dot, no RST quotes."""
    doc = doc.replace("``", "").rstrip(".")
    return doc[:1].lower() + doc[1:]


# One sentence for every message that says what --data takes (docs/train.md#data says the same).
WHAT_DATA_IS = ("a data set's name (digits, shapes, pysource, mnist, cifar10) or a path: an .npz file (x, y), "
                "a folder with one sub-folder of images per class, a folder of MNIST IDX files, "
                "or a CIFAR-10 python-batches folder")


def names() -> list[str]:
    """The names --data takes: sources that need no path, and the fetched data sets."""
    from archc.train.data import catalog

    return sorted(n for n, s in SOURCES.items() if s.claims is None or n in catalog.CATALOG)


def _load_named(name: str, cfg, shape) -> Arrays:
    from archc.train.data import catalog

    source, looked = SOURCES[name], catalog.candidates(name)
    for folder in looked:
        if source.claims(folder):
            return source.load(folder, cfg, shape)
    d = catalog.CATALOG[name]
    raise TrainError(f"data set {name!r} needs its files ({d.files}); archc looked in "
                     + ", ".join(str(f) for f in looked), catalog.fetch_fix(d))


def prepare(cfg, input_shape: tuple) -> Splits:
    """Load ``cfg.data`` (``cfg`` the TrainConfig) and make the train/val/test splits fitted to ``input_shape``."""
    from archc.train.data.fit import fit_images, normalize

    data = cfg.data
    full = load_source(data.source, data, input_shape)
    rest, test = _test_part(full, data, input_shape)
    if data.val is not None:
        train, val = rest, load_source(data.val, data, input_shape)
    elif full.val is not None:  # a fixed split of the source's own (text: no shuffled windows)
        train, val = rest, full.val
    else:
        train, val = _split(rest, data.val_split, data.split_seed + 1)
    if data.limit is not None:
        train = train.subset(slice(0, data.limit))
    notes: list = []
    parts = [fit_images(p, input_shape, data.resize, data.source, notes) if p is not None else None
             for p in (train, val, test)]
    stats = normalize(parts, data.normalize)
    return Splits(*parts, classes=full.classes, normalize=stats, notes=list(dict.fromkeys(notes)))


def _test_part(full: Arrays, data, shape) -> tuple[Arrays, Arrays | None]:
    if data.test is not None:
        return full, None if data.test == "none" else load_source(data.test, data, shape)
    if full.test is not None or full.val is not None:  # a source that splits itself
        return full, full.test
    return _split(full, data.test_split, data.split_seed)


def _split(a: Arrays, fraction: float, seed: int) -> tuple[Arrays, Arrays | None]:
    """(rest, part): a fixed fraction chosen by a seeded shuffle; for class labels it is
    stratified (each class gives its share: examples are taken in the order of their
    relative position within their class), so every class is in both parts."""
    if fraction <= 0:
        return a, None
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(a), generator=g)
    count = max(1, round(len(a) * fraction))
    if a.y.dtype == torch.long and a.y.dim() == 1:
        keys = torch.empty(len(a))
        for c in torch.unique(a.y):
            members = order[a.y[order] == c]
            keys[members] = (torch.arange(len(members)) + 0.5) / len(members)
        order = order[torch.sort(keys[order], stable=True).indices]
    part = order[:count]
    mask = torch.ones(len(a), dtype=torch.bool)
    mask[part] = False
    part = part.sort().values
    return a.subset(mask.nonzero().flatten()), a.subset(part)


def epoch_order(n: int, seed: int, epoch: int, rank: int = 0, world: int = 1) -> torch.Tensor:
    """The order of the training examples in ``epoch``: a permutation seeded by (seed,
    epoch) alone, so a resumed run sees the same order; ``rank``/``world`` take every
    world-th example (the shard a DDP rank trains on, as DistributedSampler does)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=g)
    if world > 1:
        pad = (-n) % world  # every rank gets as many examples (DistributedSampler's padding)
        order = torch.cat([order, order[:pad]])[rank::world]
    return order


def batches(a: Arrays, batch_size: int, order: torch.Tensor | None = None, device=None, pin=False):
    """Mini-batches (x, y) of ``a`` in ``order`` (default: as stored), moved to ``device``."""
    n = len(a) if order is None else len(order)
    non_blocking = pin and device is not None and torch.device(device).type == "cuda"
    for start in range(0, n, batch_size):
        index = slice(start, start + batch_size) if order is None else order[start:start + batch_size]
        x, y = a.x[index], a.y[index]
        if non_blocking:
            x, y = x.pin_memory(), y.pin_memory()
        if device is not None:
            x, y = x.to(device, non_blocking=non_blocking), y.to(device, non_blocking=non_blocking)
        yield x, y
