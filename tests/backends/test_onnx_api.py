"""The ONNX backend's Python API and its parts: lazy imports, the target check, names and
metadata in the file, checks that catch a wrong file, and the provider choice."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import archc
from archc.backends.onnx import target
from archc.backends.onnx.check import compare_outputs, compare_shapes

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
torch = pytest.importorskip("torch")

RESNET_SMALL = {"input": [3, 32, 32], "classes": 10, "width": 8, "depths": [1, 1, 1, 1]}


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "resnet18.onnx"
    return archc.export_onnx("resnet18", path, overrides=RESNET_SMALL)


def test_importing_archc_imports_neither_torch_nor_onnx():
    code = ("import sys, archc; archc.loads('archc: 1\\ninput: [4]\\nlayers:\\n  - relu\\n'); "
            "import archc.backends.onnx.target; "
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'onnxscript') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_opset_range_is_the_exporters():
    from onnxscript.version_converter import _version_converter as vc

    assert (target.OPSET_MIN, target.OPSET_MAX) == (vc.SUPPORTED_MIN_ONNX_OPSET, vc.SUPPORTED_MAX_ONNX_OPSET)


def test_weights_over_two_gib_need_external_data():
    graph = archc.loads("archc: 1\ninput: [20000]\nlayers:\n  - linear: {out: 30000}\n")  # 600M weights
    errors = target.target_errors(graph, single_file=True)
    assert [e.message for e in errors] == ["the weights take 2.24 GiB, more than one ONNX file can hold (2 GiB)"]
    assert errors[0].fix == "export with --external-data"
    assert target.target_errors(graph, single_file=False) == []


def test_values_and_nodes_carry_the_specs_names(resnet):
    model = onnx.load(str(resnet.path))
    values = {o for n in model.graph.node for o in n.output}
    graph = resnet.graph
    # a batch norm folded into its convolution: the Conv computes the norm's value
    assert "layer1.0.bn1" in values and "layer1.0.conv1" not in values
    conv = next(n for n in model.graph.node if n.output[0] == "layer1.0.bn1")
    assert (conv.op_type, conv.name) == ("Conv", "layer1.0.bn1/Conv")
    assert [o.name for o in model.graph.output] == graph.outputs == ["fc"]
    # every name the export reports is a value of the file and a node of the spec
    assert resnet.names and all(v in values and graph.node(s) for s, v in resnet.names.items())
    # no exporter stack traces (with this machine's paths) left in the file
    assert all(len(n.metadata_props) == 0 for n in model.graph.node)
    assert b"site-packages" not in resnet.path.read_bytes()


def test_metadata(resnet):
    meta = archc.OnnxModel(resnet.path, provider="cpu").metadata
    assert meta["version"] == archc.__version__
    assert meta["spec.name"] == "resnet18" and meta["spec.hash"] == resnet.graph.spec_hash
    assert meta["inputs"] == [{"name": "input", "shape": ["batch", 3, 32, 32], "layout": "NCHW"}]
    assert meta["outputs"] == [{"name": "fc", "shape": ["batch", 10], "layout": "NC", "op": "linear"}]
    assert meta["task"] == "classification"


def test_resnet_graph_is_what_torch_onnx_makes_of_torchvision(resnet):
    """Same op types and counts as torch.onnx's export of the same torchvision layout."""
    tv = pytest.importorskip("torchvision.models")
    ref = tv.resnet.ResNet(tv.resnet.BasicBlock, [1, 1, 1, 1], num_classes=10).eval()
    program = torch.onnx.export(ref, (torch.randn(2, 3, 32, 32),), dynamo=True, verbose=False,
                                dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
    counts = {}
    for node in program.model_proto.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    ours = dict(resnet.op_counts)
    assert ours.pop("Reshape", 0) == counts.pop("Flatten", 0) + counts.pop("Reshape", 0)
    assert ours.pop("ReduceMean", 0) == counts.pop("GlobalAveragePool", 0) + counts.pop("ReduceMean", 0)
    assert ours == counts


def test_checks_catch_a_wrong_file(resnet, tmp_path):
    graph = resnet.graph
    model = archc.build(graph, seed=0).eval()
    assert all(r.ok for r in compare_outputs(resnet.path, model, graph, True, 1))
    with torch.no_grad():
        model.fc.bias += 1e-3  # torch now differs from the file by 1e-3
    runs = compare_outputs(resnet.path, model, graph, True, 1)
    assert [r.ok for r in runs] == [False, False] and 0.9e-3 < runs[0].max_abs < 1.1e-3
    wrong = dict(resnet.names, **{"layer2.0.relu_2": resnet.names["layer1.0.relu_2"]})
    compared, bad = compare_shapes(resnet.path, graph, wrong, True, 1)
    assert bad == ["layer2.0.relu_2: ONNX ['batch', 8, 8, 8], archc ['batch', 16, 4, 4]"]


def test_onnx_model_runs_and_checks_its_input(resnet):
    m = archc.OnnxModel(resnet.path, provider="cpu")
    x = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
    assert m.run(x).shape == (4, 10) and m.input_shape == ["batch", 3, 32, 32]
    with pytest.raises(archc.backends.onnx.OnnxError, match=r"input shape \[4, 3, 32\] does not fit"):
        m.run(x[:, :, :, 0])


def test_auto_provider_says_one_line_and_nothing_else(resnet):
    """Where CUDA is listed but cannot start, one note and no onnxruntime error wall."""
    code = ("import archc, numpy as np; m = archc.OnnxModel(%r); print(m.provider); print(m.note)"
            % str(resnet.path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    provider, note = (out.stdout.splitlines() + [""])[:2]
    assert "onnxruntime" not in out.stderr.lower() and "error" not in out.stderr.lower(), out.stderr
    import onnxruntime as ort

    if provider == "CPUExecutionProvider" and "CUDAExecutionProvider" in ort.get_available_providers():
        assert note == (
            "onnxruntime: CUDA is not usable here (no GPU, or no CUDA/cuDNN libraries); running on CPU")
    else:
        assert note == ""
