"""ONNX LSTM / GRU nodes import as archc's lstm / gru (archc/importers/onnx_ops_seq.py).

torch modules are exported with torch.onnx (the TorchScript exporter: under a second each;
one case with the dynamo exporter, whose layout nodes differ: ~15 s on two cores), imported,
and the spec built with the written weights must compute onnxruntime's values (1e-5) and the
torch module's, with torch's own parameter names and counts. Unsupported variants are
written with onnx.helper and must fail at the node, saying what differs."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest
from onnx import helper

import archc
from archc.errors import SpecErrors
from onnx_cases import imported, max_diff, model, tensor

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
nn = torch.nn

L, D = 5, 8


class Recurrent(nn.Module):
    """One nn.LSTM / nn.GRU (batch first) returning its sequence or its last layer's final
    hidden states, directions side by side (archc's `output: last`)."""

    def __init__(self, kind, hidden=16, layers=1, bidirectional=False, bias=True, output="sequence"):
        super().__init__()
        self.rnn = getattr(nn, kind)(D, hidden, num_layers=layers, bidirectional=bidirectional,
                                     bias=bias, batch_first=True)
        self.output, self.dirs = output, 2 if bidirectional else 1

    def forward(self, x):
        y, h = self.rnn(x)
        if self.output == "sequence":
            return y
        h = h[0] if isinstance(h, tuple) else h  # LSTM: (h_n, c_n)
        return torch.cat(list(h[-self.dirs:]), dim=1)


class Chained(nn.Module):
    """An LSTM read by a GRU of another width: two archc layers."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.LSTM(D, 16, batch_first=True)
        self.decoder = nn.GRU(16, 12, batch_first=True, bidirectional=True)

    def forward(self, x):
        return self.decoder(self.encoder(x)[0])[0]


class Both(Recurrent):
    """The sequence and the final hidden states, both returned (``y, (h, c) = lstm(x)``)."""

    def forward(self, x):
        y, h = self.rnn(x)
        h = h[0] if isinstance(h, tuple) else h
        return y, torch.cat(list(h[-self.dirs:]), dim=1)


def export(module, path, dynamo=False):
    x = torch.randn(2, L, D)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(module, (x,), dynamo=True, input_names=["input"], verbose=False,
                              dynamic_shapes=({0: torch.export.Dim("batch", min=1)},)).save(str(path))
        else:
            torch.onnx.export(module, (x,), str(path), dynamo=False, input_names=["input"],
                              dynamic_axes={"input": {0: "batch"}})


def layer_lines(text: str) -> list[str]:
    return [line.strip() for line in text.split("layers:\n", 1)[1].splitlines()]


CASES = {
    "lstm_last": (lambda: Recurrent("LSTM", output="last"), ["- lstm: {hidden: 16, output: last, id: rnn}"]),
    "gru_no_bias": (lambda: Recurrent("GRU", bias=False), ["- gru: {hidden: 16, bias: false, id: rnn}"]),
    "lstm_bidirectional_2": (lambda: Recurrent("LSTM", layers=2, bidirectional=True),
                             ["- lstm: {hidden: 16, layers: 2, bidirectional: true, id: rnn}"]),
    "gru_bidirectional_3_last": (lambda: Recurrent("GRU", layers=3, bidirectional=True, output="last"),
                                 ["- gru: {hidden: 16, layers: 3, bidirectional: true, output: last, id: rnn}"]),
    "lstm_then_gru": (Chained, ["- lstm: {hidden: 16, id: encoder}",
                                "- gru: {hidden: 12, bidirectional: true, id: decoder}"]),
    # both outputs read: the final states are taken from the sequence (the same values)
    "gru_both": (lambda: Both("GRU"), ["- gru: {hidden: 16, id: rnn}", "- select: {dim: 0, index: -1, id: rnn_last}",
                                       "outputs: [rnn, rnn_last]"]),
    "lstm_bidirectional_both": (lambda: Both("LSTM", layers=2, bidirectional=True), [
        "- lstm: {hidden: 16, layers: 2, bidirectional: true, id: rnn}",
        "- select: {dim: 0, index: -1, id: rnn_end}", "- slice: {dim: 0, end: 16, id: rnn_forward}",
        "- select: {dim: 0, index: 0, from: rnn, id: rnn_start}", "- slice: {dim: 0, start: 16, id: rnn_backward}",
        "- concat: {from: [rnn_forward, rnn_backward], id: rnn_last}", "outputs: [rnn, rnn_last]"]),
}


def check(module, path, result):
    """onnxruntime's values, torch's, torch's parameter names and count."""
    assert max_diff(path, result) <= 1e-5
    built = archc.build(str(result.spec_path), seed=1).eval()
    assert archc.load_weights(built, str(result.weights_path)).ok
    assert list(dict(built.named_parameters())) == list(dict(module.named_parameters()))
    assert result.graph.summary.total_params == sum(p.numel() for p in module.parameters())
    for batch in (1, 3):
        x = torch.randn(batch, L, D)
        with torch.no_grad():
            torch.testing.assert_close(built(x), module(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", list(CASES))
def test_recurrent_module_imports_as_archc_layers(case, tmp_path):
    make, expected = CASES[case]
    torch.manual_seed(0)
    module = make().eval()
    export(module, tmp_path / "m.onnx")
    from archc.importers import import_onnx

    r = import_onnx(tmp_path / "m.onnx", tmp_path / "m.yaml")
    assert layer_lines(r.text) == expected
    check(module, tmp_path / "m.onnx", r)


def test_dynamo_exporters_layout_is_recognised(tmp_path):
    # dynamo reshapes the bidirectional sequence with a target computed by Shape→Slice→Mul,
    # and makes the zero initial states with Expand
    torch.manual_seed(0)
    module = Recurrent("GRU", layers=2, bidirectional=True, output="last").eval()
    export(module, tmp_path / "m.onnx", dynamo=True)
    from archc.importers import import_onnx

    r = import_onnx(tmp_path / "m.onnx", tmp_path / "m.yaml")
    assert [line.split(", id:")[0] for line in layer_lines(r.text)] == [
        "- gru: {hidden: 16, layers: 2, bidirectional: true, output: last"]
    check(module, tmp_path / "m.onnx", r)


# ---------------------------------------------------------------------------- refused variants

H = 4


def lstm_model(attrs=None, extra_inputs=(), extra_inits=(), op="LSTM", outputs=("y", "y_h"), read="y_h",
               shapes=None):
    """x [B, L, D] -> Transpose -> one LSTM / GRU node -> Squeeze of Y_h ([B, H]) or other reads;
    ``shapes``: other shapes for W, R or B (a malformed file)."""
    gates = 4 if op == "LSTM" else 3
    shapes = {"W": (1, gates * H, D), "R": (1, gates * H, H), "B": (1, 2 * gates * H)} | (shapes or {})
    inits = [tensor(name, *shapes[name]) for name in ("W", "R", "B")]
    inits += list(extra_inits)
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node(op, ["xt", "W", "R", "B", *extra_inputs], list(outputs), name="rnn/cell",
                              hidden_size=H, **(attrs or {})),
             helper.make_node("Squeeze", [read, "zero"], ["out"])]
    inits.append(helper.make_tensor("zero", 7, [1], [0]))
    return model(nodes, [L, D], "out", inits)


REFUSED = {
    "clip": (dict(attrs={"clip": 3.0}), "node 'rnn/cell' (LSTM): it clips its cell input to ±3 — archc would "
             "need an lstm with clipping"),
    "activations": (dict(attrs={"activations": ["Sigmoid", "Relu", "Tanh"]}),
                    "its activations are ['Sigmoid', 'Relu', 'Tanh'] — archc would need an lstm with other "
                    "activations (archc's are torch's: Sigmoid, Tanh, Tanh)"),
    "reverse": (dict(attrs={"direction": "reverse"}), "it reads the sequence backwards only (direction "
                "reverse) — archc would need a backward-only lstm (archc's is forward or bidirectional)"),
    "unknown_direction": (dict(attrs={"direction": "sideways"}), "node 'rnn/cell' (LSTM): its direction is "
                          "'sideways' — archc would need a forward or bidirectional lstm"),
    "w_rows": (dict(shapes={"W": (1, 3 * H, D)}), "its W input has shape [1, 12, 8] — archc would need W of "
               "shape [1, 16, input width]"),
    "w_width": (dict(shapes={"W": (1, 4 * H, D + 1)}), "its W input has shape [1, 16, 9] for inputs 8 wide — "
                "archc would need W of shape [1, 16, 8]"),
    "b_shape": (dict(shapes={"B": (1, 2, 4 * H)}), "its B input has shape [1, 2, 16] — archc would need B of "
                "shape [1, 32]"),
    "gru_before_reset": (dict(op="GRU"), "node 'rnn/cell' (GRU): it applies the reset gate before the recurrent "
                         "product (linear_before_reset=0) — archc would need a gru of that variant (archc's "
                         "is torch's nn.GRU: linear_before_reset=1)"),
    "initial_state": (dict(extra_inputs=["", "h0"], extra_inits=[tensor("h0", 1, 1, H)]),
                      "it starts from a given hidden state (input 5) — archc would need an lstm with initial "
                      "states (archc's start from zeros)"),
    "cell_state": (dict(outputs=("y", "y_h", "y_c"), read="y_c"),
                   "the graph reads its outputs as 'out' [None, 4], which is neither the sequence of hidden "
                   "states nor the final hidden state (or reads the cell state)"),
    "batch_major": (dict(attrs={"layout": 1}), "it is batch-major (layout=1) — archc would need a time-major "
                    "node (layout=0, what torch.onnx writes)"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_unsupported_recurrent_node_is_a_located_error(case, tmp_path):
    kwargs, message = REFUSED[case]
    with pytest.raises(SpecErrors) as info:
        imported(lstm_model(**kwargs), tmp_path)
    assert message in str(info.value)
    # said once, at the node: not again as the batch-axis errors of the Transpose and Squeeze around it
    assert len(info.value.errors) == 1, str(info.value)
    assert not (tmp_path / "m.yaml").exists()


def test_zero_initial_state_is_the_default(tmp_path):
    # zeros of the batch's size, made as exporters make them (ConstantOfShape of [1, B, H]),
    # are what archc's lstm starts from
    m = lstm_model(extra_inputs=["", "h0", "h0"])
    nodes = [helper.make_node("Shape", ["x"], ["b"], start=0, end=1),
             helper.make_node("Concat", ["one", "b", "h"], ["size"], axis=0),
             helper.make_node("ConstantOfShape", ["size"], ["h0"])] + list(m.graph.node)
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    m.graph.initializer.extend([helper.make_tensor("one", 7, [1], [1]), helper.make_tensor("h", 7, [1], [H])])
    path, r = imported(m, tmp_path)
    assert layer_lines(r.text) == ["- lstm: {hidden: 4, output: last, id: rnn}"]
    assert max_diff(path, r) <= 1e-5
