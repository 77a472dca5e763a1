"""Checkpoints and run-directory files, written atomically.

Every file of a run is written to a temporary file in the same folder, flushed and
fsync'ed, then renamed over the old one with ``os.replace`` (atomic on POSIX and
Windows) and the folder fsync'ed: a kill or a full disk at any moment leaves either the
old file or the new one, never half of one. A failed write removes its temporary file
and raises TrainError; the previous checkpoint stays.

A checkpoint is a dict of tensors and plain values (readable with
``torch.load(weights_only=True)``, which runs no code): ``model`` (state_dict), ``optimizer``,
``schedule``, ``epoch`` (the number of finished epochs), ``step``, ``history`` (the
per-epoch metrics), ``best`` and early-stopping state, and ``rng`` — the Python, NumPy and
torch generators' states as tensors and numbers.
"""

from __future__ import annotations

import errno
import io
import json
import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from archc.train.errors import TrainError

FORMAT = "archc.checkpoint/1"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that it is complete or not there at all."""
    path = Path(path)
    fd, tmp = None, None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; run files are shared like any other
        with os.fdopen(fd, "wb") as f:
            fd = None
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    except OSError as exc:
        raise TrainError(f"cannot write {path}: {_why(exc)}", _fix(exc)) from None
    finally:
        if fd is not None:
            os.close(fd)
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    """The process's umask (reading it means setting it: put it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    if os.name == "posix":
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _why(exc: OSError) -> str:
    return {errno.ENOSPC: "no space left on the device", errno.EACCES: "permission denied",
            errno.EROFS: "read-only file system", errno.EDQUOT: "disk quota exceeded"}.get(
        exc.errno, exc.strerror or str(exc))


def _fix(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "free some space; the last complete checkpoint is kept, continue with --resume"
    return "choose a writable run directory with --out"


def write_json(path: Path, data) -> None:
    write_atomic(path, (json.dumps(data, indent=2) + "\n").encode())


def save(path: Path, state: dict) -> None:
    """``state`` (see the module doc) to ``path``, atomically."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT} | state, buffer)
    write_atomic(path, buffer.getvalue())


def load(path, map_location="cpu") -> dict:
    """A checkpoint (or any tensor file) read without running code (weights_only)."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise TrainError(f"no checkpoint at {path}") from None
    except Exception as exc:  # torch raises pickle/zip/runtime errors for a foreign or broken file
        raise TrainError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})".splitlines()[0],
                         "give a file written by archc train or torch.save(state_dict)") from None


def model_state(obj: dict) -> dict:
    """The model's state_dict in an archc checkpoint, or ``obj`` itself (a plain state_dict)."""
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        return obj["model"]
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        return obj["state_dict"]
    return obj


# --------------------------------------------------------------------------- RNG states


def rng_state() -> dict:
    """Python, NumPy and torch (CPU and CUDA) generator states as tensors and plain values."""
    version, mt, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {"python": [version, torch.tensor(mt, dtype=torch.int64), gauss],
             "numpy": [np_name, torch.from_numpy(np_keys.astype(np.int64)), int(np_pos), int(np_has_gauss),
                       float(np_gauss)],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(int(v) for v in mt.tolist()), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
