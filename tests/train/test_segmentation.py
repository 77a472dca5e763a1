"""The segmentation task: a small U-Net reaches a stated mean IoU on the synthetic shapes;
the metrics equal a hand count over the whole split; valid-convolution outputs are scored
against the centre of the mask; masks move with their images under augmentation; the
shapes and image/mask-folder sources; clear errors."""

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
PIL = pytest.importorskip("PIL.Image")

import torch.nn.functional as F  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from archc.cli import main  # noqa: E402
from archc.train.config import AugmentConfig, make_config  # noqa: E402
from archc.train.data import load_source  # noqa: E402
from archc.train.errors import TrainError  # noqa: E402
from archc.train.segmentation import Segmentation, SegmentationMeter, center_crop  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TINY = Path(__file__).parent / "specs" / "unet_tiny.yaml"

# Observed on the 2-core CPU (torch 2.14.1): test mean IoU 0.894, pixel accuracy 0.985 after
# 10 epochs (432 training images of 48×48, Adam 3e-3, batch 8, seed 0); ~40 s. After 7 epochs
# the figure was 0.66–0.84 depending on torch's version and thread count: too close to the
# bound to be a stable test.
MIN_IOU = 0.75


def test_small_unet_reaches_the_stated_mean_iou_on_shapes(tmp_path):
    from archc.train import evaluate, train

    metrics, run_dir = train(str(TINY), out=str(tmp_path / "run"), progress="quiet")
    assert metrics["monitor"] == "val_iou" and metrics["epochs_run"] == 10
    assert metrics["test_iou"] >= MIN_IOU, metrics
    assert metrics["test_pixel_accuracy"] >= 0.95, metrics
    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert history[-1]["train_iou"] > history[0]["train_iou"] + 0.3  # it learned the shapes, not the background
    again = evaluate(str(TINY), str(run_dir / "best.pt"))  # archc evaluate: the same split, the same numbers
    assert again["examples"] == 120 and again["iou"] == pytest.approx(metrics["test_iou"], abs=1e-9)


def test_valid_convolution_unet_is_scored_on_the_mask_centre(tmp_path):
    r = CliRunner().invoke(main, ["train", str(ROOT / "examples" / "unet_shapes.yaml"), "--epochs", "1",
                                  "--set", "train.data.limit=16", "--out", str(tmp_path / "run"), "--json"])
    assert r.exit_code == 0, r.output
    metrics = json.loads(r.stdout[r.stdout.index("{"):])
    assert 0 <= metrics["test_iou"] <= 1 and 0 <= metrics["test_pixel_accuracy"] <= 1
    assert "training unet_shapes (29,508 parameters) on shapes" in r.stderr and "data: shapes: 16 train" in r.stderr


def test_loss_and_metrics_use_the_centre_crop():
    task = Segmentation()
    loss = task.loss(make_config({"task": "segmentation"}), _graph_ending_in("conv2d"))
    out = torch.randn(2, 3, 2, 2)
    y = torch.randint(0, 3, (2, 6, 6))
    assert torch.equal(center_crop(y, (2, 2)), y[:, 2:4, 2:4])
    assert float(loss(out, y)) == pytest.approx(float(F.cross_entropy(out, y[:, 2:4, 2:4])), rel=1e-6)
    middle = torch.tensor([[8, 9, 10, 11], [15, 16, 17, 18]])
    assert torch.equal(center_crop(torch.arange(35).view(5, 7), (2, 4)), middle)


def test_meter_counts_the_whole_split_like_a_hand_count():
    rng = np.random.default_rng(0)
    meter = SegmentationMeter(["pixel_accuracy", "iou"])
    preds, truths = [], []
    for _ in range(3):  # three batches; class 4 never occurs (left out of the mean)
        y = torch.from_numpy(rng.integers(0, 4, (2, 5, 5)))
        out = torch.from_numpy(rng.normal(size=(2, 5, 5, 5))).float()
        out[:, 3] -= 3  # class 3 predicted rarely
        out[:, 4] = -100  # class 4 never
        meter.update(out, y, torch.tensor(0.5))
        preds.append(out.argmax(1).numpy())
        truths.append(y.numpy())
    p, t = np.concatenate(preds), np.concatenate(truths)
    ious = [((p == c) & (t == c)).sum() / ((p == c) | (t == c)).sum() for c in range(5) if ((p == c) | (t == c)).any()]
    result = meter.result("val_")
    assert len(ious) == 4
    empty = SegmentationMeter(["iou"], 3)  # a DDP rank whose shard is empty still adds a 3×3 matrix
    assert empty.sums["confusion"].shape == (3, 3) and empty.result() == {"loss": 0.0, "iou": 0.0}
    assert result == pytest.approx({"val_loss": 0.5, "val_pixel_accuracy": float((p == t).mean()),
                                    "val_iou": float(np.mean(ious))})


