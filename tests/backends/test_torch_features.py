"""Every node reachable (issue 12, point 7): ``print(model)`` lists every layer of the
report, and any layer's output can be taken by its report id — ``archc.build(spec,
outputs=[...])`` and ``archc.feature_extractor(model_or_spec, ids)``.

References: the report's own node list (``archc.load``), the full network run with
``return_all=True`` (every node's value), and torchvision's ``create_feature_extractor``
on resnet18 given the same weights.
"""

from __future__ import annotations

import random
import re

import pytest

import archc
from archc.backends.torch.build import example_input

torch = pytest.importorskip("torch")


def printed_ids(text: str) -> list[str]:
    """The dotted ids of ``print(model)``: each ``(key): `` line, nested by indentation
    (two spaces a level, as nn.Module's repr), its parents' keys before it."""
    ids, stack = [], []
    for line in text.splitlines()[1:]:
        match = re.match(r"( *)\((\w+)\): (.*)", line)
        if not match:
            continue
        depth = len(match[1]) // 2 - 1
        del stack[depth:]
        stack.append(match[2])
        ids.append(".".join(stack))
    return ids


# --------------------------------------------------------------------------- print(model)


@pytest.mark.parametrize("name", ["lenet5", "resnet18", "gpt_tiny", "unet"])
def test_print_lists_every_layer_of_the_report_in_order(name):
    graph = archc.load(name)
    model = archc.build(graph, seed=0)
    shown = printed_ids(repr(model))
    names = [n.name for n in graph.nodes]
    blocks = {".".join(n.split(".")[:k]) for n in names for k in range(1, n.count(".") + 1)}

    def inside_a_layer(i):  # a torch module's own children (MultiheadAttention's out_proj)
        parts = i.split(".")
        return any(".".join(parts[:k]) in names for k in range(1, len(parts)))

    assert [i for i in shown if i not in blocks and not inside_a_layer(i)] == names


def test_print_shows_modules_as_torch_does_and_function_layers_as_ops():
    model = archc.build("lenet5", seed=0)
    text = repr(model)
    assert text.startswith("Lenet5(\n  (c1): Block(\n    (conv2d_1): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))\n"
                           "    (tanh_1): tanh()\n    (avgpool2d_1): avgpool2d(kernel=(2, 2), stride=(2, 2),")
    assert "  (f6): " + repr(model.f6) + "\n" in text
    assert "  (flatten_1): flatten()\n" in text
    # a layer with several inputs names them (the shortcut of a residual block)
    assert "      (add_1): add(layer1.0.bn2, maxpool)\n" in repr(archc.build("resnet18", seed=0))


def test_printing_changes_nothing_the_module_holds():
    model = archc.build("lenet5", seed=0)
    repr(model)
    assert [n for n, _ in model.named_modules()] == ["", "c1", "c1.conv2d_1", "c3", "c3.conv2d_1", "c5", "f6", "output"]


# --------------------------------------------------------------------------- feature extraction


@pytest.mark.parametrize("name", ["resnet18", "gpt_tiny", "unet", "googlenet"])
def test_extracted_values_equal_the_full_networks(name):
    """Random layer ids of a zoo network (and a block id): the extractor's values equal
    those of the network run with every value kept."""
    graph = archc.load(name)
    names = [n.name for n in graph.nodes]
    ids = random.Random(0).sample(names, 5)
    block = [n.split(".")[0] for n in names if "." in n][-1]  # the last top-level block instance
    full = archc.build(graph, seed=3, return_all=True).eval()
    x = example_input(graph, batch=2)
    with torch.no_grad():
        want = full(x)
        got = archc.feature_extractor(archc.build(graph, seed=3).eval(), [*ids, block])(x)
    assert list(got) == [*ids, block]
    for key in ids:
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=0)
    last = [n for n in names if n.startswith(block + ".")][-1]
    torch.testing.assert_close(got[block], want[last], rtol=0, atol=0)


