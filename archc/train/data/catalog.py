"""Data sets that need files archc does not ship: which files, where archc looks, how to
fetch them.

archc never downloads anything (training machines are often offline, and a download in
the middle of a run is a surprise). So a named data set whose files are absent, or a
spec's conventional folder (`data/cifar-10-batches-py`) that does not exist yet, is
answered with the same three facts every time: the files it needs, the folders searched,
and the one command that fetches them. ``--data mnist`` reads the first of those folders
that holds the files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# Folders searched for a data set given by name: each folder of $ARCHC_DATA (os.pathsep-
# separated), then ./data (where the fetch commands below put the files).
ENV = "ARCHC_DATA"


@dataclass(frozen=True)
class Download:
    name: str           # as given to --data (and the source that reads it)
    title: str
    files: str          # what must be there
    folders: tuple      # the folder names it is found under, in a data root
    fetch: str | None   # one shell command that puts the files under ./data (None: cannot be fetched)


CATALOG = {d.name: d for d in (
    Download("mnist", "MNIST",
             "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
             "t10k-labels-idx1-ubyte (gzipped or not)",
             ("mnist", "MNIST/raw"),  # MNIST/raw: where torchvision's MNIST(root="data", download=True) puts them
             "mkdir -p data/mnist && for f in train-images-idx3-ubyte train-labels-idx1-ubyte "
             "t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do curl -fsSL -o data/mnist/$f.gz "
             "https://ossci-datasets.s3.amazonaws.com/mnist/$f.gz; done"),
    Download("cifar10", "CIFAR-10 (python version)",
             "data_batch_1 … data_batch_5, test_batch, batches.meta",
             ("cifar-10-batches-py",),
             "mkdir -p data && curl -fsSL https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz | tar xz -C data"),
    Download("imagenet", "ImageNet (ILSVRC-2012)",
             "train/ and val/ folders with one sub-folder of JPEGs per class (n01440764/ …)",
             ("imagenet",),
             None),
)}

IMAGENET_HOWTO = ("ImageNet is not downloadable without an account: get ILSVRC-2012 from image-net.org, "
                  "lay out train/ and val/ with one folder per class, and give --data PATH/train")


def roots() -> list[Path]:
    """The data roots searched, in order."""
    extra = [Path(p).expanduser() for p in os.environ.get(ENV, "").split(os.pathsep) if p]
    return extra + [Path("data")]


def candidates(name: str) -> list[Path]:
    """Every folder where the data set ``name`` is looked for."""
    return [root / folder for root in roots() for folder in CATALOG[name].folders]


def fetch_fix(d: Download) -> str:
    if d.fetch is None:
        return IMAGENET_HOWTO
    return f"fetch them into ./data with:  {d.fetch}   (or give their folder: --data PATH)"


def for_missing_path(path: Path) -> Download | None:
    """The data set a missing path was meant to hold, judged by its folder names
    (``data/cifar-10-batches-py``, ``data/imagenet/train``), else None."""
    parts = [p.lower() for p in path.parts]
    for d in CATALOG.values():
        for folder in d.folders:
            tail = [p.lower() for p in Path(folder).parts]
            if any(parts[i:i + len(tail)] == tail for i in range(len(parts))):
                return d
    return None