def test_masks_move_with_their_images():
    task = Segmentation()
    task.classes = 4
    y = torch.randint(0, 4, (6, 3, 3), generator=torch.Generator().manual_seed(1))
    y = y.repeat_interleave(4, 1).repeat_interleave(4, 2)  # (6, 12, 12) of 4×4 blocks
    x = y[:, None].float()  # an image that is its mask
    g = torch.Generator().manual_seed(0)
    xa, ya = task.augment(x, y, AugmentConfig(hflip=0.5, vflip=0.5, crop_padding=3), g)
    assert not torch.equal(ya, y) and torch.equal(xa[:, 0], ya.float())  # moved, and together
    xb, yb = task.augment(x, y, AugmentConfig(rotate=30, scale=[0.8, 1.2]), g)
    agree = (xb[:, 0].round() == yb.float()).float().mean()
    assert agree > 0.8 and yb.dtype == y.dtype and int(yb.max()) <= 3  # classes stay classes
    xc, yc = task.augment(x, y, AugmentConfig(brightness=0.5), g)
    assert torch.equal(yc, y) and not torch.equal(xc, x)  # brightness: the image only


def test_shapes_source_is_seeded_and_its_masks_match_the_images():
    cfg = make_config({"data": {"source": "shapes"}}).data
    a, b = load_source("shapes", cfg, (1, 32, 32)), load_source("shapes", cfg, (1, 32, 32))
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and a.classes == ["background", "circle", "rectangle",
                                                                             "triangle"]
    assert a.x.shape == (600, 1, 32, 32) and a.y.shape == (600, 32, 32) and a.y.dtype == torch.uint8
    assert sorted(a.y.unique().tolist()) == [0, 1, 2, 3]
    fg = a.y > 0
    assert float(a.x[:, 0][fg].mean()) > float(a.x[:, 0][~fg].mean()) + 0.4  # shapes are the bright parts
    cfg.split_seed = 1
    assert not torch.equal(load_source("shapes", cfg, (1, 32, 32)).y, a.y)
    assert load_source("shapes", cfg, (1, 572, 572)).x.shape[0] == 51  # big tiles: fewer (64 MiB of images)


def _write_pairs(root: Path, n=3, size=(10, 8)):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        mask = np.zeros(size[::-1], np.uint8)
        mask[2:5, 1:4] = i + 1
        PIL.fromarray(mask * 60 + 20).convert("RGB").save(root / "images" / f"im{i}.jpg")
        PIL.fromarray(mask).save(root / "masks" / f"im{i}.png")


def test_image_mask_folders_pair_by_name(tmp_path):
    _write_pairs(tmp_path / "seg")
    cfg = make_config({}).data
    a = load_source(str(tmp_path / "seg"), cfg, (3, 8, 10))  # not taken for a folder of two classes
    assert a.x.shape == (3, 3, 8, 10) and a.y.shape == (3, 8, 10)
    assert [int(m.max()) for m in a.y] == [1, 2, 3] and int(a.y[2, 3, 2]) == 3
    cfg.resize = True
    r = load_source(str(tmp_path / "seg"), cfg, (1, 16, 20))
    assert r.x.shape == (3, 1, 16, 20) and r.y.shape == (3, 16, 20) and set(r.y.unique().tolist()) == {0, 1, 2, 3}


def test_image_mask_folder_errors(tmp_path):
    _write_pairs(tmp_path / "seg")
    (tmp_path / "seg" / "images" / "im0.jpg").rename(tmp_path / "seg" / "images" / "other.jpg")
    with pytest.raises(TrainError) as err:
        load_source(str(tmp_path / "seg"), make_config({}).data, (3, 8, 10))
    assert str(err.value) == (f"{tmp_path / 'seg'}: 2 image/mask pairs; no partner for 'im0' — give every file in "
                              "images/ a mask of the same name in masks/")
    _write_pairs(tmp_path / "rgb", n=1)
    PIL.new("RGB", (10, 8)).save(tmp_path / "rgb" / "masks" / "im0.png")
    with pytest.raises(TrainError) as err:
        load_source(str(tmp_path / "rgb"), make_config({}).data, (3, 8, 10))
    assert "a mask must have one channel of class indices, this one is RGB" in str(err.value)


def test_masks_with_more_classes_than_outputs_are_refused(tmp_path):
    r = CliRunner().invoke(main, ["train", str(TINY), "--set", "classes=3", "--out", str(tmp_path / "run")])
    assert r.exit_code == 1
    assert "the train masks have classes 0..3 but the network has 3 output channels — set the output channels " \
           "to 4 (e.g. --set classes=4)" in r.output


def _graph_ending_in(op):
    class G:
        outputs = ["x"]
        nodes = [type("N", (), {"name": "x", "op": op})()]

    return G()


def test_shapes_are_the_default_data_of_segmentation():
    assert make_config({"task": "segmentation"}).data.source == "shapes"
    assert make_config({"task": "segmentation", "data": {"val_split": 0.2}}).data.source == "shapes"
    assert make_config({"task": "segmentation", "data": "masks.npz"}).data.source == "masks.npz"
    assert make_config({"task": "segmentation"}, {"data": "cells"}).data.source == "cells"
    assert make_config({}).data.source == "digits"


def test_a_path_source_named_without_a_path_is_explained():
    with pytest.raises(TrainError) as err:
        load_source("masks", make_config({}).data, (1, 8, 8))
    assert str(err.value) == ("data source 'masks' is a kind of file or folder, not a data set — give its path: "
                              "--data PATH, where PATH is a folder with images/ and masks/ sub-folders paired by "
                              "file name (masks hold class indices)")
