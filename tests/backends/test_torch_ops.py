"""Every registered op, built by the torch backend, agrees with the static analysis:
shape of every node, parameters, buffers (tests/backends/torch_checks.py).

The table below must name every op of the registry — adding an op without a case here
fails ``test_table_covers_the_registry``."""

from __future__ import annotations

import textwrap

import pytest

import archc
from archc.ops.registry import all_ops
from torch_checks import check_graph

import cases_attention
import cases_nd
import cases_tokens

# op -> [(input shape, layers)]: small nets that exercise the op's attributes
OP_CASES = {
    "adaptive_avgpool2d": [("[3, 9, 7]", "- adaptive_avgpool2d: {size: [3, 2]}")],
    "add": [("[3, 8, 8]", "- conv2d: {out: 3, kernel: 3, padding: 1, id: a}\n- add: {from: [input, a, a]}"),
            ("[3, 8, 8]", "- global_avgpool: {id: g}\n- add: {from: [input, g]}")],
    "avgpool2d": [("[2, 9, 9]", "- avgpool2d: {kernel: 3, stride: 2, padding: 1, ceil_mode: true}"),
                  ("[2, 9, 8]", "- avgpool2d: {kernel: 3, stride: 2, padding: same}"),
                  ("[2, 8, 9]", "- avgpool2d: {kernel: 3, stride: 2, padding: same, count_include_pad: false}"),
                  ("[2, 6, 6]", "- avgpool2d: {kernel: [2, 3], stride: [1, 2]}")],
    "batchnorm1d": [("[5]", "- batchnorm1d"), ("[4, 6]", "- batchnorm1d: {affine: false}")],
    "batchnorm2d": [("[3, 5, 5]", "- batchnorm2d"), ("[3, 5, 5]", "- batchnorm2d: {affine: false}")],
    "concat": [("[3, 8, 8]", "- conv2d: {out: 2, kernel: 1, id: a}\n- concat: {from: [input, a, input]}"),
               ("[3, 8, 8]", "- concat: {from: [input, input], dim: 1}"),
               ("[4, 5]", "- concat: {from: [input, input], dim: -1}")],
    "conv2d": [("[3, 9, 8]", "- conv2d: {out: 4, kernel: 3, stride: 2, padding: same}"),
               ("[4, 9, 9]", "- conv2d: {out: 6, kernel: [3, 5], dilation: 2, groups: 2, bias: false}"),
               ("[3, 7, 7]", "- conv2d: {out: 2, kernel: 3, padding: [1, 0, 2, 1]}"),
               ("[3, 7, 7]", "- conv2d: {out: 2, kernel: 4, stride: 3, padding: valid}")],
    "conv_transpose2d": [("[4, 5, 5]", "- conv_transpose2d: {out: 2, kernel: 4, stride: 2, padding: 1, "
                                       "output_padding: 1}"),
                         ("[4, 3, 3]", "- conv_transpose2d: {out: 6, kernel: 3, dilation: 2, groups: 2, "
                                       "bias: false}")],
    "crop": [("[3, 10, 9]", "- crop: {size: [6, 5]}"),
             ("[3, 10, 9]", "- conv2d: {out: 2, kernel: 3, id: small}\n- crop: {from: [input, small]}")],
    "dropout": [("[6]", "- dropout: {p: 0.3}")],
    "dropout2d": [("[3, 4, 4]", "- dropout2d")],
    "elu": [("[5]", "- elu: {alpha: 0.5}")],
    "flatten": [("[2, 3, 4]", "- flatten")],
    "gelu": [("[5]", "- gelu")],
    "global_avgpool": [("[3, 5, 4]", "- global_avgpool"), ("[3, 5, 4]", "- global_avgpool: {keepdims: false}")],
    "identity": [("[3]", "- identity"), ("[3]", "- relu\n- identity\n- sigmoid")],
    "layernorm": [("[3, 4, 5]", "- layernorm: {dims: 2}"), ("[6]", "- layernorm: {affine: false}")],
    "leaky_relu": [("[5]", "- leaky_relu: {slope: 0.2}")],
    "linear": [("[5]", "- linear: {out: 3}"), ("[3, 7]", "- linear: {out: 2, bias: false}")],
    "local_response_norm": [("[6, 4, 4]", "- local_response_norm: {size: 3, alpha: 0.001}")],
    "log_softmax": [("[3, 4]", "- log_softmax: {dim: -1}")],
    "maxpool2d": [("[2, 9, 8]", "- maxpool2d: {kernel: 3, stride: 2, padding: same}"),
                  ("[2, 9, 9]", "- maxpool2d: {kernel: 2, dilation: 2, ceil_mode: true}"),
                  ("[2, 7, 7]", "- maxpool2d: {kernel: 3, stride: 2, padding: 1}")],
    "multiply": [("[3, 4, 4]", "- sigmoid: {id: gate}\n- multiply: {from: [input, gate]}"),
                 ("[3, 4, 4]", "- global_avgpool: {id: g}\n- multiply: {from: [g, input]}")],
    "relu": [("[5]", "- relu")],
    "relu6": [("[5]", "- relu6")],
    "reshape": [("[12]", "- reshape: {shape: [3, -1]}"), ("[2, 3, 4]", "- reshape: {shape: [6, 4]}")],
    "sigmoid": [("[5]", "- sigmoid")],
    "silu": [("[5]", "- silu")],
    "softmax": [("[3, 4, 4]", "- softmax"), ("[3, 4]", "- softmax: {dim: 1}")],
    "softplus": [("[5]", "- softplus: {beta: 2, threshold: 10}")],
    "tanh": [("[5]", "- tanh")],
    "upsample": [("[2, 3, 4]", "- upsample: {scale: 2}"),
                 ("[2, 3, 4]", "- upsample: {size: [7, 9], mode: bilinear}"),
                 ("[2, 4, 4]", "- upsample: {scale: 1.5, mode: bilinear, align_corners: true}")],
    "zeropad2d": [("[2, 3, 4]", "- zeropad2d: {padding: [1, 2, 3, 4]}"), ("[2, 3, 4]", "- zeropad2d: {padding: 1}")],
}

# the cases of the sequence, attention and N-d ops live beside this file, one module each
OP_CASES |= cases_nd.CASES | cases_tokens.CASES | cases_attention.CASES

CASES = [pytest.param(op, shape, layers, id=f"{op}-{i}")
         for op, cases in sorted(OP_CASES.items()) for i, (shape, layers) in enumerate(cases)]


def spec(op: str, shape: str, layers: str) -> str:
    return f"archc: 1\nname: {op}\ninput: {shape}\nlayers:\n" + textwrap.indent(layers, "  ") + "\n"


def test_table_covers_the_registry():
    assert set(OP_CASES) == set(all_ops())


@pytest.mark.parametrize("op, shape, layers", CASES)
def test_op_builds_and_matches_the_analysis(op, shape, layers):
    graph = archc.loads(spec(op, shape, layers))
    assert any(n.op == op for n in graph.nodes)
    check_graph(graph)
