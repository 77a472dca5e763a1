"""torchvision models (weights=None, random) exported with torch.onnx import with the
counts torchvision's modules have and compute the same outputs (issue 10.3).

Exporters: mobilenet_v2 and alexnet go through torch.onnx's dynamo exporter (torch's
default), the others through the TorchScript exporter (``dynamo=False``: under a few seconds each where
dynamo takes 10 to 40 s on two cores); the importer reads both. One export with a dynamic
batch serves batch 1 and 3.

Counts: both exporters fold every batch norm that follows a convolution into it (the batch
norms' buffers vanish; densenet's pre-activation batch norms stay). The TorchScript
exporter gives the convolution a bias for the folded shift when it had none; the dynamo
exporter's optimiser drops biases that are all zeros (the folded shift of a fresh batch
norm, and vgg16's zero-initialised biases); convnext_tiny's layer norms stay. Sizes: 32×32 inputs, the smallest these
networks take; alexnet at 64×64, where its features are 1×1 and its adaptive pool makes
them 6×6 (the TorchScript exporter refuses that; dynamo writes it as GatherND, imported as
adaptive_avgpool2d); vgg16 at 224×224, where its adaptive pool is the identity (its 1×1 ->
7×7 at small sizes is the zoo round trip's and alexnet's case: one dynamo export of vgg16
here would take a minute). num_classes=10 keeps the heads small."""

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

SIZES = {"alexnet": 64, "vgg16": 224, "resnet18": 32, "resnet50": 32, "googlenet": 32,
         "mobilenet_v2": 32, "densenet121": 32, "efficientnet_b0": 32, "convnext_tiny": 32}
DYNAMO = {"mobilenet_v2", "alexnet"}


def folded(model, dynamo: bool) -> tuple[int, int]:
    """(params, buffers) of ``model`` as the exporter writes it (module docstring); which
    batch norm reads a convolution's output is read from the data flow (torch.fx)."""
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for b in model.buffers())
    traced = torch.fx.symbolic_trace(model)
    modules = dict(traced.named_modules())
    for node in traced.graph.nodes:
        module = modules.get(node.target) if node.op == "call_module" else None
        source = node.args[0] if node.args else None
        conv = modules.get(source.target) if getattr(source, "op", None) == "call_module" else None
        if isinstance(module, torch.nn.BatchNorm2d) and isinstance(conv, torch.nn.Conv2d):
            params -= sum(p.numel() for p in module.parameters())
            buffers -= sum(b.numel() for b in module.buffers())
            if not dynamo and conv.bias is None:
                params += conv.out_channels  # the folded shift becomes its bias
    if dynamo:
        params -= sum(m.bias.numel() for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
                      and m.bias is not None and not m.bias.any())
    return params, buffers


def export(model, size, path, dynamo: bool) -> None:
    x = (torch.randn(2, 3, size, size),)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            program = torch.onnx.export(model, x, dynamo=True, input_names=["input"], verbose=False,
                                        dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
            program.save(str(path))
        else:
            torch.onnx.export(model, x, str(path), dynamo=False, input_names=["input"],
                              dynamic_axes={"input": {0: "batch"}})


@pytest.mark.parametrize("name", list(SIZES))
def test_torchvision_model_imports_with_its_counts_and_outputs(name, tmp_path):
    from onnx_cases import run_onnx

    extra = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None, num_classes=10, **extra).eval()
    size, path = SIZES[name], tmp_path / f"{name}.onnx"
    export(model, size, path, name in DYNAMO)
    r = import_onnx(path, tmp_path / f"{name}.yaml")
    s = archc.load(str(tmp_path / f"{name}.yaml")).summary
    assert (s.total_params, s.buffers) == folded(model, name in DYNAMO)
    built = archc.build(str(tmp_path / f"{name}.yaml"), seed=1).eval()
    assert archc.load_weights(built, str(r.weights_path)).ok
    for batch in (1, 3):
        x = np.random.default_rng(batch).standard_normal((batch, 3, size, size)).astype(np.float32)
        with torch.no_grad():
            ours, theirs = built(torch.from_numpy(x)), model(torch.from_numpy(x))
        # the imported spec computes the ONNX file's values: within 1e-5, relative to the
        # logits' size beyond 1 (resnet50's reach 18: onnxruntime's and torch's float32
        # sums in another order differ by up to 1.8e-5 there, 1e-6 of the value)
        expected = run_onnx(path, x)[0]
        assert np.abs(expected - ours.numpy()).max() <= 1e-5 * max(1.0, np.abs(expected).max())
        # the file differs from torchvision's module by the float32 rounding of the folded
        # batch norms
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_torchvision_vit_imports_with_attention_layers(dynamo, tmp_path):
    """torchvision's VisionTransformer (vit_b_16's code at a small size: 32×32 images,
    16×16 patches, 2 layers of width 64 with 2 heads) exported by either exporter: its
    nn.MultiheadAttention (sequence-first inside) becomes archc's attention, the class token
    and the position embedding archc's own layers, with torchvision's counts, torch's MACs
    and torchvision's outputs. The zero-initialised tensors (class token, biases, the head)
    are drawn at random first, so that the outputs say something and the exporter keeps every
    bias. MACs: those of specs/vit_b_16.yaml at that size (torch's flop counter does not see
    nn.MultiheadAttention's fused inference kernel). The TorchScript exporter keeps the
    sequence-first reshapes by sizes computed from the batch: recognised by evaluation."""
    from onnx_cases import run_onnx
    from torchvision.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    model = VisionTransformer(image_size=32, patch_size=16, num_layers=2, num_heads=2, hidden_dim=64,
                              mlp_dim=128, num_classes=10).eval()
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.normal_(0, 0.2)
    path = tmp_path / "vit.onnx"
    export(model, 32, path, dynamo=dynamo)
    r = import_onnx(path, tmp_path / "vit.yaml")
    graph = archc.load(str(tmp_path / "vit.yaml"))
    assert [(n.op, n.attrs["heads"]) for n in graph.nodes if n.op == "attention"] == [("attention", 2)] * 2
    assert [n.op for n in graph.nodes if n.op in ("class_token", "pos_embedding")] == ["class_token", "pos_embedding"]
    s = graph.summary
    assert (s.total_params, s.buffers) == (sum(p.numel() for p in model.parameters()), 0)
    small = {"input": [3, 32, 32], "patch": 16, "layers": 2, "width": 64, "mlp": 128, "heads": 2, "classes": 10}
    hand_written = archc.load(str(archc.zoo.zoo_dir() / "vit_b_16.yaml"), overrides=small).summary
    assert (s.macs, s.total_params, s.output_shapes) == (hand_written.macs, hand_written.total_params, [(10,)])
    built = archc.build(graph, seed=1).eval()
    assert archc.load_weights(built, str(r.weights_path)).ok
    for batch in (1, 3):
        x = np.random.default_rng(batch).standard_normal((batch, 3, 32, 32)).astype(np.float32)
        with torch.no_grad():
            ours, theirs = built(torch.from_numpy(x)), model(torch.from_numpy(x))
        expected = run_onnx(path, x)[0]
        assert np.abs(expected - ours.numpy()).max() <= 1e-5 * max(1.0, np.abs(expected).max())
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
