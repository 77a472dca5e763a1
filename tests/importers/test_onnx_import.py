"""archc import of ONNX graphs written here op by op (onnx.helper): each imported spec,
built with the written weights, computes what onnxruntime computes on the original file
(max |diff| <= 1e-5 at batch 1 and 3), and the spec says it the way a person would.
Errors name the node, its op type and what archc would need, and nothing is written."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

from archc.cli import main
from archc.errors import SpecErrors
from archc.importers import import_onnx
from onnx_cases import imported, ints, max_diff, model, tensor

pytest.importorskip("onnxruntime")
TOL = 1e-5
N = helper.make_node


def layer_lines(result):
    return [line.strip() for line in result.text.splitlines() if line.startswith("  - ")]


def test_conv_with_asymmetric_pads_groups_dilation_and_stride(tmp_path):
    # ONNX pads are [top, left, bottom, right]; archc's are [top, bottom, left, right]
    nodes = [N("Conv", ["x", "c.weight", "c.bias"], ["y"], pads=[1, 0, 2, 1], strides=[2, 1],
               dilations=[1, 2], group=2)]
    m = model(nodes, [4, 9, 10], "y", [tensor("c.weight", 6, 2, 3, 3), tensor("c.bias", 6)])
    path, r = imported(m, tmp_path)
    assert layer_lines(r) == ["- conv2d: {out: 6, kernel: 3, stride: [2, 1], padding: [1, 2, 0, 1], "
                              "dilation: [1, 2], groups: 2, id: c}"]
    assert max_diff(path, r) <= TOL


def test_pools_ceil_mode_and_count_include_pad(tmp_path):
    nodes = [N("MaxPool", ["x"], ["a"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
             N("AveragePool", ["a"], ["b"], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]),
             N("AveragePool", ["b"], ["c"], kernel_shape=[2, 2], strides=[2, 2], count_include_pad=1),
             N("GlobalAveragePool", ["c"], ["y"])]
    path, r = imported(model(nodes, [3, 12, 12], "y"), tmp_path)
    assert layer_lines(r) == [
        "- maxpool2d: {kernel: 3, stride: 2, padding: 1, ceil_mode: true, id: a}",
        "- avgpool2d: {kernel: 3, stride: 1, padding: 1, count_include_pad: false, id: b}",  # ONNX's default
        "- avgpool2d: {kernel: 2, id: c}",
        "- global_avgpool: {id: y}"]
    assert max_diff(path, r) <= TOL


def test_flatten_chain_identity_dropout_constant_gemm_and_matmul_add(tmp_path):
    # x.flatten(1) as torch.onnx's TorchScript exporter writes it, then two linear layers
    nodes = [N("Identity", ["x"], ["x1"]),
             N("Shape", ["x1"], ["s"]), N("Constant", [], ["zero"], value=helper.make_tensor("", TensorProto.INT64, [], [0])),
             N("Gather", ["s", "zero"], ["b"], axis=0), N("Unsqueeze", ["b", "ax0"], ["b1"]),
             N("Constant", [], ["m1"], value=helper.make_tensor("", TensorProto.INT64, [1], [-1])),
             N("Concat", ["b1", "m1"], ["target"], axis=0), N("Reshape", ["x1", "target"], ["flat"]),
             N("Gemm", ["flat", "fc1.weight", "fc1.bias"], ["h"], transB=1, alpha=0.5),
             N("Dropout", ["h"], ["hd"]), N("Relu", ["hd"], ["r"]),
             N("MatMul", ["r", "w2"], ["mm"]), N("Add", ["mm", "b2"], ["y"])]
    inits = [ints("ax0", [0]), tensor("fc1.weight", 8, 24), tensor("fc1.bias", 8), tensor("w2", 8, 5), tensor("b2", 5)]
    path, r = imported(model(nodes, [2, 3, 4], "y", inits), tmp_path)
    assert layer_lines(r) == ["- flatten: {id: flat}", "- linear: {out: 8, id: fc1}", "- relu: {id: r}",
                              "- linear: {out: 5, id: mm}"]
    assert r.graph.summary.total_params == 8 * 24 + 8 + 8 * 5 + 5
    assert max_diff(path, r) <= TOL


def test_norms_activations_concat_and_resize(tmp_path):
    nodes = [N("Conv", ["x", "c.weight"], ["c"], kernel_shape=[1, 1]),
             N("Sigmoid", ["c"], ["sg"]), N("Mul", ["c", "sg"], ["silu"]),
             N("Clip", ["silu", "zero", "six"], ["r6"]), N("HardSwish", ["c"], ["hs"]),
             N("Concat", ["r6", "hs"], ["cat"], axis=1),
             N("BatchNormalization", ["cat", "bn.weight", "bn.bias", "bn.mean", "bn.var"], ["bn"], epsilon=1e-3),
             N("LeakyRelu", ["bn"], ["lr"], alpha=0.2),
             N("Resize", ["lr", "", "scales"], ["up"], mode="nearest", coordinate_transformation_mode="asymmetric",
               nearest_mode="floor"),
             N("Resize", ["up", "", "scales"], ["y"], mode="linear")]
    var = tensor("bn.var", 8)
    var.CopyFrom(helper.make_tensor("bn.var", TensorProto.FLOAT, [8], np.linspace(0.5, 2, 8).tolist()))
    inits = [tensor("c.weight", 4, 3, 1, 1), helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
             helper.make_tensor("six", TensorProto.FLOAT, [], [6.0]), tensor("bn.weight", 8), tensor("bn.bias", 8),
             tensor("bn.mean", 8), var, helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2])]
    path, r = imported(model(nodes, [3, 5, 6], "y", inits), tmp_path)
    assert [line.split(":")[0] for line in layer_lines(r)] == [
        "- conv2d", "- silu", "- relu6", "- hardswish", "- concat", "- batchnorm2d", "- leaky_relu",
        "- upsample", "- upsample"]
    assert "- batchnorm2d: {eps: 0.001, id: bn}" in layer_lines(r)
    assert "- upsample: {scale: 2, mode: bilinear, id: y}" in layer_lines(r)
    assert max_diff(path, r) <= TOL


def test_tokens_layernorm_transpose_softmax_at_opset_13(tmp_path):
    # opset 13: ReduceMean's axes are an attribute, Unsqueeze's an input
    nodes = [N("Gather", ["wte.weight", "ids"], ["e"]),
             N("LayerNormalization", ["e", "ln.weight", "ln.bias"], ["ln"], epsilon=1e-6),
             N("Transpose", ["ln"], ["t"], perm=[0, 2, 1]), N("Softmax", ["t"], ["sm"], axis=-1),
             N("ReduceMean", ["sm"], ["mean"], axes=[2], keepdims=0), N("Unsqueeze", ["mean", "ax"], ["y"])]
    inits = [tensor("wte.weight", 11, 6), tensor("ln.weight", 6), tensor("ln.bias", 6), ints("ax", [2])]
    m = model(nodes, [7], "y", inits, opset=17, input_name="ids", input_type=TensorProto.INT64)
    path, r = imported(m, tmp_path)
    assert r.text.splitlines()[5] == "input: {shape: [7], dtype: int64}"
    assert layer_lines(r) == ["- embedding: {num: 11, dim: 6, id: wte}", "- layernorm: {eps: 1.0e-06, id: ln}",
                              "- transpose: {dims: [0, 1], id: t}", "- softmax: {dim: 1, id: sm}",
                              "- mean: {dims: [1], id: mean}", "- reshape: {shape: [6, 1], id: y}"]
    assert max_diff(path, r) <= TOL


def test_conv_transpose_and_static_batch(tmp_path):
    nodes = [N("ConvTranspose", ["x", "up.weight", "up.bias"], ["u"], strides=[2, 2], pads=[1, 1, 1, 1],
               output_padding=[1, 1]),
             N("Reshape", ["u", "shape"], ["y"])]
    inits = [tensor("up.weight", 3, 4, 3, 3), tensor("up.bias", 4), ints("shape", [1, 4, -1])]
    path, r = imported(model(nodes, [3, 5, 5], "y", inits, batch=1), tmp_path)  # a fixed batch of 1
    assert layer_lines(r) == ["- conv_transpose2d: {out: 4, kernel: 3, stride: 2, padding: 1, "
                              "output_padding: 1, id: up}", "- reshape: {shape: [4, 100], id: y}"]
    assert max_diff(path, r, batches=(1,)) <= TOL  # the file runs at batch 1 only; archc's spec at any


def test_external_data(tmp_path):
    nodes = [N("Conv", ["x", "conv.weight", "conv.bias"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             N("Relu", ["c"], ["y"])]
    m = model(nodes, [3, 8, 8], "y", [tensor("conv.weight", 16, 3, 3, 3), tensor("conv.bias", 16)])
    path, r = imported(m, tmp_path, save_as_external_data=True, all_tensors_to_one_file=True,
                       location="m.weights", size_threshold=0)
    assert (tmp_path / "m.weights").exists()
    assert max_diff(path, r) <= TOL
    (tmp_path / "m.weights").unlink()
    with pytest.raises(SpecErrors) as info:
        import_onnx(path, tmp_path / "again.yaml")
    assert str(info.value).startswith(f"{path}: error: its external data file is missing")
    assert not (tmp_path / "again.yaml").exists()


def test_names_that_are_not_archc_ids_become_valid_unique_ids(tmp_path):
    names = ["0", "class", "my-conv/w:0", "input", "train", "a.b", "a", "block.2", "block.2"]
    nodes, prev = [], "x"
    for i, name in enumerate(names):
        nodes.append(N("Conv", [prev, f"{name}.weight"], [f"v{i}"], kernel_shape=[1, 1]))
        prev = f"v{i}"
    inits = [tensor(f"{n}.weight", 2, 2, 1, 1) for n in names]
    path, r = imported(model(nodes, [2, 4, 4], prev, inits), tmp_path)
    ids = [line.split("id: ")[1].rstrip("}") for line in layer_lines(r)]
    # two layers named after one nn.Sequential child (ConvNeXt's block.2): the second's index
    # becomes an identifier
    assert ids == ["n0", "class_1", "my_conv_w_0", "input_1", "train_1", "a.b", "a_2", "block.2", "block.n2_2"]
    assert max_diff(path, r) <= TOL


def test_unsupported_ops_are_located_errors_and_nothing_is_written(tmp_path):
    nodes = [N("Relu", ["x"], ["r"], name="act"), N("GlobalMaxPool", ["r"], ["g"], name="pool"),
             N("Erf", ["g"], ["y"], name="erf")]
    path = tmp_path / "bad.onnx"
    import onnx

    onnx.save_model(model(nodes, [3, 4, 4], "y"), str(path))
    with pytest.raises(SpecErrors) as info:
        import_onnx(path, tmp_path / "bad.yaml")
    assert str(info.value).splitlines() == [
        f"{path}: error: node 'pool' (GlobalMaxPool): archc has no op for ONNX's GlobalMaxPool — "
        "archc would need a global max pool op",
        f"{path}: error: node 'erf' (Erf): archc has no op for ONNX's Erf — archc would need gelu as one op: "
        "re-export at opset 20, where Gelu is an ONNX op"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx"]
    result = CliRunner().invoke(main, ["import", str(path), "-o", str(tmp_path / "bad.yaml")])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "2 errors"


def test_cli_import_writes_spec_and_weights(tmp_path):
    import onnx

    nodes = [N("Gemm", ["x", "fc.weight", "fc.bias"], ["y"], transB=1)]
    onnx.save_model(model(nodes, [4], "y", [tensor("fc.weight", 3, 4), tensor("fc.bias", 3)]), str(tmp_path / "fc.onnx"))
    result = CliRunner().invoke(main, ["import", str(tmp_path / "fc.onnx"), "-o", str(tmp_path / "fc.yaml"),
                                       "--weights-out", str(tmp_path / "w.pt")])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"wrote {tmp_path / 'fc.yaml'}: 1 layers from 1 ONNX nodes, 15 parameters, 12 MACs, output [3]",
        f"wrote {tmp_path / 'w.pt'}: 2 tensors"]
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "fc.yaml"), "--format", "json"])
    assert result.exit_code == 0 and '"total_params": 15' in result.stdout
    result = CliRunner().invoke(main, ["import", str(tmp_path / "nope.onnx"), "-o", str(tmp_path / "x.yaml")])
    assert result.exit_code == 2 and result.stderr == f"archc: error: MODEL: no such file: {tmp_path / 'nope.onnx'}\n"
