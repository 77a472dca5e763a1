"""A checkpoint that almost fits LeNet-5, and what every refusal must say about it
(tests/backends/test_torch_weights.py for archc.load_weights, tests/test_cli.py for the
commands that read --weights)."""

from __future__ import annotations

import torch

import archc


def near_lenet5(path):
    """LeNet-5's weights with a 5-class head, c5.bias misspelt c5.b1as, f6 renamed fc6 (pairs
    by order and shape) and an extra aux.weight: what does not fit is known by hand."""
    out = {}
    for k, v in archc.build("lenet5", seed=0).state_dict().items():
        v = v[:5].clone() if k.startswith("output.") else v
        k = {"c5.bias": "c5.b1as"}.get(k, k.replace("f6.", "fc6."))
        out[k] = v
    torch.save(out | {"aux.weight": torch.zeros(3, 3)}, path)
    return path


NEAR_MISFIT = ("does not fit this network: 2 shape conflicts (network vs weights: output.weight (10, 84) vs "
               "output.weight (5, 84), output.bias (10,) vs output.bias (5,)); 1 network tensor without a source "
               "(c5.bias (120,) [did you mean c5.b1as (120,)?]); 2 tensors of the weights not used (c5.b1as (120,) "
               "[did you mean c5.bias (120,)?], aux.weight (3, 3)); 7 paired — give the weights of a run of this "
               "spec; another model's load through archc.load_weights(model, FILE, mapping=...) (docs/weights.md)")

