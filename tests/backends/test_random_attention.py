"""Random configurations of attention, the recurrent layers and the residual-branch ops
(archc/ops/attention.py, recurrent.py, residual.py):

* short chains of them — self- and cross-attention (heads dividing the width, causal,
  bias, keys/values of another length, projected from another width), LSTM and GRU
  (stacked, bidirectional, dropout, bias, every step or the last state), ViT-style
  residual branches through layer_scale and drop_path — build in torch with the
  statically inferred shape at every node, the predicted parameters and buffers
  (tests/backends/torch_checks.py), and two independent MAC references:
  - torch's flop counter over the whole module (tests/macs_reference.py: attention on
    the MATH backend; oneDNN off, since its fused LSTM kernel is invisible to the
    counter while torch's own kernel is made of the mm calls it counts);
  - per attention / recurrent module, a count written here from the module's own
    weights and the shapes its forward hook sees;
* values: the spec-built attention equals torch.nn.MultiheadAttention with the same
  weights (self and cross, a causal mask passed as attn_mask), and a recurrent layer's
  `output: last` / `sequence` equal nn.LSTM / nn.GRU's h_n and output.

The strategy tracks shapes with its own short rules only to stay valid.
"""

from __future__ import annotations

import textwrap
import warnings
from contextlib import contextmanager

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archc
from archc.backends.torch.build import build, example_input
from macs_reference import torch_macs
from torch_checks import check_graph

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def spec(shape, layers) -> str:
    body = yaml.safe_dump(layers, default_flow_style=None, sort_keys=False)
    return f"archc: 1\ninput: {list(shape)}\nlayers:\n" + textwrap.indent(body, "  ")


# ------------------------------------------------------------------------ the strategy


class Chain:
    """Layers drawn so far, with the id and shape of the current value and of every
    token sequence [L, D] seen (sources for keys and values)."""

    def __init__(self, shape):
        self.input = list(shape)
        self.layers, self.cur, self.shape = [], "input", list(shape)
        self.sequences = [("input", self.shape)] if len(shape) == 2 else []

    def add(self, op, attrs, shape):
        name = f"n{len(self.layers)}"
        self.layers.append({op: {**attrs, "id": name}})
        if len(shape) == 2:
            self.sequences.append((name, list(shape)))
        self.cur, self.shape = name, list(shape)
        return name


def divisors(n: int) -> list[int]:
    return [k for k in range(1, n + 1) if n % k == 0]


def attention_attrs(draw, d: int, causal_ok: bool) -> dict:
    return {"heads": draw(st.sampled_from(divisors(d))), "bias": draw(st.booleans()),
            "dropout": draw(st.sampled_from([0.0, 0.1])),
            "causal": causal_ok and draw(st.booleans())}


def self_attention(draw, c: Chain, src=None) -> None:
    src = src or c.cur
    c.add("attention", {**attention_attrs(draw, c.shape[1], True), "from": src}, c.shape)


def cross_attention(draw, c: Chain) -> None:
    """Queries: the current sequence; keys/values: any sequence so far, projected to the
    queries' width when it differs, sometimes cut to another length."""
    queries, (lq, d) = c.cur, c.shape
    memory, (lk, dk) = draw(st.sampled_from(c.sequences))
    if dk != d or draw(st.booleans()):
        memory = c.add("linear", {"out": d, "bias": draw(st.booleans()), "from": memory}, [lk, d])
    if lk > 1 and draw(st.booleans()):
        start = draw(st.integers(0, lk - 1))
        end = draw(st.integers(start + 1, lk))
        memory = c.add("slice", {"dim": 0, "start": start, "end": end, "from": memory}, [end - start, d])
        lk = end - start
    attrs = attention_attrs(draw, d, causal_ok=lq == lk)
    c.add("attention", {**attrs, "from": [queries, memory]}, [lq, d])


def recurrent(draw, c: Chain, width=None, last_ok=True) -> None:
    """An LSTM or GRU; ``width`` fixes dirs·H (a residual branch keeps the width)."""
    bidirectional = draw(st.booleans()) and (width is None or width % 2 == 0)
    dirs = 2 if bidirectional else 1
    hidden = width // dirs if width else draw(st.integers(1, 5))
    layers = draw(st.integers(1, 3))
    attrs = {"hidden": hidden, "layers": layers, "bidirectional": bidirectional,
             "dropout": draw(st.sampled_from([0.0, 0.3])) if layers > 1 else 0.0,
             "bias": draw(st.booleans()),
             "output": draw(st.sampled_from(["sequence", "last"])) if last_ok else "sequence"}
    length = c.shape[0]
    c.add(draw(st.sampled_from(["lstm", "gru"])), attrs,
          [length, dirs * hidden] if attrs["output"] == "sequence" else [dirs * hidden])


