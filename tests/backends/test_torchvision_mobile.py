"""The zoo's mobile networks — efficientnet_b0 and mobilenet_v3_large — given torchvision's
own weights through ``archc.load_weights``, compute what torchvision computes.

As in test_torchvision_equivalence.py: torchvision builds each network with random weights
(``weights=None``, seeded — nothing is downloaded), its state_dict goes to a file, and
``archc.load_weights`` reads that file strictly into the module built from the zoo spec.
torchvision initialises every batch norm to the identity (weight 1, bias 0, mean 0, var 1),
which would hide a wrong eps or a running mean paired with the wrong layer; the reference's
batch norms are therefore given random affine parameters and running statistics first.
Counts are compared with torchvision's model and the figures its weights' metadata publish
(read from the enum, no download), MACs with torch's own flop counter.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import archc
from archc.zoo import zoo_dir
from macs_reference import torch_macs

torch = pytest.importorskip("torch")
models = pytest.importorskip(
    "torchvision.models", reason="torchvision is not installed (pip install -e '.[test]' adds it)")

NAMES = ["efficientnet_b0", "mobilenet_v3_large"]
# torchvision's metadata for its ImageNet weights: the published parameter count and GFLOPS
WEIGHTS = {"efficientnet_b0": "EfficientNet_B0_Weights", "mobilenet_v3_large": "MobileNet_V3_Large_Weights"}
# How many tensors pair by order and shape, and BatchNorm counters: archc ids cannot be bare
# numbers (torchvision's features.3.1.block.0.0), so no key pairs by name. Pinned so that a
# layer added, dropped or reordered in a spec shows up here.
PAIRED = {
    "efficientnet_b0": {"order": 311, "counter": 49},
    "mobilenet_v3_large": {"order": 266, "counter": 46},
}


def randomise_batchnorms(model, seed: int = 1) -> None:
    """Give every BatchNorm2d non-trivial weight, bias and running statistics (variances in
    [0.1, 0.6), where eps 1e-3 and 1e-5 differ visibly)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.75 + 0.5 * torch.rand(c, generator=g))
                m.bias.copy_(0.1 * torch.randn(c, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=g))
                m.running_var.copy_(0.1 + 0.5 * torch.rand(c, generator=g))


def torchvision_file(name: str, tmp_path):
    """torchvision's network (seeded, batch norms randomised) and the file of its state_dict."""
    torch.manual_seed(0)
    reference = getattr(models, name)(weights=None).eval()
    randomise_batchnorms(reference)
    path = tmp_path / f"{name}.pt"
    torch.save(reference.state_dict(), path)
    return reference, path


def spec(name: str) -> str:
    return str(zoo_dir() / f"{name}.yaml")


def image(batch: int = 2):
    return torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(0))


def max_difference(ours, reference) -> float:
    x = image()
    with torch.no_grad():
        got, want = ours(x), reference(x)
    assert got.shape == want.shape == (2, 1000)
    return (got - want).abs().max().item()


@pytest.mark.parametrize("name", NAMES)
def test_zoo_network_with_torchvision_weights_computes_what_torchvision_computes(name, tmp_path):
    reference, path = torchvision_file(name, tmp_path)
    ours = archc.build(name, seed=1).eval()
    report = archc.load_weights(ours, path)  # strict: raises unless every tensor is paired
    assert report.complete and report.ok
    assert {how: report.count(how) for how in ("name", "order", "counter") if report.count(how)} == PAIRED[name]
    assert max_difference(ours, reference) <= 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_counts_equal_torchvision(name):
    torch.manual_seed(0)
    reference = getattr(models, name)(weights=None)
    meta = getattr(models, WEIGHTS[name]).IMAGENET1K_V1.meta
    summary = archc.load(spec(name)).summary
    assert summary.total_params == sum(p.numel() for p in reference.parameters()) == meta["num_params"]
    assert summary.buffers == sum(b.numel() for b in reference.buffers())
    # torch's flop counter: convolutions and linear layers, biases and the SE product excluded
    assert summary.macs == torch_macs(reference.eval(), image(1))
    assert round(summary.macs / 1e9, 3) == meta["_ops"]  # GFLOPS to three decimals: 0.386, 0.217


def test_the_comparison_can_fail(tmp_path):
    """A spec one detail away from torchvision's — MobileNetV3 with torch's default batch-norm
    eps (1e-5, not 1e-3) — still takes every tensor, yet its output differs by more than the
    tolerance; so does the right spec without torchvision's weights."""
    reference, path = torchvision_file("mobilenet_v3_large", tmp_path)
    text = Path(spec("mobilenet_v3_large")).read_text()
    assert text.count("eps: 0.001, ") == 1
    wrong = tmp_path / "wrong_eps.yaml"
    wrong.write_text(text.replace("eps: 0.001, ", ""))
    ours = archc.build(str(wrong), seed=1).eval()
    assert archc.load_weights(ours, path).complete
    assert max_difference(ours, reference) > 1e-4
    assert max_difference(archc.build("mobilenet_v3_large", seed=1).eval(), reference) > 1e-4


def test_squeeze_widths_follow_torchvision():
    """The squeeze-excitation bottlenecks: EfficientNet squeezes to a quarter of the block's
    input channels, MobileNetV3 to make_divisible(expanded / 4, 8), as torchvision builds them."""
    def widths(model):
        return [m.fc1.out_channels for m in model.modules() if type(m).__name__ == "SqueezeExcitation"]

    for name in NAMES:
        graph = archc.load(spec(name))
        ours = [n.meta["shape"][0] for n in graph.nodes if n.name.endswith(".se.fc1")]
        assert ours == widths(getattr(models, name)(weights=None)), name
