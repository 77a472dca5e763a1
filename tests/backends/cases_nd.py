"""Op cases of 1-D and 3-D convolutions, pools and norms; the new norms and activations
(merged into OP_CASES of tests/backends/test_torch_ops.py: torch and ONNX check them all).

op -> [(input, layers)]; ``input`` is a shape, or an ``input:`` mapping for token ids."""

CASES: dict[str, list[tuple[str, str]]] = {}
