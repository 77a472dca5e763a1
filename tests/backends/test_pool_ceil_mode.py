"""ceil_mode where torch drops the window that would start in the padding: the generated
code passes ceil_mode only where it changes the size, so torch's numbers are kept and the
ONNX file's shapes agree with ONNX's own shape rule (a case found by the random specs)."""

import pytest

import archc

torch = pytest.importorskip("torch")

SPEC = """archc: 1
input: [2, {h}, {w}]
layers:
  - {op}: {{kernel: {k}, stride: 2, ceil_mode: true}}
"""
CASES = [("maxpool2d", 4, 3, 1), ("avgpool2d", 4, 3, 1), ("maxpool2d", 5, 7, 3), ("avgpool2d", 6, 5, 2)]


@pytest.mark.parametrize("op, h, w, k", CASES)
def test_values_equal_torch_ceil_mode(op, h, w, k):
    model = archc.build(text=SPEC.format(op=op, h=h, w=w, k=k)).eval()
    x = torch.randn(3, 2, h, w)
    pool = getattr(torch.nn.functional, op.replace("pool2d", "_pool2d"))
    expected = pool(x, kernel_size=k, stride=2, ceil_mode=True)
    assert torch.equal(model(x), expected)


@pytest.mark.parametrize("op, h, w, k", CASES)
def test_onnx_export_passes_every_check(op, h, w, k, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from onnx_checks import export_and_check

    export_and_check(archc.loads(SPEC.format(op=op, h=h, w=w, k=k)), tmp_path / "pool.onnx")
