"""Receptive fields of upsampling against a formula and against torch: the centre of an
output pixel's field is where torch samples the input (the weighted mean of the input
pixels its gradient reaches)."""

from __future__ import annotations

import pytest

import archc


def rf_of(spec: str, node: str):
    g = archc.loads(spec)
    return next(n for n in g.nodes if n.name == node).meta["rf"]


def upsample_spec(n: int, layer: str, pool: int = 1) -> str:
    pooled = f"  - avgpool2d: {{kernel: {pool}}}\n" if pool > 1 else ""
    return f"archc: 1\ninput: [1, {n}, {n}]\nlayers:\n{pooled}  - {layer}\n"


@pytest.mark.parametrize("n, f", [(4, 2), (5, 3), (6, 1.5), (3, 4)])
def test_bilinear_centre_is_the_half_pixel_sample_point(n, f):
    rf = rf_of(upsample_spec(n, f"upsample: {{scale: {f}, mode: bilinear, id: up}}"), "up")
    m = int(n * f)
    # output pixel o samples input coordinate (o + 0.5) * n / m - 0.5 (torch, align_corners=False)
    assert rf.start == pytest.approx([0.5 * n / m - 0.5] * 2)
    assert rf.jump == pytest.approx([n / m] * 2)


def weighted_centre(module, n: int, o: int) -> float:
    """Where output row o of ``module`` looks in an n-row input: its gradient's weighted mean."""
    torch = pytest.importorskip("torch")
    x = torch.rand(1, 1, n, n, requires_grad=True)
    module(x)[0, 0, o, :].sum().backward()
    w = x.grad[0, 0].abs().sum(1)
    return float((w * torch.arange(n)).sum() / w.sum())


@pytest.mark.parametrize("mode, corners", [("bilinear", False), ("bilinear", True)])
def test_centres_equal_torch(mode, corners):
    pytest.importorskip("torch")
    n, pool = 16, 2
    layer = f"upsample: {{scale: 4, mode: {mode}, align_corners: {str(corners).lower()}, id: up}}"
    spec = upsample_spec(n, layer, pool)
    rf = rf_of(spec, "up")
    model = archc.build(text=spec, seed=0)
    for o in range(4, 26):  # inside, where no sample is clamped at the border
        assert rf.start[0] + o * rf.jump[0] == pytest.approx(weighted_centre(model, n, o), abs=1e-5), o


def test_an_aligned_bilinear_skip_is_aligned():
    # U-Net's pattern: halve, bring back with bilinear x2, add to the full-resolution map
    spec = ("archc: 1\ninput: [1, 8, 8]\nlayers:\n  - avgpool2d: {kernel: 2}\n"
            "  - upsample: {scale: 2, mode: bilinear}\n  - add: {from: [upsample_1, input], id: skip}\n")
    assert rf_of(spec, "skip").aligned


def test_upsample_to_no_pixels_is_a_located_error():
    with pytest.raises(archc.SpecErrors) as info:
        archc.loads(upsample_spec(2, "upsample: {scale: 0.4}"))
    assert [e.render() for e in info.value.errors] == [
        "<string>:4:5: error: layers[0].upsample: `upsample_1`: upsampling 2×2 by 0.4 leaves 0×0 pixels "
        "(input `input` [1, 2, 2]) — use a scale of at least 0.5, or give `size: [h, w]`"]


def test_fields_print_with_consistent_decimals():
    from archc.analysis.receptive_field import RF

    def text(*size):
        return RF(size, (1,) * len(size), (0,) * len(size)).text()

    assert text(5, 5) == "5" and text(3, 7) == "3×7"
    assert text(7.8, 6.75) == "7.80×6.75" and text(7, 6.5) == "7.00×6.50"  # never 7.8×6.75, 8.733×7.333
    assert text(26 / 3, 26 / 3) == "8.67"
    g = archc.loads("archc: 1\ninput: [3, 15, 16]\nlayers:\n  - conv2d: {out: 4, kernel: 3, stride: 2}\n"
                    "  - upsample: {size: [10, 16], mode: bilinear}\n  - conv2d: {out: 4, kernel: 3}\n")
    # the last conv: 5 + 2 steps of the upsampled grid, whose step is the stride 2 × 7/10 (× 7/16)
    assert g.nodes[-1].meta["rf"].text() == f"{5 + 2 * (2 * 7 / 10):.2f}×{5 + 2 * (2 * 7 / 16):.2f}"
