"""What an exported file says about itself (ONNX ``metadata_props``), written by export and
read back by :class:`~archc.backends.onnx.runtime.OnnxModel` and ``archc infer``.

Keys (values are text; JSON where structured)::

    archc.version      archc's version
    archc.spec.name    the network's name          archc.spec.hash   its spec hash
    archc.inputs       [{"name", "shape", "layout"}]   shape with "batch" first when dynamic
    archc.outputs      [{"name", "shape", "layout", "op"}]  op: the spec op computing it
                       (softmax: probabilities; log_softmax: log-probabilities)
    archc.task         train.task, when the spec has one
    archc.classes      JSON list of class names (train.data.classes), when known
    archc.normalize    JSON {"mean": [...], "std": [...]} for image inputs, when known
"""

from __future__ import annotations

import json

LAYOUTS = {1: "NC", 2: "NCL", 3: "NCHW"}  # by rank without the batch


def tensor_entry(name: str, shape, dynamic: bool, batch: int) -> dict:
    return {"name": name, "shape": ["batch" if dynamic else batch, *shape],
            "layout": LAYOUTS.get(len(shape), "N" + "?" * len(shape))}


def output_op(graph, name: str) -> str:
    """The op that computed the values of node ``name``, looking through ops that pass
    values on unchanged at inference (a dropout after a softmax still gives probabilities)."""
    from archc.ops.registry import get_op

    node = graph.node(name)
    while get_op(node.op).passes_values and node.inputs[0] != "input":
        node = graph.node(node.inputs[0])
    return node.op


def metadata(graph, input_name: str, dynamic: bool, batch: int, extra: dict | None = None) -> dict[str, str]:
    """The metadata of ``graph``'s export; ``extra`` adds known ``classes``/``normalize``."""
    import archc

    ins = [tensor_entry(input_name, graph.input_shape, dynamic, batch)]
    outs = [tensor_entry(o, graph.shape_of(o), dynamic, batch) | {"op": output_op(graph, o)}
            for o in graph.outputs]
    props = {"archc.version": archc.__version__, "archc.spec.name": str(graph.name),
             "archc.spec.hash": str(graph.spec_hash), "archc.inputs": json.dumps(ins),
             "archc.outputs": json.dumps(outs)}
    train = graph.train if isinstance(graph.train, dict) else {}
    if isinstance(train.get("task"), str):
        props["archc.task"] = train["task"]
    known = train_data(train) | (extra or {})
    for key in ("classes", "normalize"):
        if known.get(key):
            props[f"archc.{key}"] = json.dumps(known[key])
    return props


def train_data(train: dict) -> dict:
    """classes and an explicit {mean, std} from train.data (``normalize: true`` is computed
    from the training data at train time: only a run's config.json knows the numbers)."""
    data = train.get("data") if isinstance(train.get("data"), dict) else {}
    out = {}
    if isinstance(data.get("classes"), list):
        out["classes"] = [str(c) for c in data["classes"]]
    norm = data.get("normalize")
    if isinstance(norm, dict) and "mean" in norm and "std" in norm:
        out["normalize"] = {"mean": list(norm["mean"]), "std": list(norm["std"])}
    return out


def read(model) -> dict:
    """The archc metadata of a loaded ModelProto (or an onnxruntime ModelMetadata's
    custom_metadata_map), JSON values decoded; {} for a file archc did not write."""
    props = getattr(model, "custom_metadata_map", None)
    if props is None:
        props = {p.key: p.value for p in model.metadata_props}
    out = {}
    for key, value in props.items():
        if key.startswith("archc."):
            try:
                out[key[6:]] = json.loads(value) if key[6:] in ("inputs", "outputs", "classes", "normalize") else value
            except ValueError:
                out[key[6:]] = value
    return out
