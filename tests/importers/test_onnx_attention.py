"""Attention imported from ONNX (issue 10): the exported subgraph becomes one archc
``attention`` layer with nn.MultiheadAttention's weights, or a located error saying what
differs. The zoo's transformers (gpt_tiny through the dynamo exporter, gpt2 and vit_b_16
through TorchScript's) are round-tripped in test_onnx_roundtrip.py; here: the attention op
cases of tests/backends/cases_attention.py (self, causal, cross-attention, no bias), graphs
written by hand with onnx.helper (what matches and each way of not matching), and tied
embedding weights."""

from __future__ import annotations

import contextlib
import io
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

import archc
from archc.errors import SpecErrors

from onnx_cases import imported, ints, max_diff, model, run_onnx, tensor

pytest.importorskip("onnxruntime")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backends"))
from cases_attention import CASES  # noqa: E402


def _spec(shape: str, layers: str) -> str:
    body = "\n".join("  " + line for line in layers.splitlines())
    return f"archc: 1\ninput: {shape}\nlayers:\n{body}\n"


@pytest.mark.parametrize("shape, layers", CASES["attention"], ids=range(len(CASES["attention"])))
def test_attention_cases_import_as_attention(shape, layers, tmp_path):
    """archc's attention op, exported by torch.onnx's TorchScript exporter, imports as one
    attention layer with the same heads, mask and bias, the same counts, and the file's
    outputs (those of the original module)."""
    import torch

    graph = archc.loads(_spec(shape, layers))
    original = archc.build(graph, seed=0).eval()
    x = torch.randn(2, *graph.input_shape)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(original, (x,), str(tmp_path / "m.onnx"), dynamo=False, input_names=["input"],
                          dynamic_axes={"input": {0: "batch"}})
    from archc.importers import import_onnx

    r = import_onnx(tmp_path / "m.onnx", tmp_path / "m.yaml")
    want = [n for n in graph.nodes if n.op == "attention"]
    got = [n for n in r.graph.nodes if n.op == "attention"]
    assert [(n.attrs["heads"], n.attrs["causal"], n.attrs["bias"]) for n in got] == \
        [(n.attrs["heads"], n.attrs["causal"], n.attrs["bias"]) for n in want]
    assert len(got[0].inputs) == len(want[0].inputs)  # cross-attention stays cross-attention
    s, t = r.graph.summary, graph.summary
    assert (s.total_params, s.buffers, s.macs, s.output_shapes) == (t.total_params, t.buffers, t.macs, t.output_shapes)
    assert max_diff(tmp_path / "m.onnx", r) <= 1e-5
    with torch.no_grad():
        np.testing.assert_allclose(run_onnx(tmp_path / "m.onnx", x.numpy())[0], original(x).numpy(), atol=1e-5)


# --------------------------------------------------------------------------- by hand

L, D, H = 5, 8, 2  # head size 4: 1/sqrt(4) = 0.5