def scale_and_drop(draw, c: Chain) -> None:
    """layer_scale (any dim, written negative or not) and/or drop_path on any shape."""
    rank = len(c.shape)
    if draw(st.booleans()):
        attrs = {"init_value": draw(st.sampled_from([1e-6, 0.1, 1.0]))}
        if draw(st.booleans()):
            attrs["dim"] = draw(st.integers(-rank, rank - 1))
        c.add("layer_scale", attrs, c.shape)
    if draw(st.booleans()):
        c.add("drop_path", {"p": draw(st.sampled_from([0.0, 0.1, 0.5]))}, c.shape)


def residual(draw, c: Chain) -> None:
    """x + drop_path(layer_scale(f(layernorm(x)))), f an attention or a width-keeping RNN."""
    x, shape = c.cur, c.shape
    c.add("layernorm", {}, shape)
    if draw(st.booleans()):
        self_attention(draw, c)
    else:
        recurrent(draw, c, width=shape[1], last_ok=False)
    c.add("layer_scale", {"init_value": draw(st.sampled_from([1e-6, 0.5]))}, shape)
    c.add("drop_path", {"p": draw(st.sampled_from([0.0, 0.2]))}, shape)
    c.add("add", {"from": [x, c.cur]}, shape)


# drawn uniformly: cross-attention and the recurrent layers twice, having the most options
STEPS = [self_attention, cross_attention, cross_attention, recurrent, recurrent, residual, scale_and_drop]


@st.composite
def attention_specs(draw) -> str:
    if draw(st.integers(0, 4)) == 0:  # an image first: scaled, then made tokens
        shape = [draw(st.integers(1, 6)), draw(st.integers(1, 3)), draw(st.integers(1, 3))]
        c = Chain(shape)
        scale_and_drop(draw, c)
        channels, positions = shape[0], shape[1] * shape[2]
        c.add("reshape", {"shape": [channels, positions]}, [channels, positions])
        c.add("permute", {"dims": [1, 0]}, [positions, channels])
    else:
        # a product of two draws: widths with several divisors (head counts) more often
        c = Chain([draw(st.integers(1, 6)), draw(st.integers(1, 4)) * draw(st.integers(1, 4))])
    for _ in range(draw(st.integers(1, 3))):
        if len(c.shape) != 2:  # after `output: last` only element-wise ops fit
            scale_and_drop(draw, c)
            break
        step = draw(st.sampled_from(STEPS))
        step(draw, c)
    if not c.layers:  # scale_and_drop may draw nothing
        c.add("drop_path", {"p": 0.5}, c.shape)
    return spec(c.input, c.layers)


# ------------------------------------------------------------------------- references


