"""Zero padding before a max pool: onnxruntime's Pad_Fusion folds the zeros into the pool's
pads, which a max pool never picks, changing the result (or, with pads wider than the
kernel, the model fails to load). archc's sessions leave that rewrite out. Both cases
were found by the random specs of tests/backends/test_onnx_random.py."""

import pytest

import archc

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from onnx_checks import export_and_check  # noqa: E402

CASES = {
    "zeros_win_the_max": """archc: 1
input: [3, 3, 9]
layers:
  - zeropad2d: {padding: [0, 0, 0, 1]}
  - maxpool2d: {kernel: 3, stride: 1, padding: 1}
  - leaky_relu
""",
    "pads_wider_than_kernel": """archc: 1
input: [1, 3, 3]
layers:
  - zeropad2d: {padding: [0, 0, 0, 1]}
  - maxpool2d: {kernel: 1, stride: 1}
""",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_zero_pad_then_max_pool_matches_torch(name, tmp_path):
    export_and_check(archc.loads(CASES[name]), tmp_path / "model.onnx")
