"""Data sources read small files these tests write: .npz, image folders, MNIST IDX,
CIFAR-10 batches; fixed splits; fitting to the spec's input; augmentation."""

import gzip
import pickle
import struct

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from archc.train.augment import augment, random_crop  # noqa: E402
from archc.train.config import AugmentConfig, DataConfig, TrainConfig  # noqa: E402
from archc.train.data import epoch_order, load_source, prepare  # noqa: E402
from archc.train.errors import TrainError  # noqa: E402


def cfg(source, **data):
    return TrainConfig(data=DataConfig(source=str(source), **data))


def test_digits_fast_path_equals_scikit_learn():
    sklearn = pytest.importorskip("sklearn.datasets")
    a = load_source("digits", DataConfig(), (1, 8, 8))
    ref = sklearn.load_digits()
    assert a.x.shape == (1797, 1, 8, 8)
    assert torch.equal(a.x[:, 0], torch.from_numpy(ref.images.astype(np.float32) / 16))
    assert torch.equal(a.y, torch.from_numpy(ref.target.astype(np.int64)))


def test_digits_splits_are_fixed_disjoint_stratified_and_resized():
    pytest.importorskip("sklearn")
    s1 = prepare(cfg("digits"), (1, 32, 32))
    s2 = prepare(TrainConfig(seed=99, data=DataConfig()), (1, 32, 32))
    assert (len(s1.train), len(s1.val), len(s1.test)) == (1294, 144, 359)
    assert s1.train.x.shape[1:] == (1, 32, 32)
    assert torch.equal(s1.test.x, s2.test.x)  # the training seed never moves the test set
    assert set(s1.test.y.tolist()) == set(range(10)) and set(s1.val.y.tolist()) == set(range(10))
    flat = lambda a: {tuple(r.tolist()) for r in a.x.flatten(1)}  # noqa: E731
    assert not (flat(s1.test) & flat(s1.val))


def test_npz_uint8_images_scaled_and_checked(tmp_path):
    path = tmp_path / "d.npz"
    x = np.random.default_rng(0).integers(0, 256, (20, 8, 8), dtype=np.uint8)
    np.savez(path, x=x, y=np.arange(20) % 3)
    s = prepare(cfg(path, val_split=0.0, test_split=0.25), (1, 8, 8))
    assert len(s.train) == 15 and len(s.test) == 5
    assert float(s.train.x.max()) <= 1.0 and s.train.x.shape[1:] == (1, 8, 8)
    with pytest.raises(TrainError, match=r"examples have shape \[1, 8, 8\] but the spec's input is \[1, 32, 32\]"):
        prepare(cfg(path), (1, 32, 32))
    assert prepare(cfg(path, resize=True), (1, 32, 32)).train.x.shape[1:] == (1, 32, 32)
    assert prepare(cfg(path), (64,)).train.x.shape[1:] == (64,)  # flat input of the same size
    np.savez(tmp_path / "bad.npz", inputs=x)
    with pytest.raises(TrainError, match="no array named 'x'"):
        load_source(str(tmp_path / "bad.npz"), DataConfig(), (1, 8, 8))


def test_image_folder_with_class_subfolders(tmp_path):
    from PIL import Image

    for c, value in (("cat", 30), ("dog", 200)):
        (tmp_path / c).mkdir()
        for i in range(3):
            Image.new("RGB", (6, 5), (value, value, i)).save(tmp_path / c / f"{i}.png")
    a = load_source(str(tmp_path), DataConfig(), (3, 5, 6))
    assert a.classes == ["cat", "dog"] and a.y.tolist() == [0, 0, 0, 1, 1, 1]
    assert a.x.shape == (6, 3, 5, 6)
    assert a.x[0, 0, 0, 0].item() == pytest.approx(30 / 255) and a.x[2, 2, 0, 0].item() == pytest.approx(2 / 255)
    grey = load_source(str(tmp_path), DataConfig(resize=True), (1, 10, 12))
    assert grey.x.shape == (6, 1, 10, 12)


