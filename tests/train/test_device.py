"""Device choices without a GPU: the mixed-precision policy, device selection, and a
CPU bf16 autocast run."""

import warnings

import pytest

torch = pytest.importorskip("torch")

from archc.train.errors import TrainError  # noqa: E402
from archc.train.loop import AmpPolicy  # noqa: E402
from archc.train.run import pick_device  # noqa: E402

CUDA = torch.device("cuda")


def test_amp_bf16_where_supported_else_fp16_with_a_scaler(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    amp = AmpPolicy("auto", CUDA)
    assert amp.dtype is torch.bfloat16 and amp.scaler is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GradScaler warns that CUDA is absent here
        amp = AmpPolicy("auto", CUDA)
    assert amp.dtype is torch.float16 and amp.scaler is not None
    assert AmpPolicy(False, CUDA).dtype is None


def test_amp_on_cpu_is_off_unless_bf16_is_asked_for():
    assert AmpPolicy("auto", torch.device("cpu")).dtype is None
    amp = AmpPolicy("bf16", torch.device("cpu"))
    assert amp.dtype is torch.bfloat16
    with amp.autocast():
        assert torch.nn.Linear(2, 2)(torch.ones(1, 2)).dtype is torch.bfloat16


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(TrainError, match="no CUDA device is available here"):
            pick_device("cuda")


def test_a_cpu_run_under_bf16_autocast(tmp_path):
    import numpy as np

    from archc.train import train

    from test_tasks import spec

    s = spec(tmp_path, "classification", 2, lambda x: (x[:, 0] > 0).astype(int))
    metrics, _ = train(s, out=str(tmp_path / "bf16"), progress="quiet", epochs=3, overrides={"train.amp": "bf16"})
    assert metrics["test_accuracy"] > 0.8 and np.isfinite(metrics["test_loss"])


def test_small_networks_train_on_one_cpu_thread(monkeypatch):
    import archc
    from archc.train.config import make_config
    from archc.train.run import cpu_threads

    cpu = torch.device("cpu")
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        lenet, resnet = archc.load("specs/lenet5.yaml"), archc.load("specs/resnet18.yaml")
        assert lenet.summary.macs * 32 < 2e9 < resnet.summary.macs * 32
        assert cpu_threads(make_config(lenet.train), lenet, cpu) == 1 == torch.get_num_threads()
        assert cpu_threads(make_config(resnet.train), resnet, cpu) is None
        assert cpu_threads(make_config(lenet.train, {"threads": 2}), lenet, cpu) == 2 == torch.get_num_threads()
        monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user's choice stands
        assert cpu_threads(make_config(lenet.train), lenet, cpu) is None
        assert cpu_threads(make_config(lenet.train), lenet, torch.device("cuda")) is None
    finally:
        torch.set_num_threads(before)


def test_the_thread_choice_ends_with_the_run(tmp_path, monkeypatch):
    from archc.train import train

    from test_tasks import spec

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    s = spec(tmp_path, "regression", 1, lambda x: x[:, 0].astype("float32"))
    train(s, out=str(tmp_path / "t"), progress="quiet", epochs=1, overrides={"train.threads": before + 1})
    assert torch.get_num_threads() == before
