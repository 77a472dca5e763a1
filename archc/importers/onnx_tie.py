"""Tied weights found again: a linear layer whose weight is an embedding's table.

A language model's output projection often shares the token embedding's table (GPT-2's
``lm_head`` and ``wte``; archc's ``tie:``). An exported graph holds the table once, read by
the Gather, and its transpose (folded to a second constant) read by the MatMul; imported
as they are, the two layers would count the table twice. A linear weight equal, value for
value, to an embedding's table is taken as tied to it. Tables of one repeated value are
left alone: exporters share equal constants (all-ones norms, zero biases) whether or not
the model tied them, and a fresh constant table says nothing about the model.
"""

from __future__ import annotations

import numpy as np

from archc.importers.onnx_table import Layer


def tie_weights(layers: list[Layer]) -> None:
    """Mark each linear layer whose weight equals an earlier embedding's table as tied to
    it (``layer.tie``); the weights file keeps the tensor under both names, as torch's
    state_dict of a tied model does."""
    tables = [layer for layer in layers if layer.op == "embedding"]
    for layer in layers:
        w = layer.tensors.get("weight") if layer.op == "linear" else None
        if w is None or np.ptp(w) == 0:
            continue
        same = next((t for t in tables if t.tensors["weight"].shape == w.shape
                     and np.array_equal(t.tensors["weight"], w)), None)
        if same is not None and layers.index(same) < layers.index(layer):
            layer.tie = same.output
