"""archc.from_torch and ``archc import torchvision:NAME`` (issue 10.2): torchvision models
(weights=None, a random state; nothing downloads) traced into specs whose tensors carry
torchvision's state_dict keys, so the module's own state_dict loads strictly by name and
the outputs are the module's. References: the module's own tensors (sum of numel), torch's
flop counter for the MACs (tests/macs_reference.py), torchvision's forward for the outputs.

Sizes: 64×64 (every network here accepts it; alexnet's and vgg16's adaptive pools then
spread a small map); num_classes=10 keeps the heads small. Each model is built once."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

import archc
from archc.cli import main
from archc.errors import SpecErrors
from archc.zoo import zoo_dir

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
from macs_reference import torch_macs  # noqa: E402

MODELS = ["alexnet", "vgg16", "resnet18", "resnet50", "googlenet", "mobilenet_v2", "densenet121",
          "efficientnet_b0",
          "squeezenet1_0",  # its output is an unnamed flatten: no `outputs:` line
          "shufflenet_v2_x0_5"]  # the channel shuffle (view, transpose, view) and x.chunk(2, dim=1)


def _model(name: str):
    extra = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None, num_classes=10, **extra).eval()
    with torch.no_grad():  # batch norms with statistics of their own, so that they matter
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
    return model


@pytest.mark.parametrize("name", MODELS)
def test_torchvision_model_imports_with_its_names_counts_and_outputs(name):
    model = _model(name)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    text = archc.from_torch(model, x[:1], name=name)
    summary = archc.load(text=text).summary
    assert summary.total_params == sum(p.numel() for p in model.parameters())
    assert summary.buffers == sum(b.numel() for b in model.buffers())
    assert summary.macs == torch_macs(model, x)
    built = archc.build(text=text, seed=3).eval()
    assert list(built.state_dict()) == list(model.state_dict())  # the same keys, in the same order
    report = archc.load_weights(built, model.state_dict())
    # every tensor by its name (batch norms' num_batches_tracked by load_weights' counter rule)
    assert report.ok and report.complete and report.count("order") == 0
    assert report.count("name") + report.count("counter") == len(model.state_dict())
    with torch.no_grad():
        assert (built(x) - model(x)).abs().max().item() <= 1e-5


def _lines(text: str) -> int:
    return len(text.splitlines())


def test_resnet50_from_the_cli_is_one_block_and_validates_with_the_published_counts(tmp_path):
    runner = CliRunner()
    out = tmp_path / "r50.yaml"
    result = runner.invoke(main, ["import", "torchvision:resnet50", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote {out}: 175 layers from 177 traced nodes,")
    assert "25,557,032 parameters, 4.09 G MACs, output [1000]" in result.output
    text = out.read_text()
    hand_written = (zoo_dir() / "resnet50.yaml").read_text()
    assert _lines(text) <= 2 * _lines(hand_written)
    # one bottleneck block; the projection shortcut is conditional; the stages repeat it
    assert re.findall(r"^  (\w+):$", text, re.M) == ["bottleneck"]
    assert text.count("when: $has_downsample") == 2
    assert [int(n) for n in re.findall(r"repeat: (\d+), id: layer\d", text)] == [3, 4, 6, 3]
    validated = runner.invoke(main, ["validate", str(out)])
    assert validated.exit_code == 0, validated.output
    assert "25,557,032" in validated.output and "4.09 G" in validated.output


class Block(torch.nn.Module):
    """A residual block whose projection exists only where the channels change."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = torch.nn.Conv2d(cin, cout, 3, padding=1)
        self.act = torch.nn.ReLU()
        self.proj = torch.nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        y = self.act(self.conv(x))
        return y + (self.proj(x) if self.proj is not None else x)


class Stages(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 4, 1)
        self.stage = torch.nn.Sequential(Block(4, 8), Block(8, 8), Block(8, 8))

    def forward(self, x):
        return self.stage(self.stem(x))


def test_a_class_used_several_times_is_one_block_with_when_and_repeat():
    text = archc.from_torch(Stages(), torch.randn(1, 3, 8, 8))
    assert "blocks:\n  block:\n    args: {has_proj: false}\n" in text
    assert "      - add: {from: [act, proj]}\n" in text  # y + x where the projection is skipped
    assert "  - block: {has_proj: $index == 0, repeat: 3, id: stage}\n" in text
    assert "      - conv2d: {from: input, out: 8, kernel: 1, when: $has_proj, id: proj}\n" in text


