"""What a training step really holds, measured with torch (the reference of archc's memory plan).

``saved_bytes`` runs one forward in training mode under
``torch.autograd.graph.saved_tensors_hooks`` and adds up the storages of the tensors autograd
keeps for backward, each storage once (a ReLU's output that the next convolution also keeps
is one storage), leaving out the model's own parameters and buffers (counted apart).
``state_bytes`` runs one optimisation step and reads the sizes of the parameters, their
gradients and the optimizer's state tensors.
"""

from __future__ import annotations

import torch

from archc.backends.torch.build import build, example_input


def _storage_key(t: torch.Tensor) -> int:
    return t.untyped_storage()._cdata  # the StorageImpl: views of one tensor share it


def saved_bytes(model: torch.nn.Module, x: torch.Tensor) -> tuple[int, dict]:
    """(bytes, {storage: bytes}) of what autograd saves for backward in one forward of
    ``model`` on ``x``; parameters and buffers left out."""
    own = {_storage_key(t) for t in [*model.parameters(), *model.buffers()]}
    kept: dict[int, int] = {}

    def pack(t):
        key = _storage_key(t)
        if key not in own:
            kept[key] = t.untyped_storage().nbytes()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    del out
    return sum(kept.values()), kept


def measure_graph(graph, batch: int, seed: int = 0, input_grad: bool = False) -> int:
    """Saved bytes of ``graph``'s module at ``batch`` (``input_grad``: the input requires
    grad, as a layer's input inside a network does)."""
    model = build(graph, seed=seed)
    x = example_input(graph, batch, seed)
    if input_grad and x.is_floating_point():
        x.requires_grad_(True)
    return saved_bytes(model, x)[0]
