"""The zoo compiled to PyTorch computes what the reference implementations compute.

torchvision's models (where installed) and, for the course networks, torch transcriptions of
the reference code (the seeds' Keras models, the PyTorch DCGAN tutorial, the U-Net paper):
their weights load strictly into the module archc builds from the spec — same tensors, same
shapes, in the same order — and both give the same output on the same input.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import archc
from references import torchvision_model

torch = pytest.importorskip("torch")
nn = torch.nn

SPECS = Path(__file__).resolve().parents[1] / "specs"


# Renames from torchvision's module names to the zoo's ids ([]: the same names); None: the names differ wholly
# (torchvision's `features.N`), the tensors are matched in order instead.
STATE_DICT_RENAMES = {
    "resnet18": [],
    "resnet50": [],
    "googlenet": [("branch2.0", "branch2_reduce"), ("branch2.1", "branch2"),
                  ("branch3.0", "branch3_reduce"), ("branch3.1", "branch3"), ("branch4.1", "branch4")],
    "alexnet": None,
    "vgg11": None,
}


def translated_state_dict(theirs: dict, ours: dict, renames) -> dict:
    """The reference's state_dict under our keys: renamed, or matched in order."""
    if renames is None:
        assert [v.shape for v in theirs.values()] == [v.shape for v in ours.values()]
        return dict(zip(ours, theirs.values()))
    out = {}
    for key, value in theirs.items():
        for old, new in renames:
            key = key.replace(old, new)
        out[key] = value
    return out


@pytest.mark.parametrize("name", sorted(STATE_DICT_RENAMES))
def test_zoo_network_computes_what_torchvision_computes(name):
    """torchvision's weights load into the module built from the spec (strictly: same
    tensors, same shapes), and both give the same output."""
    reference = torchvision_model(name).eval()
    spec, preset = str(SPECS / f"{name}.yaml"), None
    if name == "vgg11":
        spec, preset = str(SPECS / "vgg16.yaml"), "vgg11"
    ours = archc.build(spec, preset=preset, seed=0).eval()
    ours.load_state_dict(translated_state_dict(reference.state_dict(), ours.state_dict(),
                                               STATE_DICT_RENAMES[name]), strict=True)
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-4, atol=1e-5)


# -- torch transcriptions of the course's reference code -------------------------------

def lenet5():
    return nn.Sequential(nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Conv2d(6, 16, 5), nn.Tanh(),
                         nn.AvgPool2d(2), nn.Conv2d(16, 120, 5), nn.Tanh(), nn.Flatten(),
                         nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10))


def mnist_mlp():
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Dropout(0.2), nn.Linear(512, 512),
                         nn.ReLU(), nn.Dropout(0.2), nn.Linear(512, 10))


def mnist_cnn():
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128),
                         nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))


def vgg16_cifar10():
    features = torchvision_model("vgg16").features
    return nn.Sequential(*features, nn.Flatten(), nn.Linear(512, 10))


def dcgan_generator(nz=100, ngf=64):
    def up(i, o, stride=2, pad=1):
        return [nn.ConvTranspose2d(i, o, 4, stride, pad, bias=False), nn.BatchNorm2d(o), nn.ReLU()]
    return nn.Sequential(*up(nz, ngf * 8, 1, 0), *up(ngf * 8, ngf * 4), *up(ngf * 4, ngf * 2),
                         *up(ngf * 2, ngf), nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False), nn.Tanh())


def dcgan_discriminator(ndf=64):
    def down(i, o):
        return [nn.Conv2d(i, o, 4, 2, 1, bias=False), nn.BatchNorm2d(o), nn.LeakyReLU(0.2)]
    return nn.Sequential(nn.Conv2d(3, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2),
                         *down(ndf, ndf * 2), *down(ndf * 2, ndf * 4), *down(ndf * 4, ndf * 8),
                         nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(), nn.Flatten())


class UNet(nn.Module):
    """Ronneberger et al. 2015, Fig. 1, in the order the spec declares its layers."""

    def __init__(self):
        super().__init__()
        ch = [1, 64, 128, 256, 512, 1024]

        def double(i, o):
            return nn.Sequential(nn.Conv2d(i, o, 3), nn.ReLU(), nn.Conv2d(o, o, 3), nn.ReLU())
        self.enc = nn.ModuleList(double(ch[i], ch[i + 1]) for i in range(5))
        self.dec = nn.ModuleList(nn.ModuleList([nn.ConvTranspose2d(ch[i + 1], ch[i], 2, 2),
                                                double(ch[i + 1], ch[i])]) for i in range(4, 0, -1))
        self.head = nn.Conv2d(64, 2, 1)

    def forward(self, x):
        skips = []
        for i, enc in enumerate(self.enc):
            x = enc(x)
            if i < 4:
                skips.append(x)
                x = nn.functional.max_pool2d(x, 2)
        for up, conv in self.dec:
            x, skip = up(x), skips.pop()
            top, left = (skip.shape[2] - x.shape[2]) // 2, (skip.shape[3] - x.shape[3]) // 2
            skip = skip[:, :, top:top + x.shape[2], left:left + x.shape[3]]
            x = conv(torch.cat([skip, x], 1))
        return self.head(x)


# spec target, reference builder, input shape with batch, --set overrides
HANDWRITTEN = {
    "lenet5": (lenet5, (2, 1, 32, 32), None),
    "mnist_mlp": (mnist_mlp, (2, 784), None),
    "mnist_cnn": (mnist_cnn, (2, 1, 28, 28), None),
    "vgg16_cifar10": (vgg16_cifar10, (2, 3, 32, 32), None),
    "dcgan.yaml:generator": (dcgan_generator, (2, 100, 1, 1), None),
    "dcgan.yaml:discriminator": (dcgan_discriminator, (2, 3, 64, 64), None),
    # 188×188 is the smallest tile the valid convolutions allow (output 4×4)
    "unet": (UNet, (1, 1, 188, 188), {"input": [1, 188, 188]}),
}


@pytest.mark.parametrize("target", sorted(HANDWRITTEN))
def test_zoo_network_computes_what_the_reference_code_computes(target):
    make, shape, overrides = HANDWRITTEN[target]
    if ":" not in target:
        target = f"{target}.yaml"
    reference = make().eval()
    ours = archc.build(str(SPECS / target), overrides=overrides, seed=0).eval()
    ours.load_state_dict(translated_state_dict(reference.state_dict(), ours.state_dict(), None),
                         strict=True)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-4, atol=1e-5)
