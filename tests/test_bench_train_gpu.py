"""bench/bench_train_gpu.py (issue 13.5) without a GPU: the MFU formula, the peak table,
the message on a machine without CUDA, and a dry run of its loop on the CPU with a tiny
spec-built network beside the same network written by hand (eager and compiled)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "bench_train_gpu.py"
TINY = """archc: 1
input: [3, 8, 8]
layers:
  - conv2d: {out: 4, kernel: 3, padding: 1, id: conv}
  - relu
  - global_avgpool
  - flatten
  - linear: {out: 1000, id: fc}
"""


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_train_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mfu_is_six_forward_macs_per_image_over_the_peak(bench):
    # ResNet-50 at 224: 4.09 GMACs forward; 1,000 images/s on an H100 SXM
    assert bench.mfu(1000, 4_089_184_256, 989.5) == pytest.approx(1000 * 6 * 4_089_184_256 / 989.5e12)
    assert bench.mfu(1000, 4_089_184_256, None) is None


@pytest.mark.parametrize("name, peak", [("NVIDIA H100 80GB HBM3", 989.5), ("NVIDIA H100 PCIe", 756.5),
                                        ("NVIDIA H100 NVL", 835.5), ("NVIDIA H200", 989.5),
                                        ("NVIDIA A100-SXM4-80GB", 312.0), ("NVIDIA A100 80GB PCIe", 312.0),
                                        ("NVIDIA GeForce RTX 4090", None)])
def test_peaks_by_device_name(bench, name, peak):
    assert bench.peak_tflops(name) == peak


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_without_cuda_it_says_so():
    r = subprocess.run([sys.executable, str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == ("bench_train_gpu: no CUDA device here — this benchmark measures GPU training; "
                        "--device cpu runs its logic as a dry run (figures meaningless)\n")


def test_a_dry_run_on_the_cpu(bench, monkeypatch, tmp_path):
    import archc

    graph = archc.loads(TINY)

    def tiny_pair(name, size):  # archc's module, the same network by hand, archc's MACs
        hand = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                                   torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 1000))
        return archc.build(graph, seed=0), hand, graph.summary.macs

    monkeypatch.setattr(bench, "build_pair", tiny_pair)
    out = tmp_path / "bench.json"
    code = bench.main(["--device", "cpu", "--models", "resnet18", "--image-size", "8", "--batch", "4", "--steps", "2",
                       "--warmup", "1", "--rounds", "2", "--compile-backend", "aot_eager", "--amp", "bf16",
                       "--peak-tflops", "0.001", "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["device"] == "cpu" and report["peak_tflops"] == 0.001
    rows = report["results"]
    assert [(r["model"], r["variant"], r["batch"]) for r in rows] == [("resnet18", "eager", 4),
                                                                      ("resnet18", "compiled", 4)]
    macs = 8 * 8 * 4 * 27 + 4 * 1000  # the conv's and the linear's multiply-adds, per image
    for r in rows:
        rate = r["images_per_s"]
        assert r["forward_macs"] == macs and rate["archc"] > 0 and rate["torchvision"] > 0
        assert r["ratio"] == pytest.approx(rate["archc"] / rate["torchvision"], rel=1e-3)
        assert r["mfu"]["archc"] == pytest.approx(rate["archc"] * 6 * macs / 1e9, rel=1e-2, abs=1e-4)
