"""In-place code in the generated forward (``F.relu(x, inplace=True)``, ``x.add_(y)``) is
used only where autograd cannot notice: training gives the same outputs and the same
gradients as the return-all module (which never writes in place), the caller's input is
never touched, and the unsafe patterns keep the out-of-place form."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

import archc
from strategies import specs
from torch_checks import zoo_networks

torch = pytest.importorskip("torch")
from archc.backends.torch.build import build, example_input  # noqa: E402


def forward_backward(model, x, graph, seed):
    """Outputs and gradients (parameters and input) of one training step."""
    torch.manual_seed(seed)  # the same dropout masks for both modules
    x = x.clone().requires_grad_(x.is_floating_point())  # token ids have no gradient
    out = model(x)
    if isinstance(out, dict):  # the return-all module
        out = tuple(out[o] for o in graph.outputs)
    out = out if isinstance(out, tuple) else (out,)
    g = torch.Generator().manual_seed(seed)
    loss = sum((o * torch.randn(o.shape, generator=g)).sum() for o in out)
    loss.backward()
    grads = {k: p.grad for k, p in model.named_parameters() if p.grad is not None}
    return [o.detach() for o in out], grads, x.grad


def check_training_step(graph, batch: int = 2, seed: int = 0):
    plain = build(graph, seed=seed, return_all=True).train()
    fast = build(graph, seed=seed).train()
    x = example_input(graph, batch, seed)  # images, or token ids
    before = x.clone()
    want = forward_backward(plain, x, graph, seed)
    got = forward_backward(fast, x, graph, seed)
    assert torch.equal(x, before), "the caller's input was modified"
    for a, b in zip(got[0], want[0]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert got[1].keys() == want[1].keys()
    for k in want[1]:
        torch.testing.assert_close(got[1][k], want[1][k], rtol=0, atol=0, msg=k)
    torch.testing.assert_close(got[2], want[2], rtol=0, atol=0)


@pytest.mark.parametrize("path, network, overrides", zoo_networks())
def test_zoo_training_step_equals_the_module_without_inplace(path, network, overrides):
    check_training_step(archc.load(path, network, overrides))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_random_specs_training_step_equals_the_module_without_inplace(text):
    check_training_step(archc.loads(text))


def forward_source(layers: str, input_shape="[8, 4, 4]", outputs="") -> list[str]:
    text = f"archc: 1\ninput: {input_shape}\nlayers:\n{layers}{outputs}"
    source = archc.generate_source(text=text)
    return source.split("def forward", 1)[1].splitlines()[1:-1]


def test_resnet_block_writes_in_place_as_torchvision_does():
    lines = archc.generate_source("resnet18").split("def forward", 1)[1].splitlines()
    assert "        x = F.relu(x, inplace=True)  # relu (64, 112, 112)" in lines
    assert "        x1 = x1.add_(x)  # layer1.0.add_1 (64, 56, 56)" in lines


@pytest.mark.parametrize("layers, expected", [
    # a conv's output read by one node: overwritten
    ("  - conv2d: {out: 8, kernel: 1}\n  - relu\n", "x = F.relu(x, inplace=True)"),
    # sigmoid keeps its output for backward: never overwritten
    ("  - conv2d: {out: 8, kernel: 1}\n  - sigmoid\n  - relu\n", "x = F.relu(x)"),
    # the network's input belongs to the caller (its name is rebound, the tensor untouched)
    ("  - relu\n", "x = F.relu(x)"),
    # two readers of the conv (a branch and the relu): the branch would see it change
    ("  - conv2d: {out: 8, kernel: 1, id: c}\n  - relu: {id: r}\n  - add: {from: [c, r]}\n",
     "x1 = F.relu(x)"),
])
def test_inplace_only_where_safe(layers, expected):
    assert any(line.strip().startswith(expected + "  #") for line in forward_source(layers))


def test_an_output_is_never_overwritten():
    lines = forward_source("  - conv2d: {out: 8, kernel: 1, id: c}\n  - relu: {id: r}\n",
                           outputs="outputs: [c, r]\n")
    assert any(line.strip().startswith("x1 = F.relu(x)  #") for line in lines)


def test_broadcasting_add_writes_into_the_full_size_input():
    layers = ("  - global_avgpool: {id: g}\n  - conv2d: {from: input, out: 8, kernel: 1, id: c}\n"
              "  - add: {from: [g, c]}\n")
    lines = forward_source(layers)
    assert any(line.strip().startswith("x = x.add_(x1)  # add_1") for line in lines), lines


def test_activations_and_pools_are_functions_not_modules():
    model = archc.build("lenet5")
    kinds = {type(m).__name__ for m in model.modules()}
    assert kinds == {"Lenet5", "Block", "Conv2d", "Linear"}
