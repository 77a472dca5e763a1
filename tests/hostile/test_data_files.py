"""Issue 11.4: data files. Compressed data (an MNIST .gz, a .npz, which is a zip) is
size-checked before it is decompressed (the size the format declares) and while it is
(the bytes counted, reading stopped past the limit); arrays of Python objects, malformed
.npy headers and headers that state more data than the file holds are refused with one
line — by `archc train --data` and `archc infer --input` alike.

The data limit is made small here (ARCHC_MEMORY_LIMIT=8MiB) so that a 64 MiB bomb means
the same on every machine; hostile_run.py's address-space limit would stop a reader that
allocated what a lying header asks for (10**12 values). Every file is written out byte by
byte in this test (numpy.lib.format's documented layout, gzip's trailer), not by archc."""

from __future__ import annotations

import gzip
import io
import struct
import zipfile

import numpy as np
import pytest

from hostile_run import assert_clean_failure, run_archc

from archc import datafiles

SPEC = "archc: 1\ninput: [4]\nlayers:\n  - linear: {out: 3}\ntrain: {epochs: 1, batch_size: 4}\n"
LIMIT = 8 << 20


def npy_bytes(header: str, data: bytes = b"", version: int = 1) -> bytes:
    """A .npy file: magic, version, header length, the header (a dict literal, padded with
    spaces to 64 bytes and ended by a newline), then the raw data."""
    text = header.encode("latin1")
    head_len = 10 if version == 1 else 12
    pad = -(head_len + len(text) + 1) % 64
    text += b" " * pad + b"\n"
    size = struct.pack("<H", len(text)) if version == 1 else struct.pack("<I", len(text))
    return b"\x93NUMPY" + bytes([version, 0]) + size + text + data


GOOD_X = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (8, 4), }", np.ones((8, 4), "<f4").tobytes())
GOOD_Y = npy_bytes("{'descr': '<i8', 'fortran_order': False, 'shape': (8,), }", (np.arange(8) % 3).astype("<i8").tobytes())
LYING = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }", b"\0" * 64)
MALFORMED = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (8, 4)", b"\0" * 128)  # no closing brace
OBJECTS = npy_bytes("{'descr': '|O', 'fortran_order': False, 'shape': (8,), }", b"\x80\x02" + b"\0" * 62)


def write_npz(path, members: dict, compress=zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "w", compress) as z:
        for name, data in members.items():
            z.writestr(name + ".npy", data)


def zeros_member(path, mib: int) -> None:
    """A .npz whose member x is a consistent .npy of ``mib`` MiB of zeros, deflated to a
    few hundred KiB: a decompression bomb that states its size honestly."""
    count = mib * (1 << 20) // 4
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("x.npy", "w", force_zip64=True) as f:
            f.write(npy_bytes(f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({count},), }}"))
            for _ in range(mib):
                f.write(b"\0" * (1 << 20))
        z.writestr("y.npy", GOOD_Y)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    (tmp_path / "net.yaml").write_text(SPEC)
    (tmp_path / "w.pt").write_bytes(b"never read: the input is refused first")
    monkeypatch.setenv("ARCHC_MEMORY_LIMIT", "8MiB")  # the runs below inherit it
    return tmp_path


def train_error(folder, data) -> str:
    result = run_archc(["train", "net.yaml", "--data", data, "--out", "run", "--device", "cpu", "--quiet"],
                       folder, timeout=180)
    err = assert_clean_failure(result, (1,))
    assert len(err.splitlines()) == 1, err
    return err.strip()


# ------------------------------------------------------------------ .npz through `archc train --data`


@pytest.mark.parametrize("x, expected", [
    (OBJECTS, "bad.npz (x.npy): holds Python objects (dtype object), which only pickle can read; "
              "archc reads arrays of numbers only"),
    (MALFORMED, "bad.npz (x.npy): not a readable NumPy file (a malformed header: "),
    (LYING, "bad.npz (x.npy): the header says 1,000,000,000,000 values of float32 in shape (1000000, 1000000) "
            "(3.6 TiB) but the file holds 64 B after it"),
])
def test_hostile_npz_members_are_refused_in_one_line(folder, x, expected):
    write_npz(folder / "bad.npz", {"x": x, "y": GOOD_Y}, zipfile.ZIP_DEFLATED)
    assert train_error(folder, "bad.npz").startswith(f"archc: error: {expected}")


def test_a_npz_bomb_is_refused_by_its_declared_size(folder):
    zeros_member(folder / "bomb.npz", 64)  # 64 MiB of zeros in about 64 KiB
    assert (folder / "bomb.npz").stat().st_size < 1 << 20
    assert train_error(folder, "bomb.npz") == (
        "archc: error: bomb.npz: its arrays declare 64.0 MiB, more than the 8.0 MiB a data set may take "
        "(ARCHC_MEMORY_LIMIT)")


