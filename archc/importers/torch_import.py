"""``archc.from_torch`` and ``archc import torchvision:NAME``: a torch module becomes a spec.

The path: trace (archc/importers/torch_trace.py, the op table in torch_ops.py), find the
structure (torch_blocks.py), write the spec text, then load it with archc and check that
its parameter and buffer counts are the module's: what is returned validates, and its
tensor names are the module's state_dict keys wherever those are archc ids, so
``archc.load_weights(archc.build(spec), module.state_dict())`` pairs every tensor by name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from archc.errors import Pos, SpecError, SpecErrors
from archc.importers.check import check_weights

BUG = "this is a bug in archc's torch importer; please report it with the module"


@dataclass
class TorchImport:
    """The spec ``text``, the ``weights`` it pairs with (name -> tensor), the analysed
    ``graph``, the number of traced calls and the module's tensors forward never uses."""

    text: str
    weights: dict
    graph: object
    calls: int
    unused: list


def from_torch(module, example_input, name: str | None = None) -> str:
    """The spec text of ``module`` as ``forward`` computes it on ``example_input`` (a batch).

    The module hierarchy becomes blocks (a class used several times with one structure is
    one block with arguments for what differs), the layer ids are the module paths, so the
    module's ``state_dict`` loads by name. Raises SpecErrors naming each module or call
    archc cannot express.

    >>> import archc, torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> text = archc.from_torch(net, torch.randn(1, 4))
    >>> archc.load(text=text).summary.total_params
    58
    """
    return torch_to_spec(module, example_input, name).text


def torch_to_spec(module, example_input, name: str | None = None, source: str | None = None) -> TorchImport:
    import torch

    from archc.importers.torch_blocks import Structure, body_lines, tree
    from archc.importers.torch_render import Renderer
    from archc.importers.torch_trace import ExampleMismatch, TraceFailed, items, trace

    where = Pos(source or f"torch module {type(module).__name__}")
    _check_example(example_input, where, torch)
    was_training = module.training
    module.eval()
    tracer = "torch.fx"
    try:
        try:
            gm = trace(module, example_input)
        except ExampleMismatch:
            raise
        except TraceFailed as exc:  # python control flow fx cannot follow: torch.export may
            gm, tracer = _exported(module, example_input, exc), "torch.export"
        layers, outputs, errors = items(gm)
    except TraceFailed as exc:
        errors, layers = [exc], []
    finally:
        module.train(was_training)
    if errors:
        raise SpecErrors(_grouped(errors, where))
    if not outputs:
        raise SpecErrors.one("forward returns no tensor", where, "", "a forward that returns its result")
    if not layers:
        raise SpecErrors.one("forward computes nothing archc keeps (its output is its input)", where)
    root, scopes = tree(layers, type(module))
    structure = Structure(root, scopes, layers, outputs, tuple(example_input.shape[1:]))
    lines = body_lines(structure.entries(root))
    renamed = _valid_root_ids(lines)
    renderer = Renderer({b.name: b.args for b in structure.blocks})
    index = {e: i for i, e in enumerate(x.output for x in structure.entries(root))}
    out_refs = [o if o == "input" else index[o] for o in outputs]
    name = name or type(module).__name__
    text = _spec(name, type(module).__name__, example_input, structure, renderer, lines, out_refs, len(layers),
                 renamed, tracer)
    weights = {f"{it.path}.{k}": v for it in layers for k, v in it.tensors.items()}
    bare = {it.path for it in layers}  # a tensor read directly is its layer's path (class_token)
    unused = [k for k in module.state_dict() if k not in weights and k not in bare]
    graph = _validated(text, weights, where, torch)
    check_weights(graph, _spec_names(weights, renamed), where, BUG)  # the file written pairs with the spec
    return TorchImport(text, weights, graph, len(gm.graph.nodes), unused)


def _check_example(example, where: Pos, torch) -> None:
    """archc specs read one tensor, batch first: the example must be such a batch."""
    if not isinstance(example, torch.Tensor) or example.ndim < 2:
        what = f"a {example.ndim}-D tensor" if isinstance(example, torch.Tensor) else type(example).__name__
        raise SpecErrors.one(f"the example input is {what}, not a batch", where, "",
                             "one tensor [batch, ...] forward takes (torch.randn(1, 3, 224, 224))")


def _exported(module, example, fx_failed):
    """The graph torch.export gives (archc/importers/torch_export.py), or fx's error with
    export's reason added."""
    from archc.importers.torch_export import ExportFailed, export_graph
    from archc.importers.torch_trace import TraceFailed

    try:
        return export_graph(module, example)
    except ExportFailed as exc:
        raise TraceFailed(fx_failed.where, f"{fx_failed.message}; torch.export cannot either ({exc.reason})",
                          fx_failed.need) from None


def _grouped(errors, where: Pos) -> list[SpecError]:
    """One error per distinct problem: the same unmapped call in every copy of a block is
    said once, with how many more there are."""
    seen: dict = {}
    for e in errors:
        seen.setdefault((e.message, e.need), []).append(e)
    out = []
    for (message, need), same in seen.items():
        more = f" (and {len(same) - 1} more like it)" if len(same) > 1 else ""
        out.append(SpecError(message + more, where, same[0].where, f"archc would need {need}"))
    return out


