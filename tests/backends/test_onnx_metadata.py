"""What `archc infer` reads in a network and in an exported file's metadata: which op made the
output, where the weights came from, class names, normalisation (torch- and onnx-free)."""

import pytest

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
    graph = archc.loads(SPEC.replace("{last}", "softmax"))
    assert graph.node(graph.outputs[0]).op == "flatten"
    assert output_op(graph, graph.outputs[0]) == "softmax"


def test_logits_behind_a_dropout_are_still_logits():
    graph = archc.loads(SPEC.replace("{last}", "relu"))
    assert output_op(graph, graph.outputs[0]) == "relu"


def test_probabilities_are_not_softmaxed_twice():
    import numpy as np

    probs = np.array([[0.7, 0.2, 0.1, 0.0]])
    out, how = probabilities(probs, "softmax")
    assert np.allclose(out, probs) and "own softmax" in how
    out, how = probabilities(probs, "relu")
    assert not np.allclose(out, probs) and "applied" in how


# -- what an exported file says about its weights, classes and preprocessing --------------

class Meta:
    """Stands for onnxruntime's ModelMetadata: only custom_metadata_map is read."""

    def __init__(self, **props):
        self.custom_metadata_map = {f"archc.{k}": v for k, v in props.items()}


def test_well_formed_metadata_is_decoded():
    from archc.backends.onnx.metadata import read_checked

    meta, problems = read_checked(Meta(
        classes='["cat", "dog"]', normalize='{"mean": [0.5], "std": [0.25]}', task="classify",
        weights='{"source": "checkpoint", "path": "runs/a/best.pt", "epoch": 3}'))
    assert problems == []
    assert meta == {"classes": ["cat", "dog"], "normalize": {"mean": [0.5], "std": [0.25]}, "task": "classify",
                    "weights": {"source": "checkpoint", "path": "runs/a/best.pt", "epoch": 3}}


@pytest.mark.parametrize("key, value, why", [
    ("classes", "cat, dog", "Expecting value"),                       # not JSON
    ("classes", '{"0": "cat"}', "a JSON list of class names"),
    ("classes", "[]", "a JSON list of class names"),
    ("normalize", '{"mean": [0.5]}', "lists of numbers of the same length"),
    ("normalize", '{"mean": [0.5, 0.5], "std": [0.2]}', "lists of numbers of the same length"),
    ("normalize", '{"mean": [0.5], "std": [0]}', "every std must be above 0"),
    ("normalize", '{"mean": ["a"], "std": [1]}', "lists of numbers"),
    ("normalize", '[0.5, 0.25]', '{"mean": [...], "std": [...]}'),
    ("weights", '{"source": "magic"}', '"init" or "checkpoint"'),
    ("weights", '{"source": "init", "seed": "zero"}', "seed must be an integer"),
    ("weights", '{"source": "checkpoint", "epoch": 2.5}', "epoch must be an integer"),
    ("outputs", '"fc"', 'a JSON list of {"name"'),
])
def test_malformed_metadata_is_left_out_with_a_reason(key, value, why):
    from archc.backends.onnx.metadata import read_checked

    meta, problems = read_checked(Meta(**{key: value, "spec.name": "net"}))
    assert meta == {"spec.name": "net"}  # the rest of the file's metadata is kept
    assert len(problems) == 1
    assert problems[0].startswith(f"ignored malformed metadata archc.{key} (") and why in problems[0]


def test_weights_in_words():
    from archc.backends.onnx.metadata import weights_line

    assert weights_line({"source": "init", "seed": 0}) == "the spec's initialisation, seed 0"
    assert weights_line({"source": "checkpoint", "path": "r/best.pt", "epoch": 4}) == "r/best.pt (epoch 4)"
    assert weights_line({"source": "checkpoint", "path": "w.safetensors"}) == "w.safetensors"
    assert weights_line(None) == ""