@contextmanager
def native_rnn():
    """torch's own LSTM kernel (the mm calls the flop counter sees), not oneDNN's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # oneDNN's note about TF32 on Intel GPUs
        with torch.backends.mkldnn.flags(enabled=False):
            yield


def counted_macs(model, x) -> int:
    with native_rnn():
        return torch_macs(model, x)


def attention_macs(module, inputs) -> int:
    """One sample, from the weights: every weight used once per token it projects, and the
    two weightless products Q·Kᵀ and A·V each Lq·Lk·D (summed over heads)."""
    x = inputs[0]
    kv = inputs[1] if len(inputs) > 1 else x
    lq, lk = x.shape[1], kv.shape[1]
    w_q, w_k, w_v = module.in_proj_weight.chunk(3)
    d = w_q.shape[0]
    return (lq * (w_q.numel() + module.out_proj.weight.numel())
            + lk * (w_k.numel() + w_v.numel()) + 2 * lq * lk * d)


def recurrent_macs(module, inputs) -> int:
    """One sample: every weight_ih / weight_hh (each layer and direction) used once per step."""
    steps = inputs[0].shape[1]
    return steps * sum(p.numel() for name, p in module.named_parameters() if name.startswith("weight_"))


def hooked_macs(graph, model, x) -> dict[str, int]:
    """{node: MACs} of the attention and recurrent nodes, counted by forward hooks."""
    counts, handles = {}, []
    for node in graph.nodes:
        if node.op in ("attention", "lstm", "gru"):
            rule = attention_macs if node.op == "attention" else recurrent_macs

            def hook(module, inputs, out, name=node.name, rule=rule):
                counts[name] = rule(module, inputs)

            handles.append(model.get_submodule(node.name).register_forward_hook(hook))
    with torch.no_grad(), native_rnn():
        model(x)
    for handle in handles:
        handle.remove()
    return counts


@settings(max_examples=80, **SETTINGS)
@given(attention_specs())
def test_random_attention_chains_match_the_analysis(text):
    graph = archc.loads(text)
    model = check_graph(graph)
    x = example_input(graph, 2)
    assert counted_macs(model, x) == graph.summary.macs, text
    by_node = hooked_macs(graph, model, x)
    assert by_node == {name: graph.node(name).meta["macs"] for name in by_node}, text


# ---------------------------------------------------------------- values, by torch.nn


def _attention_spec(lq, lk, d, heads, causal, bias, cross) -> str:
    """Self-attention of [lq, d], or queries = the first lq tokens attending to the last lk."""
    if not cross:
        return spec([lq, d], [{"attention": {"heads": heads, "causal": causal, "bias": bias, "id": "att"}}])
    return spec([lq + lk, d], [
        {"slice": {"dim": 0, "end": lq, "id": "q"}},
        {"slice": {"dim": 0, "start": lq, "from": "input", "id": "kv"}},
        {"attention": {"heads": heads, "causal": causal, "bias": bias, "from": ["q", "kv"], "id": "att"}},
    ])


@st.composite
def attention_cases(draw):
    heads, per_head = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    cross = draw(st.booleans())
    lq = draw(st.integers(1, 6))
    lk = draw(st.integers(1, 6)) if cross else lq
    causal = lq == lk and draw(st.booleans())
    return lq, lk, heads * per_head, heads, causal, draw(st.booleans()), cross


@settings(max_examples=25, **SETTINGS)
@given(attention_cases())
def test_attention_equals_torch_multihead_attention(case):
    lq, lk, d, heads, causal, bias, cross = case
    model = build(text=_attention_spec(*case), seed=1).eval()
    reference = torch.nn.MultiheadAttention(d, heads, bias=bias, batch_first=True).eval()
    reference.load_state_dict(model.att.state_dict())  # strict: the same names and shapes
    x = torch.randn(3, lq + lk if cross else lq, d, generator=torch.Generator().manual_seed(0))
    queries, memory = (x[:, :lq], x[:, lq:]) if cross else (x, x)
    # attn_mask: True where a query may not look (the keys after it)
    mask = torch.ones(lq, lk, dtype=torch.bool).triu(1) if causal else None
    with torch.no_grad():
        want, _ = reference(queries, memory, memory, attn_mask=mask, need_weights=False)
        got = model(x)
    assert got.shape == (3, lq, d)
    assert torch.allclose(got, want, atol=1e-5, rtol=0), (got - want).abs().max()


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("output", ["last", "sequence"])
def test_bidirectional_stacked_recurrent_equals_torch(kind, output):
    """`output: last` is h_n of the last layer, forward then backward direction."""
    layer = {kind: {"hidden": 5, "layers": 2, "bidirectional": True, "output": output, "id": "rnn"}}
    model = build(text=spec([7, 3], [layer]), seed=2).eval()
    cls = torch.nn.LSTM if kind == "lstm" else torch.nn.GRU
    reference = cls(3, 5, num_layers=2, bidirectional=True, batch_first=True).eval()
    reference.load_state_dict(model.rnn.state_dict())
    x = torch.randn(4, 7, 3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        sequence, state = reference(x)
        got = model(x)
    h_n = state[0] if kind == "lstm" else state  # (layers · dirs, B, H)
    want = torch.cat([h_n[-2], h_n[-1]], dim=1) if output == "last" else sequence
    assert got.shape == ((4, 10) if output == "last" else (4, 7, 10))
    assert torch.allclose(got, want, atol=1e-6, rtol=0)
    if output == "last":  # the same numbers seen from the sequence: forward's last step, backward's first
        assert torch.allclose(got, torch.cat([sequence[:, -1, :5], sequence[:, 0, 5:]], dim=1), atol=1e-6)
