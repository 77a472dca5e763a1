"""The static state_dict (archc/backends/torch/state.py, each op's ``state``) is the one
torch builds: keys, order and shapes equal ``archc.build(graph).state_dict()`` built on
torch's meta device (no memory, no initialisation), for every op's cases, every zoo
network and random specs. And each op's ``state`` agrees with its ``params`` formula:
the parameters' sizes add up to the trainable count, the other tensors' to the buffers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings

import archc
from archc.backends.torch.state import state_dict_shapes
from archc.ops.registry import get_op
from archc.zoo import zoo_specs
from strategies import specs
from test_random_attention import attention_specs
from test_random_tokens import token_specs
from test_torch_ops import CASES, spec
from torch_checks import SMALL


def torch_state(graph) -> dict[str, tuple]:
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in archc.build(graph).state_dict().items()}


def same_as_torch(graph) -> None:
    static, built = state_dict_shapes(graph), torch_state(graph)
    assert list(static.items()) == list(built.items())  # keys, order and shapes


@pytest.mark.parametrize("op, shape, layers", CASES)
def test_op_state_adds_up_to_its_params(op, shape, layers):
    graph = archc.loads(spec(op, shape, layers))
    for node in graph.nodes:
        kind = get_op(node.op)
        ins = [graph.shape_of(i) for i in node.inputs]
        state = kind.state(node.attrs, ins, node.meta["shape"])
        params = kind.torch_params(node.attrs)
        assert set(params) <= set(state)  # every parameter torch_params names has a shape
        sizes = [sum(math.prod(s) for k, s in state.items() if (k in params) == is_param) for is_param in (1, 0)]
        assert tuple(sizes) == kind.params(node.attrs, ins, node.meta["shape"]), node.name
    same_as_torch(graph)


def test_tensors_of_each_kind():
    """A few written out from torch's documentation of the modules (an independent statement)."""
    text = ("archc: 1\ninput: [6, 5]\nlayers:\n  - lstm: {hidden: 4, layers: 2, bidirectional: true}\n"
            "  - attention: {heads: 2}\n  - layer_scale: {}\n  - permute: {dims: [1, 0]}\n"
            "  - batchnorm1d: {affine: false}\n")
    state = state_dict_shapes(archc.loads(text))
    assert state["lstm_1.weight_ih_l0"] == (16, 5) and state["lstm_1.weight_ih_l1_reverse"] == (16, 8)
    assert state["lstm_1.bias_hh_l1_reverse"] == (16,) and len([k for k in state if k.startswith("lstm_1.")]) == 16
    assert [k for k in state if k.startswith("attention_1.")] == [
        "attention_1.in_proj_weight", "attention_1.in_proj_bias", "attention_1.out_proj.weight",
        "attention_1.out_proj.bias"]
    assert state["attention_1.in_proj_weight"] == (24, 8) and state["layer_scale_1.weight"] == (8,)
    assert [(k, v) for k, v in state.items() if k.startswith("batchnorm1d_1.")] == [
        ("batchnorm1d_1.running_mean", (8,)), ("batchnorm1d_1.running_var", (8,)),
        ("batchnorm1d_1.num_batches_tracked", ())]


def zoo_targets():
    return [pytest.param(str(p), g.name, id=f"{p.stem}:{g.name}")
            for p in zoo_specs() for g in archc.load_all(str(p))]


@pytest.mark.parametrize("path, network", zoo_targets())
def test_zoo_state_dict_is_torch_s(path, network):
    same_as_torch(archc.load(path, network, overrides=SMALL.get(Path(path).stem, {})))


def test_blocks_order_and_ties():
    """A layer created after a block's first layer but outside it comes after the whole
    block in torch's depth-first order; a tied weight is listed under both layers."""
    text = """archc: 1
input: {shape: [5], dtype: int64, vocab: 11}
blocks:
  pair:
    layers:
      - linear: {out: 6, id: a}
      - linear: {out: 6, id: b}
layers:
  - embedding: {num: 11, dim: 6, id: wte}
  - pair: {id: p}
  - linear: {out: 11, bias: false, tie: wte, id: head}
"""
    graph = archc.loads(text)
    same_as_torch(graph)
    state = state_dict_shapes(graph)
    assert list(state) == ["wte.weight", "p.a.weight", "p.a.bias", "p.b.weight", "p.b.bias", "head.weight"]
    assert state["head.weight"] == state["wte.weight"] == (11, 6)


SETTINGS = dict(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings(**SETTINGS)
@given(specs())
def test_random_specs(text):
    same_as_torch(archc.loads(text))


@settings(**SETTINGS)
@given(attention_specs())
def test_random_attention_and_recurrent_specs(text):
    same_as_torch(archc.loads(text))


@settings(**SETTINGS)
@given(token_specs())
def test_random_token_specs(text):
    same_as_torch(archc.loads(text))
