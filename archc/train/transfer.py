"""Transfer learning: start from other weights (``--init-from``) and freeze layers (``--freeze``).

``init_from`` loads an archc checkpoint (``best.pt``/``last.pt`` of a run, or the
state_dict ``archc compile -o model.pt`` writes). Tensors are matched by name and shape:
a spec that replaced the head (another ``linear`` output size) keeps every other layer's
weights and starts its new head fresh; what was skipped is reported. A state_dict from
elsewhere (torchvision, a hand-written module) whose names are not archc's goes through
the torch backend's weight mapping, ``archc.load_weights`` (pairs by order and shape; the
hook is :func:`_foreign`).

``freeze`` takes node names or globs (fnmatch) of the spec's ids: ``c1``, ``layer1.*``,
``features.*``; a block instance freezes every layer inside it. Frozen parameters get
``requires_grad = False`` and are left out of the optimizer.
"""

from __future__ import annotations

import fnmatch

import torch

from archc.train import checkpoint as ckpt
from archc.train.errors import TrainError


def init_from(model: torch.nn.Module, path: str, say=print) -> dict:
    """Load matching tensors of ``path`` into ``model``; returns {"loaded", "skipped", "missing"}."""
    state = ckpt.model_state(ckpt.load(path))
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise TrainError(f"{path}: holds no state_dict", "give a checkpoint written by archc train or torch.save")
    own = model.state_dict()
    if not (set(state) & set(own)):
        return _foreign(model, state, path, say)
    loaded = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(k for k in state if k in own and own[k].shape != state[k].shape)
    missing = sorted(k for k in own if k not in loaded)
    if not loaded:
        raise TrainError(f"{path}: no tensor matches the network by name and shape",
                         "is it a checkpoint of this spec (or one that shares its layers)?")
    model.load_state_dict(loaded, strict=False)
    say(f"init-from {path}: {len(loaded)} tensors loaded"
        + (f", {len(skipped)} of another shape left fresh ({', '.join(skipped[:4])})" if skipped else "")
        + (f", {len(missing)} not in the file left fresh" if missing else ""))
    return {"loaded": sorted(loaded), "skipped": skipped, "missing": missing}


def _foreign(model, state: dict, path: str, say) -> dict:
    """Names that are not archc's (torchvision, a hand-written module): the torch backend's
    weight mapping pairs them by order and shape (archc/backends/torch/weights.py)."""
    try:
        from archc.backends.torch.weights import WeightsError, load_weights, refusal
    except ImportError:  # an archc without the mapping: archc checkpoints only
        raise TrainError(f"{path}: its tensor names are not this network's (e.g. {next(iter(state), '?')!r})",
                         "give an archc checkpoint") from None
    try:
        report = load_weights(model, state, strict=False)
    except WeightsError as exc:
        raise TrainError(refusal(exc, f"--init-from {path}")) from None
    loaded = sorted(p.target for p in report.pairs)
    if not loaded:
        raise TrainError(f"{path}: no tensor of the file fits the network by name, order or shape")
    say(f"init-from {path}: {len(loaded)} tensors loaded by the weight mapping (order and shape)")
    return {"loaded": loaded, "skipped": [], "missing": sorted(set(model.state_dict()) - set(loaded))}


def freeze(model: torch.nn.Module, patterns, say=print) -> list[str]:
    """Freeze every module whose name matches one of ``patterns`` (names or globs);
    returns the frozen parameter names. A pattern that matches nothing is an error."""
    names = [n for n, _ in model.named_modules() if n]
    frozen = []
    for pattern in patterns:
        hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            import difflib

            close = difflib.get_close_matches(pattern, names, n=3)
            raise TrainError(f"--freeze {pattern!r} matches no layer",
                             ("did you mean " + ", ".join(close) + "?") if close else
                             "layer names: " + ", ".join(names[:12]) + (" ..." if len(names) > 12 else ""))
        for n in hits:
            for pname, p in model.get_submodule(n).named_parameters():
                p.requires_grad_(False)
                frozen.append(f"{n}.{pname}")
    frozen = sorted(set(frozen))
    say(f"frozen: {len(frozen)} tensors ({sum(model.get_parameter(f).numel() for f in frozen):,} parameters)")
    return frozen