def test_unmapped_modules_and_functions_are_named_by_path_and_type():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.PReLU())

        def forward(self, x):
            return torch.exp(self.body(x))

    with pytest.raises(SpecErrors) as info:
        archc.from_torch(Net(), torch.randn(1, 3, 8, 8))
    assert str(info.value).splitlines() == [
        "torch module Net: error: body.1: archc has no op for torch.nn.modules.activation.PReLU — "
        "archc would need an op computing it (`archc ops` lists those archc has)",
        "torch module Net: error: exp: archc has no op for exp() — "
        "archc would need an op computing it (`archc ops` lists those archc has)"]


class Scaled(torch.nn.Module):
    """fc's output times a tensor that is not in the state_dict: a constant forward makes, a
    plain tensor attribute, or a non-persistent buffer. fx makes each a buffer of its graph
    module; imported, it became a layer_scale whose weight module.state_dict() lacks."""

    def __init__(self, how):
        super().__init__()
        self.fc, self.how = torch.nn.Linear(4, 4), how
        if how == "attribute":
            self.scale = torch.full((4,), 2.0)
        elif how == "non-persistent":
            self.register_buffer("scale", torch.full((4,), 2.0), persistent=False)

    def forward(self, x):
        return self.fc(x) * (torch.full((4,), 2.0) if self.how == "constant" else self.scale)


@pytest.mark.parametrize("how, where, message", [
    ("constant", "_tensor_constant0", "forward makes a tensor constant (torch.tensor(...) in forward)"),
    ("attribute", "scale", "forward reads a tensor attribute that is neither a parameter nor a persistent buffer"),
    ("non-persistent", "scale", "forward reads a tensor attribute that is neither a parameter nor a persistent "
                                "buffer"),
])
def test_a_tensor_outside_the_state_dict_is_a_located_error(how, where, message):
    with pytest.raises(SpecErrors) as info:
        archc.from_torch(Scaled(how), torch.randn(1, 4))
    assert str(info.value).splitlines() == [
        f"torch module Scaled: error: {where}: {message} — archc would need the tensor as a module's parameter "
        "or buffer (a layer owns its tensors)"]


def test_arithmetic_with_a_number_is_named():
    class Doubled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(x) * 2

    with pytest.raises(SpecErrors) as info:
        archc.from_torch(Doubled(), torch.randn(1, 4))
    assert str(info.value) == ("torch module Doubled: error: mul: it applies multiply to a tensor and a constant — "
                               "archc would need multiply of two computed tensors")


def test_an_example_forward_cannot_take_is_a_located_error():
    linear = torch.nn.Sequential(torch.nn.Linear(4, 4))

    class Two(torch.nn.Module):
        def forward(self, x, y):
            return x + y

    need = "archc would need an example batch of the shape and dtype forward takes"
    for module, example, message in [
        (linear, torch.randn(4), "the example input is a 1-D tensor, not a batch — one tensor [batch, ...] "
                                 "forward takes (torch.randn(1, 3, 224, 224))"),
        (linear, [torch.randn(1, 4)], "the example input is list, not a batch — one tensor [batch, ...] "
                                      "forward takes (torch.randn(1, 3, 224, 224))"),
        (linear, torch.randn(1, 5), "Sequential: forward fails on the example input (RuntimeError: mat1 and mat2 "
                                    f"shapes cannot be multiplied (1x5 and 4x4)) — {need}"),
        (linear, torch.ones(1, 4, dtype=torch.int64), "Sequential: forward fails on the example input "
         f"(RuntimeError: mat1 and mat2 must have the same dtype, but got Long and Float) — {need}"),
        (Two(), torch.randn(1, 4), "Two: forward takes 2 inputs (x, y) — archc would need a forward of one "
                                   "tensor (an archc spec has one input)"),
    ]:
        with pytest.raises(SpecErrors) as info:  # not torch's RuntimeError, not 'a bug in archc'
            archc.from_torch(module, example)
        assert str(info.value) == f"torch module {type(module).__name__}: error: {message}"


def test_a_forward_returning_nothing_or_its_input_is_said_so():
    class Returns(torch.nn.Module):
        def __init__(self, what):
            super().__init__()
            self.fc, self.what = torch.nn.Linear(4, 4), what

        def forward(self, x):
            if self.what == "input":
                return x
            self.fc(x)
            return None

    for what, message in [("none", "forward returns no tensor — a forward that returns its result"),
                          ("input", "forward computes nothing archc keeps (its output is its input)")]:
        with pytest.raises(SpecErrors) as info:
            archc.from_torch(Returns(what), torch.randn(1, 4))
        assert str(info.value) == f"torch module Returns: error: {message}"


