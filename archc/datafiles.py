"""Data files from elsewhere, read within bounds: .npy, .npz and gzip (torch-free).

A data file is as untrusted as a spec. What would go wrong reading one naively:

* a pickle runs code: arrays of Python objects (``dtype=object``) are refused, never
  unpickled (as ``np.load(..., allow_pickle=False)`` does);
* a .npy header states the shape, and NumPy allocates it before reading: a header of 16
  bytes can ask for terabytes. The header is read first and its size compared with the
  bytes that really follow (a *lying* header) and with the memory limit;
* compressed data (gzip, a zip such as .npz) can expand a thousandfold: the size the
  format declares (a zip member's ``file_size``, gzip's ISIZE trailer) is checked before
  decompressing, and the decompressed bytes are counted while reading, stopping past the
  limit — a declared size can lie too (zipfile stops at the declared size and its CRC
  check then fails; a gzip stream is cut at the limit);
* a malformed header or a truncated stream raises one of a dozen exception types; each
  becomes a one-line :class:`DataFileError`.

The limit (:func:`data_limit`) is the one image folders have: half of the machine's
memory (archc keeps data sets in memory), or ARCHC_MEMORY_LIMIT when it is smaller.
"""

from __future__ import annotations

import gzip
import math
import os
import zipfile
import zlib

import numpy as np

CHUNK = 1 << 20  # decompressed bytes read at a time
MAX_MEMBERS = 10_000  # arrays in one .npz: a real one holds a handful
_READ_ERRORS = (OSError, EOFError, ValueError, zlib.error, zipfile.BadZipFile, NotImplementedError,
                RuntimeError, SyntaxError, TypeError, OverflowError, MemoryError)


class DataFileError(ValueError):
    """A data file that cannot be read safely; the message is one line naming the file."""


def data_limit() -> tuple[int, str]:
    """(bytes, what they are): the most one data set may take in memory."""
    try:
        half = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        half = 8 << 30
    limit = (half, "half of this machine's memory")
    text = os.environ.get("ARCHC_MEMORY_LIMIT", "").strip()
    if text:
        from archc.analysis.memory import parse_bytes

        try:
            limit = min(limit, (parse_bytes(text), "ARCHC_MEMORY_LIMIT"))
        except ValueError as exc:
            raise DataFileError(f"ARCHC_MEMORY_LIMIT: {exc}") from None
    return limit


def _size(n: int) -> str:
    for scale, unit in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _too_large(what: str, need: int, how: str) -> DataFileError:
    limit, where = data_limit()
    return DataFileError(f"{what}: {how} {_size(need)}, more than the {_size(limit)} a data set may take "
                         f"({where})")


# --------------------------------------------------------------------------- .npy


def _read_header(fp, what: str) -> tuple[tuple, bool, np.dtype]:
    """(shape, fortran order, dtype) of the .npy stream ``fp``, positioned after the header."""
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(fp)
        read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, fortran, dtype = read(fp)
    except (zipfile.BadZipFile, zlib.error, EOFError):
        raise  # the stream, not the header, is broken: the caller says so
    except Exception as exc:  # noqa: BLE001 (NumPy's parser raises ValueError, SyntaxError, tokenize's TokenError...)
        raise DataFileError(f"{what}: not a readable NumPy file (a malformed header: {_first_line(exc)})") from None
    if dtype.hasobject:
        raise DataFileError(f"{what}: holds Python objects (dtype {dtype}), which only pickle can read; "
                            "archc reads arrays of numbers only")
    return shape, fortran, dtype


def read_npy_stream(fp, available: int, what: str) -> np.ndarray:
    """The array of a .npy stream of ``available`` bytes in all (header included): its
    header checked against them and the limit before anything is allocated."""
    shape, fortran, dtype = _read_header(fp, what)
    count = math.prod(shape)
    need, left = count * dtype.itemsize, available - fp.tell()
    if need > left:
        raise DataFileError(f"{what}: the header says {count:,} values of {dtype} in shape {shape} "
                            f"({_size(need)}) but the file holds {_size(max(left, 0))} after it")
    if need > data_limit()[0]:
        raise _too_large(what, need, f"the array of shape {shape} takes")
    data = bytearray(need)
    view, got = memoryview(data), 0
    try:
        while got < need:
            n = fp.readinto(view[got:])
            if not n:
                break
            got += n
    except _READ_ERRORS as exc:
        raise DataFileError(f"{what}: cannot read the array data ({_first_line(exc)})") from None
    if got < need:
        raise DataFileError(f"{what}: the file ends after {got:,} of the {need:,} bytes its header states")
    return np.frombuffer(data, dtype=dtype, count=count).reshape(shape, order="F" if fortran else "C")


