"""`same` padding with stride > 1 follows Keras/TensorFlow in torch — output ceil(n / s),
the odd pixel of padding at the bottom/right — and U-Net's crop-and-concat: values checked
against references computed by hand (explicit pads, explicit window loops)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import archc


def net(shape, layers):
    return archc.build(text=f"archc: 1\ninput: {shape}\nlayers:\n" + "".join(f"  - {l}\n" for l in layers),
                       seed=0).eval()


def run(model, x):
    with torch.no_grad():
        return model(x)


# (height, width, kernel, stride, dilation) -> pads (top, bottom, left, right) worked out by
# hand: out = ceil(n / s); total = (out - 1) * s + d * (k - 1) + 1 - n; the odd one after.
SAME_CASES = [
    ((7, 8, 3, 2, 1), (1, 1, 0, 1)),   # 7: out 4, total 2 | 8: out 4, total 1
    ((9, 6, 4, 2, 1), (1, 2, 1, 1)),   # 9: out 5, total 3 | 6: out 3, total 2
    ((8, 8, 3, 3, 1), (0, 1, 0, 1)),   # out 3, total 1
    ((7, 7, 3, 2, 2), (2, 2, 2, 2)),   # dilated: out 4, total 6 + 5 - 7 = 4
    ((5, 10, 1, 2, 1), (0, 0, 0, 0)),  # 1×1: total ≤ 0
]


@pytest.mark.parametrize("case, pads", SAME_CASES)
def test_same_conv_with_stride_pads_like_tensorflow(case, pads):
    h, w, k, s, d = case
    model = net(f"[2, {h}, {w}]", [f"conv2d: {{out: 3, kernel: {k}, stride: {s}, dilation: {d}, padding: same}}"])
    x = torch.randn(1, 2, h, w)
    t, b, l, r = pads
    want = F.conv2d(F.pad(x, (l, r, t, b)), model.conv2d_1.weight, model.conv2d_1.bias, stride=s, dilation=d)
    got = run(model, x)
    assert got.shape == (1, 3, -(-h // s), -(-w // s))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def _windows(x, k, s, pads):
    """Each output window of a 'same' pool as the list of its real (unpadded) pixels."""
    t, _, l, _ = pads
    h, w = x.shape[-2:]
    oh, ow = -(-h // s), -(-w // s)
    for i in range(oh):
        for j in range(ow):
            rows = [r for r in range(i * s - t, i * s - t + k) if 0 <= r < h]
            cols = [c for c in range(j * s - l, j * s - l + k) if 0 <= c < w]
            yield i, j, x[..., rows, :][..., cols]


def test_same_max_pool_never_picks_a_pad():
    model = net("[2, 8, 7]", ["maxpool2d: {kernel: 3, stride: 2, padding: same}"])
    x = -torch.rand(1, 2, 8, 7) - 1  # all negative: a zero pad would win
    got = run(model, x)
    assert got.shape == (1, 2, 4, 4)
    for i, j, win in _windows(x, 3, 2, (0, 1, 1, 1)):  # 8: total 1 | 7: total 2
        torch.testing.assert_close(got[..., i, j], win.amax(dim=(-2, -1)), rtol=0, atol=0)


@pytest.mark.parametrize("include", [False, True])
def test_same_average_pool_counts_pads_only_when_asked(include):
    layer = f"avgpool2d: {{kernel: 3, stride: 2, padding: same, count_include_pad: {str(include).lower()}}}"
    model = net("[2, 8, 7]", [layer])
    x = torch.rand(1, 2, 8, 7)
    got = run(model, x)
    for i, j, win in _windows(x, 3, 2, (0, 1, 1, 1)):
        want = win.sum(dim=(-2, -1)) / (9 if include else win.shape[-1] * win.shape[-2])
        torch.testing.assert_close(got[..., i, j], want, rtol=1e-6, atol=1e-6)


def test_unet_crop_and_concat():
    """The skip (C, 10, 9) is centre-cropped to the decoder's 6×5 — rows 2..7, columns
    2..6 — and joined along channels after the decoder's own channels."""
    model = net("[2, 10, 9]", ["identity: {id: skip}", "conv2d: {out: 3, kernel: [5, 5], id: dec}",
                               "crop: {from: [skip, dec], id: cropped}",
                               "concat: {from: [dec, cropped]}"])
    x = torch.randn(2, 2, 10, 9)
    got = run(model, x)
    dec = F.conv2d(x, model.dec.weight, model.dec.bias)
    assert dec.shape == (2, 3, 6, 5) and got.shape == (2, 5, 6, 5)
    torch.testing.assert_close(got, torch.cat([dec, x[:, :, 2:8, 2:7]], 1), rtol=0, atol=1e-6)


def test_crop_to_a_size_is_centred():
    model = net("[1, 7, 6]", ["crop: {size: [3, 3]}"])
    x = torch.arange(42.0).reshape(1, 1, 7, 6)
    assert torch.equal(run(model, x), x[:, :, 2:5, 1:4])  # (7-3)//2 = 2, (6-3)//2 = 1