def attention_model(scale=0.5, mask=None, cut=(L, H, D // H), cut_perm=(0, 2, 1, 3), extra=False):
    """Self-attention as exporters write it: a packed [D, 3D] projection split three ways,
    the heads cut by Reshape ``cut`` and Transpose ``cut_perm``, kᵀ, q·kᵀ scaled by ``scale``,
    ``mask`` added, Softmax, ·v, the heads merged, the output projection. ``extra``: the
    attention weights are also an output of their own."""
    k_perm = list(cut_perm[:2]) + [cut_perm[3], cut_perm[2]]
    nodes = [
        helper.make_node("MatMul", ["x", "w_in"], ["packed_mm"], name="attn/in_proj"),
        helper.make_node("Add", ["packed_mm", "b_in"], ["packed"], name="attn/in_bias"),
        helper.make_node("Split", ["packed"], ["q0", "k0", "v0"], axis=2, num_outputs=3, name="attn/split"),
        *[helper.make_node("Reshape", [f"{t}0", "cut"], [f"{t}1"], name=f"attn/cut_{t}") for t in "qkv"],
        helper.make_node("Transpose", ["q1"], ["q"], perm=list(cut_perm), name="attn/heads_q"),
        helper.make_node("Transpose", ["k1"], ["kt"], perm=k_perm, name="attn/heads_k"),
        helper.make_node("Transpose", ["v1"], ["v"], perm=list(cut_perm), name="attn/heads_v"),
        helper.make_node("MatMul", ["q", "kt"], ["qk"], name="attn/scores"),
        helper.make_node("Mul", ["qk", "scale"], ["scaled"], name="attn/scale"),
    ]
    scores = "scaled"
    if mask is not None:
        nodes.append(helper.make_node("Add", ["scaled", "mask"], ["masked"], name="attn/mask"))
        scores = "masked"
    nodes += [
        helper.make_node("Softmax", [scores], ["probs"], axis=-1, name="attn/softmax"),
        helper.make_node("MatMul", ["probs", "v"], ["heads"], name="attn/av"),
        helper.make_node("Transpose", ["heads"], ["merged0"], perm=[0, 2, 1, 3], name="attn/merge"),
        helper.make_node("Reshape", ["merged0", "flat"], ["merged"], name="attn/merge_flat"),
        helper.make_node("MatMul", ["merged", "w_out"], ["out_mm"], name="attn/out_proj"),
        helper.make_node("Add", ["out_mm", "b_out"], ["y0"], name="attn/out_bias"),
    ]
    output = "y0"
    if extra:  # the weights read outside: y0 + the weights' mean over the keys, broadcast
        nodes += [helper.make_node("ReduceMean", ["probs", "axes"], ["pm"], keepdims=0, name="peek"),
                  helper.make_node("Add", ["y0", "pm"], ["y"], name="use")]
        output = "y"
    inits = [tensor("w_in", D, 3 * D), tensor("b_in", 3 * D), tensor("w_out", D, D), tensor("b_out", D),
             ints("cut", [0, *cut]), ints("flat", [0, L, D]), ints("axes", [1]),
             helper.make_tensor("scale", 1, [], [scale])]
    if mask is not None:
        inits.append(helper.make_tensor("mask", 1, list(mask.shape), mask.astype(np.float32).ravel().tolist()))
    return model(nodes, [L, D], output, inits)


def _errors(m, tmp_path) -> str:
    with pytest.raises(SpecErrors) as info:
        imported(m, tmp_path)
    assert not (tmp_path / "m.yaml").exists()
    return str(info.value)


@pytest.mark.parametrize("causal", [False, True])
def test_hand_written_attention_is_one_layer(causal, tmp_path):
    mask = np.triu(np.full((L, L), -np.inf), 1) if causal else None
    path, r = imported(attention_model(mask=mask), tmp_path)
    (node,) = r.graph.nodes
    assert (node.op, node.attrs["heads"], node.attrs["causal"], node.name) == ("attention", H, causal, "attn")
    assert r.graph.summary.total_params == 4 * D * D + 4 * D
    assert max_diff(path, r) <= 1e-5


def test_a_zero_mask_is_no_mask(tmp_path):
    path, r = imported(attention_model(mask=np.zeros((1, 1, L, L))), tmp_path)
    assert [(n.op, n.attrs["causal"]) for n in r.graph.nodes] == [("attention", False)]
    assert max_diff(path, r) <= 1e-5


def test_another_scale_is_a_located_error(tmp_path):
    assert _errors(attention_model(scale=0.25), tmp_path).endswith(
        "error: node 'attn/scores' (MatMul): its scores are scaled by 0.25, where archc's attention "
        "scales by 1/sqrt(4) = 0.5 — archc would need an attention op with a `scale` attribute")


def test_a_mask_that_is_not_causal_is_a_located_error(tmp_path):
    mask = np.triu(np.full((L, L), -np.inf), 2)  # each position also sees the next one
    text = _errors(attention_model(mask=mask), tmp_path)
    assert "node 'attn/scores' (MatMul): the mask it adds to the scores is not causal (0 on and below the " \
           "diagonal, -inf above) — archc would need an attention mask input" in text


def test_heads_cut_otherwise_are_a_located_error(tmp_path):
    # [L, D/H, H]: head h takes every H-th feature, not a consecutive slice
    text = _errors(attention_model(cut=(L, D // H, H), cut_perm=(0, 3, 1, 2)), tmp_path)
    assert "node 'attn/scores' (MatMul): its queries are not cut into heads as attention's are (q0 [B, L, D] " \
           "to [B, H, L, D/H]) — archc would need attention whose heads are consecutive slices of the width" in text


def test_attention_weights_read_outside_are_a_located_error(tmp_path):
    text = _errors(attention_model(extra=True), tmp_path)
    assert "node 'attn/scores' (MatMul): its intermediate value 'probs' is also read outside the attention " \
           "(by node 'peek' (ReduceMean))" in text


def test_a_product_of_computed_tensors_that_is_not_attention_says_so(tmp_path):
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1], name="t"),
             helper.make_node("MatMul", ["x", "xt"], ["gram"], name="gram")]
    assert "node 'gram' (MatMul): it multiplies two computed tensors (as attention's q·kᵀ does)" in \
        _errors(model(nodes, [L, D], "gram"), tmp_path)


# --------------------------------------------------------------------------- tied weights


@pytest.mark.parametrize("table", ["random", "zeros"])
def test_an_output_projection_equal_to_the_embedding_is_tied(table, tmp_path):
    """A language model's head reading the token table (transposed) imports as `tie:`; a
    table of one repeated value is not taken for a tie (exporters share equal constants)."""
    vocab = 11
    e = tensor("table", vocab, D) if table == "random" else helper.make_tensor("table", 1, [vocab, D], [0.0] * vocab * D)
    nodes = [helper.make_node("Gather", ["table", "x"], ["emb"], name="wte"),
             helper.make_node("Transpose", ["table"], ["table_t"], perm=[1, 0], name="t"),
             helper.make_node("MatMul", ["emb", "table_t"], ["logits"], name="lm_head")]
    path, r = imported(model(nodes, [L], "logits", [e], input_type=7), tmp_path)
    tied = table == "random"
    assert ("tie: " in r.text) is tied
    assert r.graph.summary.total_params == vocab * D * (1 if tied else 2)
    assert max_diff(path, r) <= 1e-5


# --------------------------------------------------------------------------- ONNX's Attention op


def onnx_attention_model(**attrs):
    """Opset 23's Attention on q, k, v cut into heads (the dynamo exporter's form there)."""
    nodes = [
        helper.make_node("MatMul", ["x", "w_in"], ["packed_mm"], name="attn/in_proj"),
        helper.make_node("Add", ["packed_mm", "b_in"], ["packed"], name="attn/in_bias"),
        helper.make_node("Split", ["packed"], ["q0", "k0", "v0"], axis=2, num_outputs=3, name="attn/split"),
        *[helper.make_node("Reshape", [f"{t}0", "cut"], [f"{t}1"], name=f"attn/cut_{t}") for t in "qkv"],
        *[helper.make_node("Transpose", [f"{t}1"], [t], perm=[0, 2, 1, 3], name=f"attn/heads_{t}") for t in "qkv"],
        helper.make_node("Attention", ["q", "k", "v"], ["heads"], name="attn/core", **attrs),
        helper.make_node("Transpose", ["heads"], ["merged0"], perm=[0, 2, 1, 3], name="attn/merge"),
        helper.make_node("Reshape", ["merged0", "flat"], ["merged"], name="attn/merge_flat"),
        helper.make_node("MatMul", ["merged", "w_out"], ["y"], name="attn/out_proj"),
    ]
    inits = [tensor("w_in", D, 3 * D), tensor("b_in", 3 * D), tensor("w_out", D, D),
             ints("cut", [0, L, H, D // H]), ints("flat", [0, L, D])]
    return model(nodes, [L, D], "y", inits, opset=23)


def test_onnx_attention_op_is_one_layer(tmp_path):
    """No output bias: archc's `bias` switches all four, so the missing one is zeros."""
    path, r = imported(onnx_attention_model(is_causal=1), tmp_path)
    (node,) = r.graph.nodes
    assert (node.op, node.attrs["heads"], node.attrs["causal"], node.attrs["bias"]) == ("attention", H, True, True)
    assert max_diff(path, r) <= 1e-5


def test_onnx_attention_op_with_a_softcap_is_a_located_error(tmp_path):
    assert _errors(onnx_attention_model(softcap=2.0), tmp_path).endswith(
        "error: node 'attn/core' (Attention): it caps its scores (softcap 2) — archc would need attention "
        "with a softcap")


# --------------------------------------------------------------------------- nn.MultiheadAttention


@pytest.mark.parametrize("causal", [False, True])
def test_torch_multihead_attention_imports(causal, tmp_path):
    """torch's own nn.MultiheadAttention (batch_first, computed sequence-first inside, the
    head reshapes sized from the batch), exported by the TorchScript exporter: recognised by
    evaluation as one attention layer with its parameters, under their names, and outputs."""
    import torch

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = torch.nn.MultiheadAttention(D, H, batch_first=True)
            with torch.no_grad():
                self.mha.in_proj_bias.normal_()  # zeros at first: say something
                self.mha.out_proj.bias.normal_()

        def forward(self, x):
            mask = torch.nn.Transformer.generate_square_subsequent_mask(L) if causal else None
            return self.mha(x, x, x, need_weights=False, attn_mask=mask, is_causal=causal)[0]

    torch.manual_seed(0)
    block = Block().eval()
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(block, (torch.randn(2, L, D),), str(tmp_path / "m.onnx"), dynamo=False,
                          input_names=["input"], dynamic_axes={"input": {0: "batch"}})
    from archc.importers import import_onnx

    r = import_onnx(tmp_path / "m.onnx", tmp_path / "m.yaml")
    (node,) = r.graph.nodes
    assert (node.op, node.name, node.attrs["heads"], node.attrs["causal"]) == ("attention", "mha", H, causal)
    assert {k: v.shape for k, v in r.weights.items()} == {f"mha.{k}": tuple(v.shape) for k, v in
                                                          block.mha.state_dict().items()}
    assert max_diff(tmp_path / "m.onnx", r) <= 1e-5
    built = archc.build(str(tmp_path / "m.yaml")).eval()
    archc.load_weights(built, str(r.weights_path))
    x = torch.randn(3, L, D)
    with torch.no_grad():
        torch.testing.assert_close(built(x), block(x), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------- class token


def class_token_model(copies: int):
    """x [B, 4, 8] after ``copies`` copies of a [1, 1, 8] token expanded to [B, copies, 8]."""
    nodes = [helper.make_node("Shape", ["x"], ["batch"], start=0, end=1),
             helper.make_node("Concat", ["batch", "rest"], ["size"], axis=0),
             helper.make_node("Expand", ["cls", "size"], ["tokens"]),
             helper.make_node("Concat", ["tokens", "x"], ["y"], axis=1)]
    return model(nodes, [4, 8], "y", [tensor("cls", 1, 1, 8), ints("rest", [copies, 8])])


def test_a_token_expanded_to_the_batch_is_a_class_token(tmp_path):
    path, r = imported(class_token_model(1), tmp_path)
    assert [n.op for n in r.graph.nodes] == ["class_token"] and r.graph.summary.output_shapes == [(5, 8)]
    assert max_diff(path, r) == 0.0


def test_a_token_expanded_along_the_sequence_too_is_not_one_class_token(tmp_path):
    # three copies of the token before x: archc's class_token adds one
    with pytest.raises(SpecErrors) as info:
        imported(class_token_model(3), tmp_path)
    assert "node 'tokens' (Expand): archc has no op for ONNX's Expand" in str(info.value)
