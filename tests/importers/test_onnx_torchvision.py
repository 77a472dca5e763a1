"""torchvision models (weights=None, random) exported with torch.onnx import with the
counts torchvision's modules have and compute the same outputs (issue 10.3).

Counts: torch.onnx's optimiser folds every batch norm that follows a convolution into it,
and drops biases that are all zeros (vgg16 initialises its biases so), so the expected
parameters are torchvision's minus those batch norms' and zero biases (the batch norms'
buffers vanish too; densenet's pre-activation batch norms stay). Sizes: 64×64 inputs where the
network ends in a global pool; alexnet and vgg16 at 224×224, where their adaptive pools
are the identity (at other sizes torch exports them as GatherND, which archc cannot
import yet). num_classes=10 keeps the heads small; exports take seconds each."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest

import archc
from archc.importers import import_onnx

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
pytest.importorskip("onnxscript")

SIZES = {"alexnet": 224, "vgg16": 224, "resnet18": 64, "resnet50": 64, "googlenet": 64,
         "mobilenet_v2": 64, "densenet121": 64}


def folded(model) -> tuple[int, int]:
    """(params, buffers) of ``model`` without the batch norms that follow a convolution
    and without all-zero biases of convolutions and linear layers."""
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for b in model.buffers())
    previous = None
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)) and module.bias is not None \
                and not module.bias.any():
            params -= module.bias.numel()
        if isinstance(module, torch.nn.BatchNorm2d) and isinstance(previous, torch.nn.Conv2d):
            params -= sum(p.numel() for p in module.parameters())
            buffers -= sum(b.numel() for b in module.buffers())
        if not isinstance(module, (torch.nn.Sequential,)) and not list(module.children()):
            previous = module
    return params, buffers


@pytest.mark.parametrize("name", list(SIZES))
def test_torchvision_model_imports_with_its_counts_and_outputs(name, tmp_path):
    extra = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None, num_classes=10, **extra).eval()
    size = SIZES[name]
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (torch.randn(2, 3, size, size),), dynamo=True, input_names=["input"],
                                    dynamic_shapes=({0: torch.export.Dim("batch", min=1)},), verbose=False)
    program.save(str(tmp_path / f"{name}.onnx"))
    r = import_onnx(tmp_path / f"{name}.onnx", tmp_path / f"{name}.yaml")
    s = archc.load(str(tmp_path / f"{name}.yaml")).summary
    assert (s.total_params, s.buffers) == folded(model)
    built = archc.build(str(tmp_path / f"{name}.yaml"), seed=1).eval()
    assert archc.load_weights(built, str(r.weights_path)).ok
    from onnx_cases import run_onnx

    for batch in (1, 3):
        x = np.random.default_rng(batch).standard_normal((batch, 3, size, size)).astype(np.float32)
        with torch.no_grad():
            ours, theirs = built(torch.from_numpy(x)), model(torch.from_numpy(x))
        # the imported spec computes the ONNX file's values; the file differs from
        # torchvision's module by the float32 rounding of the folded batch norms
        assert np.abs(run_onnx(tmp_path / f"{name}.onnx", x)[0] - ours.numpy()).max() <= 1e-5
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