def test_a_forward_neither_fx_nor_export_can_trace_is_a_located_error():
    """Control flow on a tensor's value: fx has no bool for a Proxy, export none for a fake value."""
    class Branchy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(x) if x.sum() > 0 else x

    with pytest.raises(SpecErrors) as info:
        archc.from_torch(Branchy(), torch.randn(1, 4))
    message = str(info.value)
    assert message.startswith("torch module Branchy: error: Branchy: torch.fx cannot trace its forward (TraceError: ")
    assert "; torch.export cannot either (GuardOnDataDependentSymNode: " in message
    assert message.endswith("— archc would need a forward without control flow that depends on tensor values")


class ShapeDependent(torch.nn.Module):
    """Python control flow on a shape: torch.fx stops (a Proxy has no truth value),
    torch.export runs it on fake tensors whose shapes are known."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.stage = torch.nn.Sequential(Block(4, 8), Block(8, 8), Block(8, 8))
        self.head = torch.nn.Linear(8, 5)

    def forward(self, x):
        x = self.bn(self.stem(x))
        if x.shape[-1] > 4:
            x = torch.nn.functional.max_pool2d(x, 2)
        x = self.stage(x)
        return self.head(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))


def _same_module(text, module, x):
    built = archc.build(text=text, seed=3).eval()
    theirs = set(module.state_dict())  # a bare tensor X (ViT's class_token) is archc's X.weight
    assert {k.removesuffix(".weight") if k.removesuffix(".weight") in theirs - {k} else k
            for k in built.state_dict()} == theirs
    report = archc.load_weights(built, module.state_dict())
    assert report.ok and report.complete and report.count("order") == 0
    with torch.no_grad():
        assert (built(x) - module(x)).abs().max().item() <= 1e-5


def test_a_forward_fx_cannot_trace_imports_through_torch_export():
    net = ShapeDependent().eval()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.5, 0.5)
        net.bn.running_var.uniform_(0.5, 1.5)
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    text = archc.from_torch(net, x[:1])
    assert text.startswith("# Imported from torch module ShapeDependent by archc.from_torch (torch.export): ")
    # the hierarchy survives export: the same block, when and repeat as through fx
    assert "  - block: {has_proj: $index == 0, repeat: 3, id: stage}\n" in text
    assert "  - maxpool2d: {kernel: 2, stride: 2}\n" in text  # the branch taken at 8×8
    _same_module(text, net, x)


def _small_vit():
    """torchvision's VisionTransformer class (ViT-B/16's modules) at a size export traces fast."""
    torch.manual_seed(0)
    return torchvision.models.VisionTransformer(image_size=32, patch_size=16, num_layers=2, num_heads=2,
                                                hidden_dim=32, mlp_dim=64, num_classes=10).eval()


@pytest.mark.parametrize("name", ["resnet18", "vit"])
def test_torchvision_models_import_the_same_through_torch_export(name, monkeypatch):
    """export's aten graph read through the op table: module calls (ResNet's batch norms and
    their counters, ViT's attention), aten functions (add, cat, select) and lifted tensors
    (ViT's class token) give what the fx path gives — but for ViT's patch count, which
    export has as a number (fx saw it computed from the input's shape: -1)."""
    from archc.importers import torch_trace

    model = _small_vit() if name == "vit" else _model(name)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    through_fx = archc.from_torch(model, x[:1], name=name).splitlines()

    def fx_fails(module, example):
        raise torch_trace.TraceFailed(type(module).__name__, "fx refused", "")

    monkeypatch.setattr(torch_trace, "trace", fx_fails)
    through_export = archc.from_torch(model, x[:1], name=name).splitlines()
    assert "(torch.export)" in through_export[0]
    differ = [(a, b) for a, b in zip(through_fx[1:], through_export[1:]) if a != b]
    assert len(through_fx) == len(through_export)
    assert differ == ([("  - reshape: {shape: [32, -1]}", "  - reshape: {shape: [32, 4]}")] if name == "vit" else [])
    _same_module("\n".join(through_export), model, x)


def test_a_sequential_root_gets_valid_ids_and_loads_by_order():
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    text = archc.from_torch(net, torch.randn(1, 4))
    assert "# Renamed (not archc ids; these pair by order): 0 -> n0, 1 -> n1, 2 -> n2" in text
    built = archc.build(text=text).eval()
    report = archc.load_weights(built, net.state_dict())
    assert report.ok and report.complete
    x = torch.randn(3, 4)
    with torch.no_grad():
        assert torch.equal(built(x), net(x))


def test_from_torch_is_public_and_unknown_torchvision_names_are_said():
    assert "from_torch" in archc.__all__ and "from_torch" in dir(archc)
    result = CliRunner().invoke(main, ["import", "torchvision:resnet5", "-o", "x.yaml"])
    assert result.exit_code == 1
    assert result.output.startswith("torchvision:resnet5: error: torchvision has no classification model "
                                    "'resnet5' — did you mean `resnet50`")
    # no close name: where torchvision lists its models (not `archc ops`, which lists op kinds)
    result = CliRunner().invoke(main, ["import", "torchvision:nosuchmodel", "-o", "x.yaml"])
    assert result.exit_code == 1
    assert result.output.startswith("torchvision:nosuchmodel: error: torchvision has no classification model "
                                    "'nosuchmodel' — torchvision.models.list_models(module=torchvision.models) "
                                    "lists its ")


# ViT-B/16 and ConvNeXt-T: nn.MultiheadAttention, the tensors forward reads directly (ViT's
# class_token and encoder.pos_embedding, ConvNeXt's layer_scale and LayerNorm2d's
# F.layer_norm weights), permutes and x[:, 0]. 32×32 is the smallest input both take (ViT:
# image_size=32, 2×2 patches + the class token = 5 tokens; ConvNeXt: /32 down to 1×1).
# torchvision starts the layer scales at 1e-6 and ViT's head at zeros, which would hide a
# misplaced tensor: every tensor gets a random offset first.
BARE = {"vit_b_16": 2, "convnext_tiny": 18}  # class_token, encoder.pos_embedding; a layer scale per block


def _offset_model(name: str):
    torch.manual_seed(0)
    extra = {"image_size": 32} if name == "vit_b_16" else {}
    model = torchvision.models.get_model(name, weights=None, num_classes=10, **extra).eval()
    noise = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=noise), alpha=0.02)
    return model


