"""Which op made a network's output, as `archc infer` reads it (torch- and onnx-free)."""

import archc
from archc.backends.onnx.inputs import probabilities
from archc.backends.onnx.metadata import output_op

SPEC = """archc: 1
input: [8]
layers:
  - linear: {out: 4}
  - {last}
  - dropout: {p: 0.1}
  - flatten
"""


def test_output_op_looks_through_value_passing_ops():
    graph = archc.load(SPEC.replace("{last}", "softmax"))
    assert graph.node(graph.outputs[0]).op == "flatten"
    assert output_op(graph, graph.outputs[0]) == "softmax"


def test_logits_behind_a_dropout_are_still_logits():
    graph = archc.load(SPEC.replace("{last}", "relu"))
    assert output_op(graph, graph.outputs[0]) == "relu"


def test_probabilities_are_not_softmaxed_twice():
    import numpy as np

    probs = np.array([[0.7, 0.2, 0.1, 0.0]])
    out, how = probabilities(probs, "softmax")
    assert np.allclose(out, probs) and "own softmax" in how
    out, how = probabilities(probs, "relu")
    assert not np.allclose(out, probs) and "applied" in how