def test_a_zip_member_that_lies_about_its_size_stops_at_the_declared_size(folder):
    """The zip says x.npy holds 200 bytes; its deflated stream holds 4 MiB: zipfile stops
    reading at 200, where the checksum of what it read then fails."""
    write_npz(folder / "liar.npz", {"x": npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1048576,), }",
                                                   b"\0" * (4 << 20)), "y": GOOD_Y}, zipfile.ZIP_DEFLATED)
    data = bytearray((folder / "liar.npz").read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        local, central = z.getinfo("x.npy").header_offset, z.start_dir  # x.npy is the first member
    # the uncompressed size is written twice: in the local header (at 22) and in the
    # central directory's entry (at 24), as the zip format (APPNOTE.TXT 4.3.7, 4.3.12) lays them out
    data[local + 22:local + 26] = data[central + 24:central + 28] = struct.pack("<I", 200)
    (folder / "liar.npz").write_bytes(bytes(data))
    assert train_error(folder, "liar.npz") == (
        "archc: error: liar.npz (x.npy): cannot decompress it (BadZipFile: Bad CRC-32 for file 'x.npy')")


# ------------------------------------------------------------------ MNIST .gz


def idx(array: np.ndarray) -> bytes:
    """LeCun's IDX layout: 0 0 type(8 = unsigned byte) ndim, big-endian int32 sizes, data."""
    return struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape) \
        + array.astype(np.uint8).tobytes()


def mnist_folder(folder, images: bytes):
    root = folder / "idx"  # not "mnist": that names the catalog's data set
    root.mkdir()
    (root / "train-images-idx3-ubyte.gz").write_bytes(images)
    (root / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx(np.arange(4) % 3)))
    return "idx"


def gzip_of_zeros(mib: int) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb") as g:
        g.write(idx(np.zeros((0, 2, 2))))  # a header for 0 images, then the bomb's zeros
        for _ in range(mib):
            g.write(b"\0" * (1 << 20))
    return out.getvalue()


def test_a_gzip_bomb_is_refused_by_its_declared_size(folder):
    bomb = gzip_of_zeros(64)
    assert int.from_bytes(bomb[-4:], "little") == 64 * (1 << 20) + 4 + 4 * 3  # gzip's ISIZE trailer
    assert train_error(folder, mnist_folder(folder, bomb)) == (
        "archc: error: idx/train-images-idx3-ubyte.gz: it declares 64.0 MiB, more than the 8.0 MiB a "
        "data set may take (ARCHC_MEMORY_LIMIT)")


def test_a_gzip_whose_trailer_lies_is_stopped_while_decompressing(folder):
    bomb = bytearray(gzip_of_zeros(64))
    bomb[-4:] = struct.pack("<I", 100)  # claims 100 bytes
    assert train_error(folder, mnist_folder(folder, bytes(bomb))) == (
        "archc: error: idx/train-images-idx3-ubyte.gz: decompresses to more than 8.0 MiB, the most a data "
        "set may take (ARCHC_MEMORY_LIMIT); stopped reading there")


# ------------------------------------------------------------------ .npy through `archc infer --input`


@pytest.mark.parametrize("data, expected", [
    (LYING, "bad.npy: the header says 1,000,000,000,000 values of float32 in shape (1000000, 1000000) "
            "(3.6 TiB) but the file holds 64 B after it"),
    (OBJECTS, "bad.npy: holds Python objects (dtype object), which only pickle can read; archc reads arrays "
              "of numbers only"),
])
def test_infer_refuses_hostile_npy_inputs(folder, data, expected):
    (folder / "bad.npy").write_bytes(data)
    result = run_archc(["infer", "net.yaml", "--weights", "w.pt", "--input", "bad.npy"], folder, timeout=180)
    assert assert_clean_failure(result, (1,)).strip() == f"archc: error: {expected}"


# ------------------------------------------------------------------ the readers, in this process


def test_the_readers_return_what_numpy_wrote(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHC_MEMORY_LIMIT", "8MiB")
    a = np.arange(24, dtype=">i2").reshape(2, 3, 4)
    np.save(tmp_path / "a.npy", np.asfortranarray(a))
    np.savez_compressed(tmp_path / "b.npz", x=a, y=a[0])
    assert np.array_equal(datafiles.read_npy(tmp_path / "a.npy"), a)
    both = datafiles.read_npz(tmp_path / "b.npz")
    assert np.array_equal(both["x"], a) and np.array_equal(both["y"], a[0])
    assert datafiles.read_npz(tmp_path / "b.npz", ["y", "z"]).keys() == {"y"}
    (tmp_path / "c.gz").write_bytes(gzip.compress(b"hello"))
    assert datafiles.read_gzip(tmp_path / "c.gz") == b"hello"


def test_a_corrupt_gzip(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHC_MEMORY_LIMIT", "8MiB")
    good = gzip.compress(idx(np.zeros((4, 2, 2))))
    (tmp_path / "c.gz").write_bytes(good[:12] + bytes(b ^ 0xFF for b in good[12:30]) + good[30:])
    with pytest.raises(datafiles.DataFileError, match=r"c.gz: not a readable gzip file \("):
        datafiles.read_gzip(tmp_path / "c.gz")
    (tmp_path / "t.gz").write_bytes(good[:len(good) // 2] + b"\0\0\0\0")  # cut short; ISIZE 0
    with pytest.raises(datafiles.DataFileError, match=r"t.gz: not a readable gzip file \("):
        datafiles.read_gzip(tmp_path / "t.gz")


def test_a_truncated_npy_and_a_short_header(tmp_path):
    (tmp_path / "t.npy").write_bytes(GOOD_X[:-5])
    with pytest.raises(datafiles.DataFileError) as info:
        datafiles.read_npy(tmp_path / "t.npy")
    assert str(info.value) == (f"{tmp_path / 't.npy'}: the header says 32 values of float32 in shape (8, 4) "
                               "(128 B) but the file holds 123 B after it")
    (tmp_path / "h.npy").write_bytes(b"\x93NUMPY\x01\x00\xff\xff{")
    with pytest.raises(datafiles.DataFileError, match=r"h.npy: not a readable NumPy file \(a malformed header"):
        datafiles.read_npy(tmp_path / "h.npy")
