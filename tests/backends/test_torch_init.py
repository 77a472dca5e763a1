"""Initialisation from the spec: per layer (`init:`), network default (`train.init`,
build's `init`), torch's default elsewhere; statistics checked against the formulas of
He et al. 2015 (std = gain / sqrt(fan), gain √2 for ReLU) and Glorot & Bengio 2010
(bound = gain · sqrt(6 / (fan_in + fan_out)))."""

from __future__ import annotations

import math

import pytest
import torch

import archc
from archc.errors import SpecErrors


def spec(layers: str, train: str = "", shape: str = "[64, 12, 12]") -> str:
    text = f"archc: 1\ninput: {shape}\nlayers:\n" + "".join(f"  - {l}\n" for l in layers.split("\n"))
    return text + (f"train: {train}\n" if train else "")


def test_exact_schemes():
    model = archc.build(text=spec("conv2d: {out: 4, kernel: 1, id: a, init: {weight: ones, bias: {name: constant, val: 0.5}}}\n"
                                  "batchnorm2d: {id: bn, init: {weight: zeros, bias: ones}}\n"
                                  "conv2d: {out: 4, kernel: 1, id: b, init: zeros}"))
    assert torch.equal(model.a.weight, torch.ones(4, 64, 1, 1))
    assert torch.equal(model.a.bias, torch.full((4,), 0.5))
    assert torch.equal(model.bn.weight, torch.zeros(4)) and torch.equal(model.bn.bias, torch.ones(4))
    assert torch.equal(model.b.weight, torch.zeros(4, 4, 1, 1)) and torch.equal(model.b.bias, torch.zeros(4))


@pytest.mark.parametrize("init, fan", [("he_normal", 64 * 9),
                                       ("{name: kaiming_normal, mode: fan_out}", 256 * 9)])
def test_he_normal_std(init, fan):
    model = archc.build(text=spec(f"conv2d: {{out: 256, kernel: 3, id: c, init: {init}}}"), seed=0)
    w = model.c.weight
    assert abs(w.std().item() / math.sqrt(2 / fan) - 1) < 0.03  # 147k samples
    assert abs(w.mean().item()) < 0.002
    assert torch.equal(model.c.bias, torch.zeros(256))  # a bare scheme zeroes the bias


def test_he_uniform_bound_with_leaky_relu_gain():
    init = "{name: he_uniform, nonlinearity: leaky_relu, a: 0.2}"
    model = archc.build(text=spec(f"conv2d: {{out: 128, kernel: 3, id: c, init: {init}}}"), seed=0)
    bound = math.sqrt(2 / (1 + 0.2 ** 2)) * math.sqrt(3 / (64 * 9))
    w = model.c.weight.abs().max().item()
    assert 0.99 * bound < w <= bound


@pytest.mark.parametrize("scheme", ["xavier_uniform", "glorot_uniform"])
def test_xavier_uniform_bound(scheme):
    model = archc.build(text=spec(f"linear: {{out: 200, id: fc, init: {scheme}}}", shape="[300]"), seed=0)
    bound = math.sqrt(6 / (300 + 200))
    assert 0.99 * bound < model.fc.weight.abs().max().item() <= bound


def test_xavier_normal_std_and_gain():
    model = archc.build(text=spec("linear: {out: 400, id: fc, init: {name: xavier_normal, gain: 2.0}}", shape="[600]"),
                        seed=0)
    assert abs(model.fc.weight.std().item() / (2.0 * math.sqrt(2 / 1000)) - 1) < 0.02


def test_network_default_applies_to_conv_and_linear_only():
    text = spec("conv2d: {out: 8, kernel: 3, id: c}\nbatchnorm2d: {id: bn}\nflatten\nlinear: {out: 5, id: fc}",
                train="{init: {name: normal, std: 0.01}}", shape="[3, 6, 6]")
    model = archc.build(text=text, seed=0)
    assert torch.equal(model.bn.weight, torch.ones(8))  # norms keep torch's ones/zeros
    assert model.c.weight.std().item() < 0.02 and torch.equal(model.c.bias, torch.zeros(8))
    assert model.fc.weight.std().item() < 0.02
    # build's init overrides train.init
    model = archc.build(text=text, seed=0, init="zeros")
    assert torch.equal(model.fc.weight, torch.zeros(5, 8 * 4 * 4))


def test_per_op_kind_default_dcgan_style():
    """DCGAN (Radford et al. 2016): conv weights N(0, 0.02), batch-norm weights N(1, 0.02)."""
    train = ("{init: {conv2d: {name: normal, std: 0.02}, "
             "batchnorm2d: {weight: {name: normal, mean: 1.0, std: 0.02}, bias: zeros}}}")
    model = archc.build(text=spec("conv2d: {out: 512, kernel: 3, id: c, bias: false}\nbatchnorm2d: {id: bn}",
                                  train=train), seed=0)
    assert abs(model.c.weight.std().item() - 0.02) < 0.001
    assert abs(model.bn.weight.mean().item() - 1) < 0.01 and 0.01 < model.bn.weight.std().item() < 0.03
    assert torch.equal(model.bn.bias, torch.zeros(512))


