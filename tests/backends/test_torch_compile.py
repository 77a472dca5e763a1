"""Layouts and compilers: every zoo network captures as one graph under
``torch.compile(fullgraph=True)`` (no graph breaks), run under inductor, and give the same
outputs in channels_last memory format."""

from __future__ import annotations

import os
import shutil

import pytest
import torch

import archc
from archc.backends.torch.build import example_input
from archc.zoo import zoo_dir
from torch_checks import zoo_networks


def load(path, network, overrides):
    graph = archc.load(path, network, overrides)
    model = archc.build(graph, seed=0).eval()
    return model, example_input(graph, 2, seed=1)  # images, or token ids for a language model


def has_rnn(model) -> bool:
    return any(isinstance(m, torch.nn.RNNBase) for m in model.modules())


@pytest.mark.parametrize("path, network, overrides", zoo_networks())
def test_fullgraph_capture(path, network, overrides):
    """Dynamo traces forward as one graph (fullgraph=True raises on any break); the
    'eager' backend runs that graph without compiling kernels, so this stays fast. Dynamo
    traces nn.LSTM / nn.GRU only with its (experimental) allow_rnn switch, which a user of an
    LSTM spec turns on the same way."""
    model, x = load(path, network, overrides)
    torch._dynamo.reset()
    with torch._dynamo.config.patch(allow_rnn=has_rnn(model)):
        compiled = torch.compile(model, fullgraph=True, backend="eager")
        with torch.no_grad():
            torch.testing.assert_close(compiled(x), model(x), rtol=0, atol=0)


@pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None,
                    reason="inductor needs a C++ compiler on CPU; none found")
@pytest.mark.skipif(os.environ.get("ARCHC_TEST_INDUCTOR") != "1",
                    reason="inductor compiles C++ for ~45 s on a cold CPU cache; set ARCHC_TEST_INDUCTOR=1")
def test_inductor_compiles_lenet5():
    model, x = load(zoo_dir() / "lenet5.yaml", None, None)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("path, network, overrides", zoo_networks())
def test_channels_last_gives_the_same_outputs(path, network, overrides):
    model, x = load(path, network, overrides)
    with torch.no_grad():
        want = model(x)
        model = model.to(memory_format=torch.channels_last)
        got = model(x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_to_device_and_dtype():
    model, x = load(zoo_dir() / "lenet5.yaml", None, None)
    with torch.no_grad():
        want = model(x)
        got = model.to(torch.float64)(x.double())
    torch.testing.assert_close(got.float(), want, rtol=1e-4, atol=1e-5)
