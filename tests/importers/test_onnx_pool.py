"""Adaptive average pooling that the dynamo exporter writes as GatherND (an output size that
does not divide the input) imports as archc's adaptive_avgpool2d
(archc/importers/onnx_fold_pool.py), and a GatherND that is not that stays an error.

The windows in the test are written from the definition (output i of n -> m averages
floor(i·n/m) .. ceil((i+1)·n/m) - 1), independently of the importer's; each dynamo export
takes 5-10 s on two cores, so one module serves two cases."""

from __future__ import annotations

import contextlib
import io
import math
import warnings

import numpy as np
import onnx
import pytest

from archc.errors import SpecErrors
from onnx_cases import imported, max_diff

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def export(size, out, path):
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.AdaptiveAvgPool2d(out)).eval()
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(2, 3, size, size),), dynamo=True, input_names=["input"],
                          verbose=False, dynamic_shapes=({0: torch.export.Dim("batch", min=1)},)).save(str(path))
    return onnx.load(str(path))


def windows(n, m):
    return [list(range(i * n // m, math.ceil((i + 1) * n / m))) for i in range(m)]


@pytest.fixture(scope="module")
def uneven(tmp_path_factory):
    """3×3 -> 7×7: windows of one and two positions, the short ones masked (Where)."""
    path = tmp_path_factory.mktemp("pool") / "uneven.onnx"
    return export(3, 7, path)


def test_uneven_windows_import_as_one_adaptive_pool(uneven, tmp_path):
    assert {"GatherND", "Where"} <= {n.op_type for n in uneven.graph.node}
    path, r = imported(uneven, tmp_path)
    assert r.text.split("layers:\n")[1].splitlines() == [
        "  - conv2d: {out: 4, kernel: 3, padding: 1, id: n0}",
        "  - adaptive_avgpool2d: {size: 7, id: n1}"]
    assert max_diff(path, r) <= 1e-5
    assert windows(3, 7)[:3] == [[0], [0], [0, 1]]  # what the import had to reproduce


def test_two_output_sizes(tmp_path):
    # 7×7 -> (3, 4): windows of 3 positions (rows), 2 and 3 (columns); a plain mean is not it
    path, r = imported(export(7, (3, 4), tmp_path / "m.onnx"), tmp_path)
    assert "  - adaptive_avgpool2d: {size: [3, 4], id: n1}" in r.text
    assert max_diff(path, r) <= 1e-5
    assert windows(7, 4) == [[0, 1], [1, 2, 3], [3, 4, 5], [5, 6]]


def gather_index(m):
    node = next(n for n in m.graph.node if n.op_type == "GatherND")
    return next(i for i in m.graph.initializer if i.name == node.input[1])


@pytest.mark.parametrize("change", ["index", "mask"])
def test_a_gather_that_is_not_torchs_windows_stays_an_error(uneven, change, tmp_path):
    m = onnx.ModelProto()
    m.CopyFrom(uneven)
    if change == "index":  # one window shifted by a position: a valid gather, not a pool
        index = gather_index(m)
        values = onnx.numpy_helper.to_array(index).copy()
        values[1, 0, 0, 0, 0] = 2
        index.CopyFrom(onnx.numpy_helper.from_array(values, index.name))
    else:  # the indices are torch's, but the short windows are no longer masked
        where = next(n for n in m.graph.node if n.op_type == "Where")
        mask = next(i for i in m.graph.initializer if i.name == where.input[0])
        mask.CopyFrom(onnx.numpy_helper.from_array(np.zeros_like(onnx.numpy_helper.to_array(mask)), mask.name))
    with pytest.raises(SpecErrors) as info:
        imported(m, tmp_path)
    assert "(GatherND): archc has no op for ONNX's GatherND — archc would need an op for this gather: archc " \
           "imports GatherND only as torch's adaptive average pooling" in str(info.value)
