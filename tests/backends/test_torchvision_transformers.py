"""The zoo's ViT-B/16 and ConvNeXt-T, given torchvision's own weights through
``archc.load_weights``, compute what torchvision computes.

As in test_torchvision_equivalence.py: torchvision builds the network with random weights
(``weights=None``, seeded — nothing is downloaded), its state_dict goes to a file, and
``archc.load_weights`` reads that file strictly into the module built from the zoo spec.

Two things differ from the convolutional networks there:

* torchvision keeps some tensors as bare parameters of a container module — ViT's
  ``class_token`` and ``encoder.pos_embedding``, ConvNeXt's ``features.S.B.layer_scale`` —
  while archc's ops own a ``weight``; and ConvNeXt registers each block's layer scale
  *before* the block's convolution, though it applies it after. ``load_weights`` takes
  such a tensor as a one-tensor layer placed after its module's submodules, so they pair
  without a mapping (by name for ViT, by order for ConvNeXt) — and with the right block:
  test_the_comparison_can_fail shows what pairing them one block off would give.
* torchvision starts several tensors at constants — ViT's head at zeros (every output 0),
  ConvNeXt's layer scales at 1e-6 (every block nearly the identity), every norm at (1, 0)
  — which would let a tensor loaded into the wrong place go unseen. Every tensor gets a
  random offset before it is saved, so each one shows in the output.
"""

from __future__ import annotations

import pytest

import archc

torch = pytest.importorskip("torch")
models = pytest.importorskip(
    "torchvision.models", reason="torchvision is not installed (pip install -e '.[test]' adds it)")

from archc.zoo import zoo_dir  # noqa: E402
from macs_reference import torch_macs  # noqa: E402

NAMES = ["convnext_tiny", "vit_b_16"]
CONVNEXT_DEPTHS = [3, 3, 9, 3]


def convnext_layer_scales(depths=CONVNEXT_DEPTHS, shift: int = 0) -> dict:
    """archc's ``stageS.B.layer_scale.weight`` <- torchvision's ``features.(2S-1).B.layer_scale``
    (stages and downsamplings alternate in ``features``); ``shift`` rotates the blocks of
    each stage, a deliberately wrong pairing."""
    return {f"stage{s + 1}.{b}.layer_scale.weight": f"features.{2 * s + 1}.{(b + shift) % d}.layer_scale"
            for s, d in enumerate(depths) for b in range(d)}


# How many tensors pair by each rule: pinned so that ids drifting from torchvision's show.
# ViT: all 152 by name (its spec names the encoder layers `encoder_layer_$index` and the
# MLP's layers mlp.0 … mlp.4). ConvNeXt: features.N.M... all by order.
PAIRED = {
    "vit_b_16": {"name": 152},
    "convnext_tiny": {"order": 182},
}
# torchvision's models: sum(p.numel() for p in model.parameters())
PARAMS = {"vit_b_16": 86_567_656, "convnext_tiny": 28_589_128}


def torchvision_file(name: str, tmp_path):
    """torchvision's randomly initialised network (seeded, every tensor offset at random)
    and the file of its state_dict."""
    torch.manual_seed(0)
    reference = getattr(models, name)(weights=None).eval()
    noise = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in reference.parameters():
            p.add_(torch.randn(p.shape, generator=noise), alpha=0.02)
    path = tmp_path / f"{name}.pt"
    torch.save(reference.state_dict(), path)
    return reference, path


def image(batch: int = 2):
    return torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", NAMES)
def test_parameters_are_torchvisions(name):
    reference = getattr(models, name)(weights=None)
    summary = archc.load(str(zoo_dir() / f"{name}.yaml")).summary
    assert summary.total_params == sum(p.numel() for p in reference.parameters()) == PARAMS[name]
    assert summary.buffers == sum(b.numel() for b in reference.buffers()) == 0


@pytest.mark.parametrize("name", NAMES)
def test_with_torchvision_weights_computes_what_torchvision_computes(name, tmp_path):
    reference, path = torchvision_file(name, tmp_path)
    ours = archc.build(name, seed=1).eval()
    report = archc.load_weights(ours, path)  # strict: every tensor paired, no mapping
    assert report.complete and report.ok
    assert {how: report.count(how) for how in ("mapping", "name", "order", "counter")
            if report.count(how)} == PAIRED[name]
    x = image()
    with torch.no_grad():
        got, want = ours(x), reference(x)
    assert got.shape == want.shape == (2, 1000)
    assert want.abs().max() > 0.5  # a real output, not the zero head torchvision starts with
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4)