def write_idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def test_mnist_idx_folder_with_its_own_test_part(tmp_path):
    rng = np.random.default_rng(1)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (12, 28, 28)))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(12) % 10)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", rng.integers(0, 256, (4, 28, 28)))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([9, 8, 7, 6]))
    s = prepare(cfg(tmp_path, val_split=0.0), (1, 28, 28))
    assert len(s.train) == 12 and s.test.y.tolist() == [9, 8, 7, 6]
    assert s.train.x.shape[1:] == (1, 28, 28)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x09abc")
    with pytest.raises(TrainError, match="header says"):
        load_source(str(tmp_path), DataConfig(), (1, 28, 28))


def test_cifar10_python_batches(tmp_path):
    rng = np.random.default_rng(2)
    for name, n in (("data_batch_1", 6), ("data_batch_2", 4), ("test_batch", 3)):
        batch = {b"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8), b"labels": list(range(n))}
        (tmp_path / name).write_bytes(pickle.dumps(batch, protocol=2))
    (tmp_path / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"plane", b"car"]}))
    a = load_source(str(tmp_path), DataConfig(), (3, 32, 32))
    assert a.x.shape == (10, 3, 32, 32) and len(a.test) == 3 and a.classes == ["plane", "car"]
    raw = pickle.loads((tmp_path / "data_batch_1").read_bytes())[b"data"]
    assert a.x[0, 1, 0, 0].item() == pytest.approx(raw[0, 1024] / 255)  # channel-major rows of 3072


def test_cifar_loader_refuses_pickles_that_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(TrainError, match="refusing to load builtins.print"):
        load_source(str(tmp_path), DataConfig(), (3, 32, 32))


def test_missing_and_unreadable_sources(tmp_path):
    with pytest.raises(TrainError, match="no such file or folder") as e:
        load_source("digts", DataConfig(), (1, 8, 8))
    assert "did you mean `digits`" in e.value.fix
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(TrainError, match="not a data set archc can read"):
        load_source(str(tmp_path / "notes.txt"), DataConfig(), (1, 8, 8))


def test_normalize_with_train_statistics():
    pytest.importorskip("sklearn")
    s = prepare(cfg("digits", normalize=True), (1, 8, 8))
    assert abs(float(s.train.x.mean())) < 1e-5 and float(s.train.x.std()) == pytest.approx(1, abs=1e-3)
    assert s.normalize["mean"][0] > 0


def test_epoch_order_is_a_seeded_permutation_and_shards():
    a, b = epoch_order(10, 0, 3), epoch_order(10, 0, 3)
    assert torch.equal(a, b) and sorted(a.tolist()) == list(range(10))
    assert not torch.equal(a, epoch_order(10, 0, 4))
    shards = [epoch_order(10, 0, 3, r, 4) for r in range(4)]
    assert all(len(s) == 3 for s in shards)
    assert set(torch.cat(shards).tolist()) == set(range(10))


def test_augmentations():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4)
    assert torch.equal(augment(x, AugmentConfig(hflip=1.0), g), x.flip(-1))
    assert torch.equal(augment(x, AugmentConfig(vflip=1.0), g), x.flip(-2))
    assert torch.equal(augment(x, AugmentConfig(), g), x)
    crop = random_crop(x, 1, torch.Generator().manual_seed(3))
    for i in range(2):  # each image is the original shifted by at most one pixel, zeros filled in
        padded = torch.nn.functional.pad(x[i], (1, 1, 1, 1))
        assert any(torch.equal(crop[i], padded[:, dy:dy + 4, dx:dx + 4]) for dy in range(3) for dx in range(3))
    bright = augment(x, AugmentConfig(brightness=0.5), torch.Generator().manual_seed(1))
    shift = (bright - x).flatten(1)
    assert torch.allclose(shift, shift[:, :1].expand_as(shift)) and shift.abs().max() <= 0.5
    ident = augment(x, AugmentConfig(rotate=0.0, translate=0.0, scale=[1.0, 1.0]), g)
    assert torch.allclose(ident, x, atol=1e-4)  # an identity affine map resamples exactly
    rot = augment(torch.ones(1, 1, 9, 9), AugmentConfig(rotate=45.0), torch.Generator().manual_seed(0))
    assert rot[0, 0, 4, 4] == pytest.approx(1.0) and rot.sum() < 81  # corners rotated out


