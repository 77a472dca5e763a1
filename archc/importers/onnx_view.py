"""``archc validate MODEL.onnx`` and ``archc graph MODEL.onnx``: the report table and the
picture of a model archc did not write (issue 10.5, the Netron use case with archc's
shapes, MACs and receptive fields). The file goes through the importer in memory —
nothing is written — and the commands then treat the imported network as any spec's.
"""

from __future__ import annotations

from archc.errors import Pos, SpecErrors

SUFFIX = ".onnx"


def is_onnx(target) -> bool:
    """Whether a command-line target names an ONNX file (by its suffix, as ``archc diff``)."""
    return str(target).lower().endswith(SUFFIX)


def onnx_graphs(path, overrides: dict | None = None, preset=None, network=None) -> list:
    """The one analysed network of the ONNX file ``path``, as :func:`archc.load_all` gives
    a spec's. An imported model has fixed sizes and no variables, presets or named
    networks, so ``--set``, ``--preset`` and ``:NETWORK`` are errors that say so."""
    from archc.importers.onnx import onnx_to_spec

    asked = [what for what, given in (("--set", overrides), ("--preset", preset), (f":{network}", network))
             if given]
    if asked:
        raise SpecErrors.one(f"{' and '.join(asked)} given for an ONNX model", Pos(str(path)),
                             fix="an imported model has fixed sizes and no variables, presets or named "
                                 "networks: `archc import` it to a spec and edit that")
    graph = onnx_to_spec(path).graph
    # the report names the model, and no layer has a line in a file: the spec text was never written
    graph.file = str(path)
    for node in graph.nodes:
        node.pos = None
    return [graph]
