"""archc.from_torch and ``archc import torchvision:NAME`` (issue 10.2): torchvision models
(weights=None, a random state; nothing downloads) traced into specs whose tensors carry
torchvision's state_dict keys, so the module's own state_dict loads strictly by name and
the outputs are the module's. References: the module's own tensors (sum of numel), torch's
flop counter for the MACs (tests/macs_reference.py), torchvision's forward for the outputs.

Sizes: 64×64 (every network here accepts it; alexnet's and vgg16's adaptive pools then
spread a small map); num_classes=10 keeps the heads small. Each model is built once."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

import archc
from archc.cli import main
from archc.errors import SpecErrors

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
from macs_reference import torch_macs  # noqa: E402

MODELS = ["alexnet", "vgg16", "resnet18", "resnet50", "googlenet", "mobilenet_v2", "densenet121",
          "efficientnet_b0"]


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
    hand_written = (archc.zoo.zoo_dir() / "resnet50.yaml").read_text()
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


def test_a_forward_fx_cannot_trace_is_a_located_error():
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
    assert message.endswith("— archc would need a forward without control flow that depends on tensor values")


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