def _reference_macs(name: str, model, x) -> int:
    """torch's flop counter; for ViT in training mode (dropouts 0, the same function): in eval
    nn.MultiheadAttention takes a fused path (torch._native_multi_head_attention) the counter
    does not see on the CPU. What training mode adds must be the attention by formula: per
    layer the q, k, v and output projections 4·L·D² and Q·Kᵀ, A·V 2·L²·D (L = 5, D = 768)."""
    if name != "vit_b_16":
        return torch_macs(model, x)
    seen_in_eval = torch_macs(model, x)
    try:
        full = torch_macs(model.train(), x)
    finally:
        model.eval()
    tokens, width, layers = 5, 768, 12
    assert full - seen_in_eval == layers * (4 * tokens * width ** 2 + 2 * tokens ** 2 * width)
    return full


@pytest.mark.parametrize("name", ["vit_b_16", "convnext_tiny"])
def test_vit_and_convnext_import_with_their_names_counts_and_outputs(name):
    model = _offset_model(name)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    text = archc.from_torch(model, x[:1], name=name)
    summary = archc.load(text=text).summary
    assert summary.total_params == sum(p.numel() for p in model.parameters())
    assert summary.buffers == sum(b.numel() for b in model.buffers()) == 0
    assert summary.macs == _reference_macs(name, model, x)
    built = archc.build(text=text, seed=3).eval()
    # torchvision's keys; a bare tensor X (class_token) is archc's one-tensor layer X.weight
    theirs = set(model.state_dict())
    bare = {k for k in built.state_dict() if k.removesuffix(".weight") in theirs - {k}}
    assert {k.removesuffix(".weight") if k in bare else k for k in built.state_dict()} == theirs
    assert len(bare) == BARE[name]
    report = archc.load_weights(built, model.state_dict())
    assert report.ok and report.complete and report.count("name") == len(model.state_dict())
    with torch.no_grad():
        want = model(x)
        assert want.abs().max() > 0.5  # not torchvision's zero head
        assert (built(x) - want).abs().max().item() <= 1e-5


def test_convnext_blocks_follow_the_input_width_and_repeat_with_a_growing_drop_rate():
    text = archc.from_torch(_offset_model("convnext_tiny"), torch.zeros(1, 3, 32, 32))
    assert re.findall(r"^  (\w+):$", text, re.M) == ["cnblock"]  # torchvision's Permute is inlined
    assert ("      - conv2d: {out: $input.channels, kernel: 7, padding: 3, groups: $input.channels, "
            "id: block.0}\n") in text
    assert "      - linear: {out: $input.channels * 4, id: block.3}\n" in text
    # stochastic depth 0.1 · k / 17 over the 18 blocks: linear in $index within each stage
    assert "  - cnblock: {p: $(0.0352941176 + 0.00588235294 * $index), repeat: 9, id: features.5}\n" in text
    assert "  - layernorm: {eps: 1.0e-06, id: features.0.1}\n" in text  # LayerNorm2d, inlined