def test_a_folder_too_large_for_memory_is_refused_before_decoding(tmp_path, monkeypatch):
    from PIL import Image

    (tmp_path / "a").mkdir()
    for i in range(3):
        Image.new("RGB", (10, 10)).save(tmp_path / "a" / f"{i}.png")
    monkeypatch.setenv("ARCHC_MEMORY_LIMIT", str(3 * 10 * 10 * 3 * 4 - 1))  # bytes as float32
    with pytest.raises(TrainError, match=r"3 images of 10×10 need 0.0 GiB in memory \(more than ARCHC_MEMORY_LIMIT"):
        load_source(str(tmp_path), DataConfig(), (3, 10, 10))
    monkeypatch.setenv("ARCHC_MEMORY_LIMIT", str(3 * 10 * 10 * 3 * 4))
    assert len(load_source(str(tmp_path), DataConfig(), (3, 10, 10))) == 3


def test_channels_last_npz_images_are_transposed_with_a_note(tmp_path):
    path = tmp_path / "hwc.npz"
    x = np.random.default_rng(3).integers(0, 256, (10, 8, 6, 3), dtype=np.uint8)  # (N, H, W, C) as NumPy keeps it
    np.savez(path, x=x, y=np.arange(10) % 2)
    s = prepare(cfg(path, val_split=0.0, test_split=0.0), (3, 8, 6))
    assert s.train.x.shape[1:] == (3, 8, 6)
    assert torch.equal(s.train.x[4, 2], torch.from_numpy(x[4, :, :, 2].astype(np.float32) / 255))
    assert s.notes == [f"{path} holds channels-last images (N, 8, 6, 3): read as (N, 3, 8, 6)"]
    assert prepare(cfg(path, val_split=0.0, resize=True), (3, 16, 12)).train.x.shape[1:] == (3, 16, 12)
    with pytest.raises(TrainError, match=r"examples have shape \[3, 8, 6\] but the spec's input is \[3, 16, 12\]"):
        prepare(cfg(path), (3, 16, 12))  # transposed first, so the fix offered is about the size, not the layout
    assert prepare(cfg(tmp_path / "hwc.npz", val_split=0.0), (144,)).notes == []  # a flat input takes any layout


def test_named_data_sets_say_which_files_where_and_how_to_fetch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ARCHC_DATA", raising=False)
    with pytest.raises(TrainError) as e:
        load_source("mnist", DataConfig(), (1, 28, 28))
    assert str(e.value).startswith("data set 'mnist' needs its files (train-images-idx3-ubyte, ")
    assert "archc looked in data/mnist, data/MNIST/raw" in str(e.value)
    assert "curl -fsSL -o data/mnist/$f.gz" in e.value.fix
    with pytest.raises(TrainError) as e:  # the path a spec names (specs/vgg16_cifar10.yaml), not fetched yet
        load_source("data/cifar-10-batches-py", DataConfig(), (3, 32, 32))
    assert "no such folder — it should hold CIFAR-10 (python version): data_batch_1" in str(e.value)
    assert "cifar-10-python.tar.gz | tar xz -C data" in e.value.fix
    with pytest.raises(TrainError, match="no such folder — it should hold ImageNet") as e:
        load_source("data/imagenet/train", DataConfig(), (3, 224, 224))
    assert "image-net.org" in e.value.fix
    with pytest.raises(TrainError, match="'npz' is a kind of file or folder, not a data set"):
        load_source("npz", DataConfig(), (1, 8, 8))
    with pytest.raises(TrainError) as e:
        load_source("elsewhere.npz", DataConfig(), (1, 8, 8))
    assert e.value.fix.startswith("give a data set's name (digits, shapes, pysource, mnist, cifar10) or a path")
    # once fetched (here under $ARCHC_DATA, in torchvision's layout) the name finds the files
    raw = tmp_path / "store" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(4)
    write_idx(raw / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (5, 28, 28)))
    write_idx(raw / "train-labels-idx1-ubyte.gz", np.arange(5))
    monkeypatch.setenv("ARCHC_DATA", str(tmp_path / "store"))
    assert len(load_source("mnist", DataConfig(), (1, 28, 28))) == 5
