"""Helpers for the importer's tests: small ONNX graphs written with onnx.helper, and the
check that an imported spec computes what onnxruntime computes on the original file."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import archc
from archc.importers import import_onnx

RNG = np.random.default_rng(0)


def tensor(name, *shape, scale=0.5):
    return numpy_helper.from_array((RNG.standard_normal(shape) * scale).astype(np.float32), name)


def ints(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def model(nodes, input_shape, output, initializers=(), opset=20, batch="batch", input_name="x",
          input_type=TensorProto.FLOAT):
    """A model of ``nodes`` reading ``input_name`` [batch, *input_shape], returning ``output``."""
    x = helper.make_tensor_value_info(input_name, input_type, [batch, *input_shape])
    y = helper.make_tensor_value_info(output, TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "g", [x], [y], list(initializers))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = min(m.ir_version, 10)
    return m


def run_onnx(path, x):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})


def random_input(graph, batch, seed=0):
    rng = np.random.default_rng(seed)
    if graph.input_dtype == "int64":
        return rng.integers(0, graph.id_limit(), (batch, *graph.input_shape)).astype(np.int64)
    return rng.standard_normal((batch, *graph.input_shape)).astype(np.float32)


def max_diff(onnx_path, result, batches=(1, 3)) -> float:
    """Largest |archc − onnxruntime| over random inputs at each batch size, archc's model
    built from the written spec and loaded with the written weights (archc.load_weights)."""
    import torch

    model = archc.build(str(result.spec_path), seed=0).eval()
    report = archc.load_weights(model, str(result.weights_path))
    assert report.ok
    worst = 0.0
    for batch in batches:
        x = random_input(result.graph, batch, seed=batch)
        expected = run_onnx(onnx_path, x)
        with torch.no_grad():
            got = model(torch.from_numpy(x))
        got = list(got) if isinstance(got, (tuple, list)) else [got]
        for e, g in zip(expected, got):
            assert tuple(e.shape) == tuple(g.shape)
            worst = max(worst, float(np.abs(e - g.numpy()).max()))
    return worst


def imported(m, tmp_path, name="m", **save):
    """Save ``m`` to ``tmp_path/name.onnx`` and import it beside; (onnx path, result)."""
    path = tmp_path / f"{name}.onnx"
    onnx.save_model(m, str(path), **save)
    return path, import_onnx(path, tmp_path / f"{name}.yaml")
