"""Can a graph be exported to ONNX, and how? Torch-free: `archc validate --target onnx`
asks before any tracing, and export asks again before it builds anything.

The exporter is torch.onnx's dynamo exporter, which writes opsets 18 to 25 (torch 2.14).
Below 18 it only runs onnx's version converter, which we found silently wrong (a softmax
converted to opset 11 flattens differently and gives other numbers) or silently not
applied (most files stay at 18): archc refuses those opsets rather than ship such a file.

Each op declares ``onnx_opset``: the first opset whose operators express it exactly as
archc computes it (None: the op cannot be exported). A spec exports at opset N when every
op's ``onnx_opset`` ≤ N.
"""

from __future__ import annotations

from archc.errors import Pos, SpecError
from archc.ops.registry import get_op

OPSET_MIN, OPSET_MAX = 18, 25  # torch.onnx's dynamo exporter (tests check against torch)
DEFAULT_OPSET = 20  # torch 2.14's default; onnxruntime ≥ 1.17 runs it
PROTOBUF_LIMIT = 2 * 1024**3  # one protobuf message (a single-file model) is at most 2 GiB
BYTES_PER_VALUE = 4  # fp32 weights


def weight_bytes(graph) -> int:
    """Bytes of the weights an exported file holds (parameters and running statistics, fp32)."""
    return (graph.summary.total_params + graph.summary.buffers) * BYTES_PER_VALUE


def target_errors(graph, opset: int = DEFAULT_OPSET, single_file: bool = True) -> list[SpecError]:
    """Every reason ``graph`` cannot be exported at ``opset`` (as one file), located at its node."""
    errors = []
    if not OPSET_MIN <= opset <= OPSET_MAX:
        errors.append(SpecError(f"opset {opset} is not available: torch.onnx writes opsets "
                                f"{OPSET_MIN} to {OPSET_MAX}", Pos(graph.file or "<spec>"), "",
                                f"use --opset {DEFAULT_OPSET} (the default) or another in that range"))
    for node in graph.nodes:
        need = get_op(node.op).onnx_opset
        if need is None:
            errors.append(SpecError(f"`{node.op}` cannot be exported to ONNX", node.pos, node.path,
                                    "replace it, or compile to torch only"))
        elif need > opset:
            errors.append(SpecError(f"`{node.op}` needs ONNX opset {need} or later, not {opset}",
                                    node.pos, node.path, f"export with --opset {max(need, OPSET_MIN)}"))
    size = weight_bytes(graph)
    if single_file and size >= PROTOBUF_LIMIT:
        errors.append(SpecError(f"the weights take {size / 1024**3:.2f} GiB, more than one ONNX file "
                                "can hold (2 GiB)", Pos(graph.file or "<spec>"), "",
                                "export with --external-data"))
    return errors
