"""specs/gpt2.yaml is GPT-2 small: 124,439,808 parameters, the numbers of a hand-written
GPT-2 (tests/gpt2_reference.py) given the same weights, and MACs equal to the formula
below and to torch's flop counter.

The forward checks run at 64 tokens (``--set input=[64]``); the position table keeps its
1024 rows."""

from __future__ import annotations

from pathlib import Path

import pytest

import archc

torch = pytest.importorskip("torch")

from gpt2_reference import GPT2, to_archc  # noqa: E402
from macs_reference import torch_macs  # noqa: E402

SPEC = str(Path(__file__).resolve().parents[1] / "specs" / "gpt2.yaml")
SHORT = {"input": [64]}
VOCAB, CONTEXT, WIDTH, LAYERS = 50257, 1024, 768, 12


def analytic_macs(length: int, width: int = WIDTH, layers: int = LAYERS, vocab: int = VOCAB) -> int:
    """MACs of one sequence (torchvision's convention: every weight use, bias excluded,
    weightless matmuls in full — the whole L×L score square under the causal mask):

    per block  q, k, v, out projections  4·L·d²
               Q·Kᵀ and A·V              2·L²·d
               MLP d -> 4d -> d          8·L·d²      (12·L·d² + 2·L²·d in all)
    lm_head    L·d·vocab (the tied embedding matrix used as weights)
    embeddings and layer norms add none (look-ups and element-wise work)."""
    return layers * (12 * length * width ** 2 + 2 * length ** 2 * width) + length * width * vocab


def test_gpt2_small_has_its_published_parameter_count():
    s = archc.load(SPEC).summary
    assert s.total_params == s.trainable_params == 124_439_808
    assert s.buffers == 0
    assert sum(p.numel() for p in GPT2().parameters()) == 124_439_808


def test_gpt2_shapes_and_tied_head():
    g = archc.load(SPEC)
    assert (g.input_shape, g.input_dtype) == ((CONTEXT,), "int64")
    assert g.summary.output_shapes == [(CONTEXT, VOCAB)]
    assert g.node("h.11.mlp_fc").meta["shape"] == (CONTEXT, 4 * WIDTH)
    assert g.node("lm_head").meta["params"] == 0  # its weight is wte's, counted there


def test_a_shorter_input_keeps_the_position_table():
    g = archc.load(SPEC, overrides=SHORT)
    assert g.summary.output_shapes == [(64, VOCAB)]
    assert g.summary.total_params == 124_439_808


def test_gpt2_macs_equal_the_formula():
    assert analytic_macs(CONTEXT) == 145_824_153_600  # 145.8 G at 1024 tokens
    assert archc.load(SPEC).summary.macs == analytic_macs(CONTEXT)
    assert archc.load(SPEC, overrides=SHORT).summary.macs == analytic_macs(64)


@pytest.fixture(scope="module")
def pair():
    """(spec-built, reference) at 64 tokens with the reference's weights, eval mode."""
    torch.manual_seed(0)
    theirs = GPT2().eval()
    ours = archc.build(SPEC, overrides=SHORT, seed=0).eval()
    state = to_archc(theirs.state_dict())
    state["lm_head.weight"] = state["wte.weight"]  # one tensor under both names
    assert set(state) == set(ours.state_dict())
    ours.load_state_dict(state)
    return ours, theirs


def test_the_head_shares_the_embedding_tensor(pair):
    ours, _ = pair
    assert ours.lm_head.weight is ours.wte.weight
    assert sum(p.numel() for p in ours.parameters()) == 124_439_808


def test_gpt2_computes_what_the_reference_computes(pair):
    ours, theirs = pair
    x = torch.randint(0, VOCAB, (2, 64), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = ours(x), theirs(x)
    assert a.shape == (2, 64, VOCAB)
    assert float((a - b).abs().max()) <= 1e-4


def test_gpt2_is_causal(pair):
    ours, _ = pair
    x = torch.randint(0, VOCAB, (1, 64), generator=torch.Generator().manual_seed(2))
    y = x.clone()
    y[0, 40:] = 0  # a different future leaves the first 40 positions alone
    with torch.no_grad():
        assert torch.allclose(ours(x)[0, :40], ours(y)[0, :40], atol=1e-5)


def test_gpt2_macs_equal_torch_flop_counter(pair):
    ours, _ = pair
    x = torch.randint(0, VOCAB, (1, 64))
    assert torch_macs(ours, x) == analytic_macs(64)