def test_default_scheme_is_torchs_own():
    a = archc.build(text=spec("conv2d: {out: 8, kernel: 3}", shape="[3, 6, 6]"), seed=7)
    b = archc.build(text=spec("conv2d: {out: 8, kernel: 3, init: default}", shape="[3, 6, 6]"), seed=7)
    assert torch.equal(a.conv2d_1.weight, b.conv2d_1.weight) and torch.equal(a.conv2d_1.bias, b.conv2d_1.bias)


def test_train_seed_is_the_default_seed():
    text = spec("linear: {out: 3}", train="{seed: 11}", shape="[4]")
    assert torch.equal(archc.build(text=text).linear_1.weight, archc.build(text=text).linear_1.weight)
    assert torch.equal(archc.build(text=text).linear_1.weight, archc.build(text=text, seed=11).linear_1.weight)


def test_frozen_layers():
    model = archc.build(text=spec("linear: {out: 3, trainable: false, id: a}\nlinear: {out: 2, id: b}", shape="[4]"))
    assert [p.requires_grad for p in model.parameters()] == [False, False, True, True]


def test_the_source_carries_the_initialisation():
    src = archc.generate_source(text=spec("conv2d: {out: 8, kernel: 3, id: c, init: {name: he_normal, mode: fan_out}}"))
    assert "        self.init_weights()\n" in src
    assert ("        nn.init.kaiming_normal_(self.c.weight, a=0.0, mode='fan_out', nonlinearity='relu')\n"
            "        nn.init.zeros_(self.c.bias)\n") in src


@pytest.mark.parametrize("layers, train, message", [
    ("conv2d: {out: 2, kernel: 1, init: he_norml}", "",
     "<string>:4:5: error: layers[0].conv2d.init: `conv2d_1`: unknown initialisation 'he_norml' — "
     "did you mean `he_normal` or `he_uniform` or `normal`?"),
    ("batchnorm2d: {init: he_normal}", "",
     "<string>:4:5: error: layers[0].batchnorm2d.init: `batchnorm2d_1`: `kaiming_normal` computes fan-in/fan-out "
     "and needs a tensor of 2 or more dimensions; the weight of `batchnorm2d` has 1 — "
     "use normal, uniform, constant, zeros or ones"),
    ("conv2d: {out: 2, kernel: 1, bias: false, init: {bias: zeros}}", "",
     "<string>:4:5: error: layers[0].conv2d.init: `conv2d_1`: `conv2d` has no bias here — remove `bias:` from init"),
    ("relu: {init: zeros}", "",
     "<string>:4:5: error: layers[0].relu.init: `relu_1`: `relu` has no parameters to initialise — remove `init`"),
    ("conv2d: {out: 2, kernel: 1, init: {name: normal, sd: 1}}", "",
     "<string>:4:5: error: layers[0].conv2d.init: `conv2d_1`: `normal` has no option 'sd' — options: mean, std"),
    ("conv2d: {out: 2, kernel: 1, init: {name: kaiming_normal, mode: fan_avg}}", "",
     "<string>:4:5: error: layers[0].conv2d.init: `conv2d_1`: `kaiming_normal` option mode: expected one of "
     "fan_in, fan_out, got 'fan_avg' — did you mean 'fan_in'?"),
    ("conv2d: {out: 2, kernel: 1, init: $scheme}", "",
     "<string>:4:5: error: layers[0].conv2d.init: `conv2d_1`: the scheme must be a name, got '$scheme' — "
     "expressions are not allowed here"),
    ("conv2d: {out: 2, kernel: 1}\nconv2d: {out: 2, kernel: 1}", "{init: {name: normal, std: -1}}",
     "<string>: error: train.init: `normal` option std: must be ≥ 0, got -1"),
])
def test_bad_init_values_are_located_errors(layers, train, message):
    with pytest.raises(SpecErrors) as exc:
        archc.generate_source(text=spec(layers, train, shape="[3, 4, 4]"))
    assert [e.render() for e in exc.value.errors] == [message]


@pytest.mark.parametrize("default, message", [
    ({"conv2d": "he_normal", "batchnorm": "zeros"},
     "error: init: unknown op kind 'batchnorm' in the per-kind init — did you mean `batchnorm2d` or `batchnorm1d` or `batchnorm3d`? (archc's name for `batchnorm`)"),
    ({"name": "he_normall"}, "error: init: unknown initialisation 'he_normall' — "
                                      "did you mean `he_normal` or `normal` or `he_uniform`?"),
])
def test_a_bad_network_default_is_reported_even_if_unused(default, message):
    with pytest.raises(SpecErrors) as exc:
        archc.generate_source(text="archc: 1\ninput: [3]\nlayers:\n  - relu\n", init=default)
    assert [e.render() for e in exc.value.errors] == [message]
