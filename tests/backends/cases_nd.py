"""Op cases of 1-D and 3-D convolutions, pools and norms; the new norms and activations
(merged into OP_CASES of tests/backends/test_torch_ops.py: torch and ONNX check them all).

op -> [(input, layers)]; ``input`` is a shape, or an ``input:`` mapping for token ids.
The merge replaces an op's list, so the ops that already had cases there (gelu,
global_avgpool, layernorm) repeat them here before the new ones."""

CASES: dict[str, list[tuple[str, str]]] = {
    "conv1d": [("[4, 17]", "- conv1d: {out: 6, kernel: 5, stride: 2, padding: same}"),
               ("[4, 16]", "- conv1d: {out: 6, kernel: 3, dilation: 4, groups: 2, bias: false}"),
               ("[3, 12]", "- conv1d: {out: 2, kernel: [4], stride: 3, padding: [1, 2]}"),
               ("[3, 10]", "- conv1d: {out: 2, kernel: 3, padding: 1}\n- conv1d: {out: 2, kernel: 3, padding: valid}")],
    "conv3d": [("[3, 5, 9, 8]", "- conv3d: {out: 4, kernel: 3, stride: 2, padding: same}"),
               ("[4, 5, 7, 7]", "- conv3d: {out: 6, kernel: [1, 3, 3], dilation: [1, 2, 1], groups: 2, bias: false}"),
               ("[2, 4, 6, 6]", "- conv3d: {out: 2, kernel: [2, 3, 3], padding: [0, 1, 1, 0, 2, 1]}"),
               ("[2, 6, 6, 6]", "- conv3d: {out: 3, kernel: 3, stride: [1, 2, 2], padding: [1, 0, 1]}")],
    "conv_transpose1d": [("[4, 5]", "- conv_transpose1d: {out: 2, kernel: 4, stride: 2, padding: 1, output_padding: 1}"),
                         ("[4, 6]", "- conv_transpose1d: {out: 6, kernel: 3, dilation: 2, groups: 2, bias: false}")],
    "conv_transpose3d": [("[4, 3, 4, 4]", "- conv_transpose3d: {out: 2, kernel: [2, 4, 4], stride: 2, "
                                          "padding: [0, 1, 1], output_padding: [1, 0, 1]}"),
                         ("[4, 2, 3, 3]", "- conv_transpose3d: {out: 6, kernel: 3, dilation: [1, 2, 2], groups: 2, "
                                          "bias: false}")],
    "maxpool1d": [("[2, 9]", "- maxpool1d: {kernel: 3, stride: 2, padding: same}"),
                  ("[2, 9]", "- maxpool1d: {kernel: 2, dilation: 2, ceil_mode: true}"),
                  ("[2, 8]", "- maxpool1d: {kernel: 3, stride: 2, padding: 1}")],
    "maxpool3d": [("[2, 5, 9, 8]", "- maxpool3d: {kernel: [1, 3, 3], stride: [1, 2, 2], padding: same}"),
                  ("[2, 5, 5, 5]", "- maxpool3d: {kernel: 2, ceil_mode: true}"),
                  ("[2, 4, 6, 6]", "- maxpool3d: {kernel: 3, stride: 2, padding: 1, dilation: [1, 1, 2]}")],
    "avgpool1d": [("[2, 9]", "- avgpool1d: {kernel: 3, stride: 2, padding: 1, ceil_mode: true}"),
                  ("[2, 8]", "- avgpool1d: {kernel: 3, stride: 2, padding: same, count_include_pad: false}"),
                  ("[2, 8]", "- avgpool1d: {kernel: 2}")],
    "avgpool3d": [("[2, 4, 6, 7]", "- avgpool3d: {kernel: [2, 3, 3], stride: 2, padding: same}"),
                  ("[2, 5, 6, 5]", "- avgpool3d: {kernel: 3, stride: 2, padding: same, count_include_pad: false}"),
                  ("[2, 5, 5, 5]", "- avgpool3d: {kernel: 3, stride: 2, padding: 1, ceil_mode: true}")],
    "adaptive_avgpool1d": [("[3, 10]", "- adaptive_avgpool1d: {size: 4}"),
                           ("[3, 12]", "- adaptive_avgpool1d: {size: [3]}")],
    "adaptive_avgpool3d": [("[2, 6, 9, 7]", "- adaptive_avgpool3d: {size: [3, 2, 2]}"),
                           ("[2, 4, 4, 4]", "- adaptive_avgpool3d: {size: 2}")],
    "global_avgpool": [("[3, 5, 4]", "- global_avgpool"), ("[3, 5, 4]", "- global_avgpool: {keepdims: false}"),
                       ("[3, 10]", "- global_avgpool"),
                       ("[3, 4, 5, 6]", "- global_avgpool: {keepdims: false}")],
    "batchnorm3d": [("[3, 4, 5, 5]", "- batchnorm3d"),
                    ("[3, 2, 4, 4]", "- batchnorm3d: {affine: false, eps: 0.001, momentum: 0.01}")],
    "groupnorm": [("[6, 10]", "- groupnorm: {groups: 3}"),
                  ("[8, 4, 4]", "- groupnorm: {groups: 2, affine: false}"),
                  ("[4, 3, 4, 4]", "- groupnorm: {groups: 4, eps: 0.001}")],
    "instancenorm": [("[3, 10]", "- instancenorm"),
                     ("[3, 6, 6]", "- instancenorm: {affine: true, eps: 0.001}"),
                     ("[3, 4, 4, 4]", "- instancenorm: {affine: true, track_running_stats: true}")],
    "rmsnorm": [("[6, 8]", "- rmsnorm"),
                ("[3, 4, 5]", "- rmsnorm: {dims: 2, eps: 0.000001, affine: false}")],
    # layernorm over the width of tokens (L, D), as a transformer block does
    "layernorm": [("[3, 4, 5]", "- layernorm: {dims: 2}"), ("[6]", "- layernorm: {affine: false}"),
                  ("[7, 16]", "- layernorm")],
    "gelu": [("[5]", "- gelu"), ("[5]", "- gelu: {approximate: tanh}"),
             ("[3, 8]", "- conv1d: {out: 4, kernel: 3}\n- gelu: {approximate: none}")],
    # after a conv the activation may overwrite its input (the in-place form)
    "hardswish": [("[5]", "- hardswish"), ("[3, 6, 6]", "- conv2d: {out: 4, kernel: 3}\n- hardswish")],
    "hardsigmoid": [("[5]", "- hardsigmoid"), ("[3, 6, 6]", "- conv2d: {out: 4, kernel: 3}\n- hardsigmoid")],
    "mish": [("[5]", "- mish"), ("[3, 8]", "- conv1d: {out: 4, kernel: 3}\n- mish")],
}
