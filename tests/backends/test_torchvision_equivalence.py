"""The zoo's torchvision networks, given torchvision's own weights through
``archc.load_weights``, compute what torchvision computes.

For alexnet, vgg16, vgg16_bn, resnet18, resnet50 and googlenet: torchvision builds the network with
random weights (``weights=None``, seeded — nothing is downloaded), its state_dict is saved
to a file with ``torch.save``, ``archc.load_weights`` reads that file into the module built
from the zoo spec (strictly: every tensor on both sides paired, none by guesswork across
shapes), and both give the same output on the same 224×224 image in eval mode.
"""

from __future__ import annotations

import pytest

import archc

torch = pytest.importorskip("torch")
models = pytest.importorskip(
    "torchvision.models", reason="torchvision is not installed (pip install -e '.[test]' adds it)")

# torchvision's constructor options for the zoo's layout (GoogLeNet without auxiliary heads
# and without torchvision's input re-normalisation, which the spec does not describe).
OPTIONS = {
    "alexnet": {},
    "vgg16": {},
    "vgg16_bn": {},
    "resnet18": {},
    "resnet50": {},
    "googlenet": {"aux_logits": False, "init_weights": True, "transform_input": False},
}
# How many tensors each network pairs by name, by order and shape, and BatchNorm counters:
# pinned so that a spec whose ids drift from torchvision's shows up here.
PAIRED = {
    "alexnet": {"order": 16},
    "vgg16": {"order": 32},
    "vgg16_bn": {"order": 84, "counter": 13},
    "resnet18": {"name": 102, "counter": 20},
    "resnet50": {"name": 267, "counter": 53},
    "googlenet": {"name": 62, "order": 225, "counter": 57},
}


def torchvision_file(name: str, tmp_path):
    """torchvision's randomly initialised network (seeded) and the file of its state_dict."""
    torch.manual_seed(0)
    reference = getattr(models, name)(weights=None, **OPTIONS[name]).eval()
    path = tmp_path / f"{name}.pt"
    torch.save(reference.state_dict(), path)
    return reference, path


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_zoo_network_with_torchvision_weights_computes_what_torchvision_computes(name, tmp_path):
    reference, path = torchvision_file(name, tmp_path)
    ours = archc.build(name, seed=1).eval()
    report = archc.load_weights(ours, path)  # strict: raises unless every tensor is paired
    assert report.complete and report.ok
    assert {how: report.count(how) for how in ("name", "order", "counter") if report.count(how)} == PAIRED[name]
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got, want = ours(x), reference(x)
    assert got.shape == want.shape == (1, 1000)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_the_loaded_model_is_not_equal_by_chance(tmp_path):
    """The comparison above can fail: the same spec module without torchvision's weights
    gives another output (so equality comes from the loaded tensors)."""
    reference, _ = torchvision_file("resnet18", tmp_path)
    ours = archc.build("resnet18", seed=1).eval()
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (ours(x) - reference(x)).abs().max() > 1e-3


def test_safetensors_file_loads_the_same(tmp_path):
    safetensors = pytest.importorskip("safetensors.torch", reason="the safetensors package is not installed")
    reference, _ = torchvision_file("resnet18", tmp_path)
    path = tmp_path / "resnet18.safetensors"
    safetensors.save_file(reference.state_dict(), str(path))
    ours = archc.build("resnet18", seed=1).eval()
    assert archc.load_weights(ours, path).complete
    for key, value in reference.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key


def test_transfer_learning_keeps_a_new_head(tmp_path):
    """torchvision's resnet18 body into a 10-class spec: the head is left alone by the
    mapping, every other tensor is loaded, and the unused 1000-class head is reported."""
    reference, path = torchvision_file("resnet18", tmp_path)
    ours = archc.build("resnet18", overrides={"classes": 10}, seed=1)
    head = ours.fc.weight.detach().clone()
    report = archc.load_weights(ours, path, mapping={"fc.": None}, strict=False)
    assert report.ignored == ["fc.weight", "fc.bias"]
    assert report.unused == [("fc.weight", (1000, 512)), ("fc.bias", (1000,))]
    assert torch.equal(ours.fc.weight, head)
    assert torch.equal(ours.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)
