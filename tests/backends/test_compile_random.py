"""Compile-ready beyond the zoo (issue 13.4): a sample of the random specs of every
property-test generator — the general chains of tests/strategies.py, the 1-D/3-D convs
and pools, the token and tensor ops, attention and the recurrent layers — traces under
``torch._dynamo.explain`` as one graph with no graph break.

Tracing costs about a second per small module on a busy CPU, so each generator
contributes a handful of examples here; the property tests themselves check the values.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings

import archc
import test_random_attention as attention
import test_random_nd as nd
import test_random_tokens as tokens
from archc.backends.torch.build import build, example_input
from archc.zoo import zoo_dir
from strategies import specs

SAMPLE = dict(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def breaks(graph) -> tuple[int, int, list]:
    """(graphs, graph breaks, break reasons) of the graph's module as dynamo traces it."""
    model = build(graph, seed=0).eval()
    x = example_input(graph, 2, seed=1)
    rnn = any(isinstance(m, torch.nn.RNNBase) for m in model.modules())
    torch._dynamo.reset()
    # dynamo traces nn.LSTM / nn.GRU only with its allow_rnn switch (see test_torch_compile.py)
    with torch._dynamo.config.patch(allow_rnn=rnn), torch.no_grad():
        report = torch._dynamo.explain(model)(x)
    return report.graph_count, report.graph_break_count, [r.reason for r in report.break_reasons]


def assert_one_graph(text) -> None:
    graph = archc.loads(text)
    graphs, count, reasons = breaks(graph)
    if (graphs, reasons) == (0, []) and count <= 0:
        # dynamo skips a frame without a single tensor op: a network that is the identity in
        # eval mode (a lone drop_path or dropout) has nothing to capture, so nothing can break
        model, x = build(graph, seed=0).eval(), example_input(graph, 2, seed=1)
        with torch.no_grad():
            assert torch.equal(model(x), x), text
        return
    assert (graphs, count, reasons) == (1, 0, []), text


def test_explain_counts_a_break_when_there_is_one():
    # the measure itself can fail: a forward with a print() in it breaks the graph in two
    class Chatty(torch.nn.Module):
        def forward(self, x):
            x = x + 1
            print("", end="")
            return x * 2

    torch._dynamo.reset()
    report = torch._dynamo.explain(Chatty())(torch.ones(2))
    assert report.graph_break_count == 1 and report.graph_count == 2


def test_lenet5_is_one_graph():
    assert breaks(archc.load(zoo_dir() / "lenet5.yaml")) == (1, 0, [])


@settings(**SAMPLE)
@given(specs())
def test_random_specs_are_one_graph(text):
    assert_one_graph(text)


@settings(**SAMPLE)
@given(nd.convs() | nd.conv_transposes() | nd.pools() | nd.global_pools() | nd.norms_and_activations())
def test_random_nd_specs_are_one_graph(text):
    assert_one_graph(text)


@settings(**SAMPLE)
@given(tokens.token_specs())
def test_random_token_specs_are_one_graph(text):
    assert_one_graph(text)


@settings(**SAMPLE)
@given(attention.attention_specs())
def test_random_attention_specs_are_one_graph(text):
    assert_one_graph(text)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_recurrent_layers_are_one_graph(kind):
    # drawn above only some of the time: one of each, always
    text = f"archc: 1\ninput: [5, 4]\nlayers:\n  - {kind}: {{hidden: 3, layers: 2, bidirectional: true}}\n"
    assert_one_graph(text)