def test_vit_b_16_from_the_cli_has_the_zoo_specs_counts(tmp_path):
    """At 224: the published 86,567,656 parameters and 17.56 G MACs; the twelve encoder
    layers (torchvision's encoder_layer_0 … _11) are one repeat whose id holds `$index`, and
    archc diff against specs/vit_b_16.yaml finds no difference: the same nodes by name, the
    same counts, a checkpoint that loads as is."""
    runner = CliRunner()
    out = tmp_path / "vit.yaml"
    result = runner.invoke(main, ["import", "torchvision:vit_b_16", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output == (f"wrote {out}: 141 layers from 236 traced nodes, 31 lines, "
                             "86,567,656 parameters, 17.56 G MACs, output [1000]\n")
    text = out.read_text()
    assert "  - reshape: {shape: [768, -1]}\n" in text  # n_h · n_w, computed from the input: -1
    assert "  - encoder_block: {repeat: 12, id: encoder.layers.encoder_layer_$index}\n" in text
    diff = runner.invoke(main, ["diff", str(zoo_dir() / "vit_b_16.yaml"), str(out), "--format", "json"])
    assert diff.exit_code == 0, diff.output
    report = json.loads(diff.output)
    assert [t["delta"] for t in report["totals"]] == [0, 0, 0, 0]  # params, buffers, MACs, nodes
    assert report["a"]["nodes"] == 141
    assert [n for n in report["nodes"] if n["status"] != "same"] == []
    checkpoint = report["checkpoint"]
    assert checkpoint["missing"] == checkpoint["unexpected"] == checkpoint["other_shape"] == []


def test_numbered_copies_become_a_repeat_with_index_in_the_id():
    """Modules block0 … block2 run one after the other: `repeat: 3, id: block$index`, and
    the spec's tensors keep the module's names (its state_dict loads strictly)."""
    class Unit(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 4)

        def forward(self, x):
            return torch.relu(self.fc(x)) + x

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.block0, self.block1, self.block2 = Unit(), Unit(), Unit()
            self.head = torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.head(self.block2(self.block1(self.block0(x))))

    net = Net().eval()
    text = archc.from_torch(net, torch.randn(1, 4))
    assert "  - unit: {repeat: 3, id: block$index}\n" in text
    ours = archc.build(text=text).eval()
    ours.load_state_dict(net.state_dict(), strict=True)
    x = torch.randn(5, 4)
    torch.testing.assert_close(ours(x), net(x))


class CrossAttention(torch.nn.Module):
    """Queries and keys/values from two projections: archc's attention `from: [q, kv]`."""

    def __init__(self, batch_first=True, read_weights=False, mask=False):
        super().__init__()
        self.q, self.kv = torch.nn.Linear(6, 8), torch.nn.Linear(6, 8)
        self.attn = torch.nn.MultiheadAttention(8, 2, batch_first=batch_first)
        self.read_weights, self.mask = read_weights, mask
        if mask:
            self.register_buffer("zero_mask", torch.zeros(5, 5))  # for 5 tokens

    def forward(self, x):
        kv = self.kv(x)
        y, weights = self.attn(self.q(x), kv, kv, need_weights=self.read_weights,
                               attn_mask=self.zero_mask if self.mask else None)
        return weights if self.read_weights else y[:, 1:3]


def test_cross_attention_and_a_slice_import_and_compute_the_same():
    net = CrossAttention().eval()
    x = torch.randn(2, 5, 6, generator=torch.Generator().manual_seed(0))
    text = archc.from_torch(net, x[:1])
    assert text.endswith("layers:\n  - linear: {out: 8, id: kv}\n  - linear: {from: input, out: 8, id: q}\n"
                         "  - attention: {from: [q, kv], heads: 2, id: attn}\n  - slice: {dim: 0, start: 1, end: 3}\n")
    _same_module(text, net, x)


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_first": False}, "attn: it reads sequence-first tensors (batch_first=False) — archc would need "
                             "batch_first=True (archc's tokens are [L, D] per sample, batch first)"),
    ({"read_weights": True}, "attn: forward reads its attention weights — archc would need an attention op "
                             "returning its weights"),
    ({"mask": True}, "attn: it is given a mask (attn_mask) — archc would need attention of every position to "
                     "every other"),
])
def test_attention_archc_cannot_express_is_named(kwargs, message):
    with pytest.raises(SpecErrors) as info:
        archc.from_torch(CrossAttention(**kwargs).eval(), torch.randn(1, 5, 6))
    assert f"torch module CrossAttention: error: {message}" in str(info.value).splitlines()