def test_vit_state_dict_keys_are_torchvisions():
    """Every key of the zoo ViT is torchvision's, but for the two tensors torchvision keeps as
    bare parameters of a container (archc's class_token and pos_embedding ops own a `weight`)."""
    ours = set(archc.build("vit_b_16", seed=1).state_dict())
    theirs = set(models.vit_b_16(weights=None).state_dict())
    bare = {"class_token", "encoder.pos_embedding"}
    assert "encoder.layers.encoder_layer_11.mlp.3.weight" in theirs
    assert ours == (theirs - bare) | {f"{k}.weight" for k in bare}


def test_the_comparison_can_fail(tmp_path):
    """Without torchvision's weights the same spec gives another output; with the layer
    scales paired one block off (as order alone would pair them) it does too."""
    reference, path = torchvision_file("convnext_tiny", tmp_path)
    x = image(batch=1)
    ours = archc.build("convnext_tiny", seed=1).eval()
    with torch.no_grad():
        want = reference(x)
        assert (ours(x) - want).abs().max() > 1e-2
        archc.load_weights(ours, path, mapping=convnext_layer_scales(shift=1))
        assert (ours(x) - want).abs().max() > 1e-2


def test_bare_parameters_pair_with_their_own_block():
    """ConvNeXt's layer scales (registered before each block's layers, applied after) land
    in the block that owns them: each archc block takes its torchvision block's tensor."""
    reference = getattr(models, "convnext_tiny")(weights=None)
    report = archc.load_weights(archc.build("convnext_tiny", seed=1), reference.state_dict())
    pairs = {p.target: p.source for p in report.pairs}
    assert {t: pairs[t] for t in convnext_layer_scales()} == convnext_layer_scales()
    assert pairs["stage3.8.layer_scale.weight"] == "features.5.8.layer_scale"


def vit_b_16_macs(tokens=197, width=768, mlp=3072, layers=12, classes=1000) -> int:
    """Patch projection (196 patches · 768 · 3·16²), per layer q, k, v, out projections
    4·L·D², Q·Kᵀ and A·V 2·L²·D, the MLP 2·L·D·F; the head D·classes."""
    per_layer = 4 * tokens * width ** 2 + 2 * tokens ** 2 * width + 2 * tokens * width * mlp
    return (tokens - 1) * width * 3 * 16 ** 2 + layers * per_layer + width * classes


def convnext_tiny_macs(widths=(96, 192, 384, 768), depths=CONVNEXT_DEPTHS, classes=1000) -> int:
    """Stem 56²·96·3·4²; a block at (C, H, W): depthwise 7×7 H·W·C·49, the MLP 2·H·W·C·4C;
    downsampling to (C', H/2, W/2): (H/2)·(W/2)·C'·C·2²; the head C·classes."""
    side = 56
    total = side ** 2 * widths[0] * 3 * 4 ** 2
    for s, (c, d) in enumerate(zip(widths, depths)):
        if s:
            side //= 2
            total += side ** 2 * c * widths[s - 1] * 2 ** 2
        total += d * side ** 2 * (c * 49 + 2 * c * 4 * c)
    return total + widths[-1] * classes


@pytest.mark.parametrize("name, formula, macs", [("vit_b_16", vit_b_16_macs, 17_563_828_224),
                                                 ("convnext_tiny", convnext_tiny_macs, 4_455_531_264)])
def test_macs_equal_the_formula_and_torchs_flop_counter(name, formula, macs):
    """archc's static count = the formula = torch's flop counter on torchvision's model.
    The ViT runs in training mode: in eval nn.MultiheadAttention takes a fused fast path
    that the flop counter cannot see (its dropouts are 0, the value is the same)."""
    reference = getattr(models, name)(weights=None)
    reference.train(name == "vit_b_16")
    assert archc.load(str(zoo_dir() / f"{name}.yaml")).summary.macs == formula() == macs
    assert torch_macs(reference, image(batch=1)) == macs