def test_resnet18_features_equal_torchvisions_create_feature_extractor(tmp_path):
    models = pytest.importorskip("torchvision.models")
    feature_extraction = pytest.importorskip("torchvision.models.feature_extraction")
    torch.manual_seed(0)
    reference = models.resnet18(weights=None).eval()
    path = tmp_path / "resnet18.pt"
    torch.save(reference.state_dict(), path)
    model = archc.build("resnet18", seed=1).eval()
    assert archc.load_weights(model, path).complete
    # archc id -> torchvision's fx node name (fx numbers a module's second call relu_1)
    pairs = {"maxpool": "maxpool", "layer1.0.bn2": "layer1.0.bn2", "layer2.1.relu_1": "layer2.1.relu",
             "layer2.0.downsample": "layer2.0.downsample", "layer3": "layer3",
             "layer4.1.relu_2": "layer4.1.relu_1", "fc": "fc"}
    theirs = feature_extraction.create_feature_extractor(reference, [*pairs.values(), "layer1.0.add"])
    ours = archc.feature_extractor(model, [*pairs, "layer1.0.add_1"])
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got, want = ours(x), theirs(x)
    for mine, tv in pairs.items():
        torch.testing.assert_close(got[mine], want[tv], rtol=0, atol=1e-5)
    # torchvision's block ends `out += identity; out = self.relu(out)` with an in-place ReLU,
    # so its "add" tensor holds the ReLU's result; archc keeps a requested value intact
    assert got["layer1.0.add_1"].min() < -1e-3
    torch.testing.assert_close(got["layer1.0.add_1"].relu(), want["layer1.0.add"], rtol=0, atol=1e-5)
    # the comparison can fail: archc's layer4.1.relu_1 is the block's first ReLU, not fx's
    with torch.no_grad():
        first = archc.feature_extractor(model, ["layer4.1.relu_1"])(x)["layer4.1.relu_1"]
    assert (first - want["layer4.1.relu_1"]).abs().max() > 1e-3


def test_build_outputs_makes_the_extractor_from_a_spec():
    model = archc.build("lenet5", seed=0, outputs=["c3", "f6"])
    out = model(torch.zeros(2, 1, 32, 32))
    assert {k: tuple(v.shape) for k, v in out.items()} == {"c3": (2, 16, 5, 5), "f6": (2, 84)}
    # same weights as the network built with that seed: its own layers give the same values
    plain = archc.build("lenet5", seed=0)
    assert plain.state_dict().keys() == model.state_dict().keys()
    assert torch.equal(model.f6.weight, plain.f6.weight)


def test_the_extractor_shares_the_models_weights_and_mode():
    model = archc.build("lenet5", seed=0).eval()
    features = archc.feature_extractor(model, ["output"])
    assert not features.training
    assert all(a is b for a, b in zip(features.parameters(), model.parameters()))
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        model.output.bias += 1  # weights changed after extraction are seen by it
        torch.testing.assert_close(features(x)["output"], model(x), rtol=0, atol=0)


def test_only_what_the_requested_layers_need_runs():
    model = archc.build("resnet18", seed=0).eval()
    called = []
    for name in ("layer2.0.conv1", "layer3.0.conv1", "fc"):
        model.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: called.append(name))
    archc.feature_extractor(model, ["layer2"])(torch.randn(1, 3, 64, 64))
    assert called == ["layer2.0.conv1"]


def test_the_input_and_the_models_own_outputs_can_be_asked_for():
    model = archc.build("lenet5", seed=0)
    x = torch.randn(2, 1, 32, 32)
    out = archc.feature_extractor(model, ["input", "output"])(x)
    assert out["input"] is x
    torch.testing.assert_close(out["output"], model(x), rtol=0, atol=0)


def test_an_unknown_id_says_which_ids_are_close():
    model = archc.build("resnet18", seed=0)
    with pytest.raises(ValueError) as info:
        archc.feature_extractor(model, ["layer4.1.relu_3", "layr3", "fc"])
    assert str(info.value) == (
        "unknown layer id 'layer4.1.relu_3' in 'resnet18' (did you mean 'layer4.1.relu_2', 'layer4.1.relu_1' "
        "or 'layer4.0.relu_2'?); unknown layer id 'layr3' in 'resnet18' (did you mean 'layer3', 'layer3.1' "
        "or 'layer3.0'?) (the ids are those of `archc validate`'s report: a layer's dotted id, a block "
        "instance's id for its output, or 'input')")
    with pytest.raises(ValueError, match="unknown layer id 'nope'"):
        archc.build("lenet5", outputs=["nope"])


def test_a_module_archc_did_not_build_is_refused_with_the_way_out():
    with pytest.raises(TypeError, match="Linear was not made by archc.build in this process: pass the spec"):
        archc.feature_extractor(torch.nn.Linear(2, 2), ["a"])