def _valid_root_ids(lines) -> list[tuple[str, str]]:
    """Top-level ids that are not archc ids (``0`` of an nn.Sequential) made valid; the
    renamed ones are listed, (old, new) (their tensors pair by order, not by name)."""
    from archc.importers.onnx_names import make_ids
    from archc.importers.torch_blocks import valid_id

    bad = [x for x in lines if x.id is not None and not valid_id(x.id)]
    if not bad:
        return []
    fresh = make_ids([x.id.replace("\0", "") for x in bad])
    taken = {x.id for x in lines if x.id is not None and valid_id(x.id)}
    renamed = []
    for x, new in zip(bad, fresh):
        while new in taken:
            new += "_1"
        renamed.append((x.id.replace("\0", ""), new))
        x.id = x.hint = new
    return renamed


def _spec(name, cls_name, example, structure, renderer, lines, out_refs, calls, renamed, tracer) -> str:
    from archc.importers.onnx_spec import _flow

    shape = [int(d) for d in example.shape[1:]]
    ids = not example.dtype.is_floating_point
    head = [f"Imported from torch module {cls_name} by archc.from_torch ({tracer}): {calls} traced nodes, "
            f"{len(structure.blocks)} block{'' if len(structure.blocks) == 1 else 's'}.",
            "Tensor names are the module's state_dict keys: "
            "archc.load_weights(archc.build(SPEC), module.state_dict())."]
    if renamed:
        head.append("Renamed (not archc ids; these pair by order): "
                    + ", ".join(f"{old} -> {new}" for old, new in renamed))
    text = [f"# {h}" for h in head]
    text += ["archc: 1", f"name: {_flow(name)}", f"description: {_flow(f'{cls_name}, imported from PyTorch')}",
             f"input: {_flow({'shape': shape, 'dtype': 'int64'}) if ids else _flow(shape)}"]
    if structure.blocks:
        text.append("blocks:")
        for block in structure.blocks:
            text.append(f"  {block.name}:")
            if block.args:
                text.append(f"    args: {_flow(block.args)}")
            text.append("    layers:")
            text += renderer.render(block.lines, indent="      ")
    text.append("layers:")
    text += renderer.render(lines, out_refs)
    return "\n".join(text) + "\n"


def _spec_names(weights: dict, renamed) -> dict:
    """``weights`` under the spec's names: a renamed top-level id (``0`` -> ``n0``) renames
    the keys it heads; the file written keeps the module's names."""
    if not renamed:
        return weights
    out = {}
    for key, value in weights.items():
        for old, new in renamed:
            if key.startswith(old + "."):
                key = new + key[len(old):]
                break
        out[key] = value
    return out


def _validated(text: str, weights: dict, where: Pos, torch):
    """The spec loaded by archc; its parameter and buffer counts must be the traced tensors'."""
    import archc

    try:
        graph = archc.load(text=text)
    except SpecErrors as exc:
        raise SpecErrors([SpecError(f"the imported spec does not validate: {e.message}", where, e.path, BUG)
                          for e in exc.errors]) from None
    s = graph.summary
    theirs = sum(v.numel() for v in weights.values())
    if s.total_params + s.buffers != theirs:
        raise SpecErrors.one(f"the imported spec has {s.total_params + s.buffers:,} parameters and buffers "
                             f"where the module has {theirs:,}", where, "", BUG)
    return graph


# --------------------------------------------------------------------------- torchvision:NAME

SIZES = {"inception_v3": 299}  # torchvision models whose forward needs another input size


def torchvision_model(name: str):
    """``torchvision.models.NAME(weights=None)`` in eval mode, and an example batch."""
    import torch
    import torchvision

    builders = torchvision.models.list_models(module=torchvision.models)
    if name not in builders:
        import difflib

        close = difflib.get_close_matches(name, builders, n=3, cutoff=0.6)
        fix = ("did you mean " + " or ".join(f"`{c}`" for c in close) + "?" if close else
               f"torchvision.models.list_models(module=torchvision.models) lists its {len(builders)} "
               "(alexnet, resnet50, vit_b_16, …)")
        raise SpecErrors.one(f"torchvision has no classification model {name!r}", Pos(f"torchvision:{name}"),
                             "", fix)
    extra = {"aux_logits": False, "init_weights": False} if name in ("googlenet", "inception_v3") else {}
    model = torchvision.models.get_model(name, weights=None, **extra).eval()
    size = SIZES.get(name, 224)
    return model, torch.zeros(1, 3, size, size)


def import_torchvision(name: str, output, weights_out=None) -> list[str]:
    """``archc import torchvision:NAME``: write the spec (and, with ``weights_out``, the
    module's freshly initialised state_dict); return the report's lines."""
    from archc.importers.onnx import save_weights, weights_path
    from archc.report import numbers as N

    output = Path(output)
    weights_out = weights_path(output, weights_out) if weights_out else None
    model, example = torchvision_model(name)
    r = torch_to_spec(model, example, name=name, source=f"torchvision:{name}")
    output.parent.mkdir(parents=True, exist_ok=True)
    if weights_out:
        save_weights({k: v.numpy() for k, v in r.weights.items()}, weights_out)
    tmp = output.with_name(output.name + ".part")
    tmp.write_text(r.text, encoding="utf-8")
    os.replace(tmp, output)
    s = r.graph.summary
    lines = [f"wrote {output}: {len(r.graph.nodes)} layers from {r.calls} traced nodes, "
             f"{r.text.count(chr(10))} lines, {N.count(s.total_params)} parameters, {N.si(s.macs)} MACs, "
             f"output {N.shape(s.output_shapes[0])}"]
    if weights_out:
        lines.append(f"wrote {weights_out}: {len(r.weights)} tensors (torchvision's initialisation, not trained)")
    if r.unused:
        lines.append(f"note: {len(r.unused)} tensors of the module are not used by forward and not imported: "
                     + ", ".join(r.unused[:4]) + (", …" if len(r.unused) > 4 else ""))
    return lines