def read_npy(path) -> np.ndarray:
    what = str(path)
    try:
        with open(path, "rb") as fp:
            return read_npy_stream(fp, os.fstat(fp.fileno()).st_size, what)
    except OSError as exc:
        raise DataFileError(f"{what}: cannot read the file ({exc.strerror or exc})") from None


# --------------------------------------------------------------------------- .npz (a zip of .npy)


def read_npz(path, names=None) -> dict[str, np.ndarray]:
    """The arrays of a .npz file (of ``names`` only, when given; a name it lacks is left
    out, for the caller to report): their declared sizes checked before any is decompressed."""
    what = str(path)
    try:
        archive = zipfile.ZipFile(path)
    except _READ_ERRORS as exc:
        raise DataFileError(f"{what}: not a .npz file (not a zip archive: {_first_line(exc)})") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise DataFileError(f"{what}: holds {len(infos):,} files, more than the {MAX_MEMBERS:,} a .npz may hold")
        members = {i.filename[:-4]: i for i in infos if i.filename.endswith(".npy")}
        wanted = [n for n in (names if names is not None else members) if n in members]
        declared = sum(members[n].file_size for n in wanted)
        if declared > data_limit()[0]:
            raise _too_large(what, declared, "its arrays declare")
        out = {}
        for name in wanted:
            info = members[name]
            try:
                with archive.open(info) as fp:
                    out[name] = read_npy_stream(fp, info.file_size, f"{what} ({info.filename})")
            except DataFileError:
                raise
            except _READ_ERRORS as exc:
                raise DataFileError(f"{what} ({info.filename}): cannot decompress it ({_first_line(exc)})") from None
        return out


def npz_names(path) -> list[str]:
    """The array names of a .npz, in order (reads the zip's directory only)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return [i.filename[:-4] for i in archive.infolist()[:MAX_MEMBERS + 1] if i.filename.endswith(".npy")]
    except _READ_ERRORS as exc:
        raise DataFileError(f"{path}: not a .npz file (not a zip archive: {_first_line(exc)})") from None


# --------------------------------------------------------------------------- gzip


def read_gzip(path) -> bytes:
    """The decompressed bytes of a gzip file: the size its trailer declares (ISIZE, the
    size modulo 2**32) checked first, then the bytes counted as they come."""
    what, limit = str(path), data_limit()[0]
    try:
        with open(path, "rb") as raw:
            size = os.fstat(raw.fileno()).st_size
            if size >= 18:  # header 10 + trailer 8: ISIZE is the last 4 bytes, little-endian
                raw.seek(-4, os.SEEK_END)
                declared = int.from_bytes(raw.read(4), "little")
                if declared > limit:
                    raise _too_large(what, declared, "it declares")
                raw.seek(0)
            chunks, total = [], 0
            with gzip.GzipFile(fileobj=raw) as stream:
                while chunk := stream.read(CHUNK):
                    total += len(chunk)
                    if total > limit:  # the trailer lied (or the file holds several streams)
                        raise DataFileError(f"{what}: decompresses to more than {_size(limit)}, the most a "
                                            f"data set may take ({data_limit()[1]}); stopped reading there")
                    chunks.append(chunk)
    except DataFileError:
        raise
    except _READ_ERRORS as exc:
        raise DataFileError(f"{what}: not a readable gzip file ({_first_line(exc)})") from None
    return b"".join(chunks)


def read_bytes(path) -> bytes:
    """A plain file's bytes, when its size is within the limit."""
    size = os.path.getsize(path)
    if size > data_limit()[0]:
        raise _too_large(str(path), size, "it holds")
    with open(path, "rb") as f:
        return f.read()


def _first_line(exc: BaseException) -> str:
    text = (str(exc).splitlines() or [""])[0][:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
