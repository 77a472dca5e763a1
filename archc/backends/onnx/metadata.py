"""What an exported file says about itself (ONNX ``metadata_props``), written by export and
read back by :class:`~archc.backends.onnx.runtime.OnnxModel` and ``archc infer``.

Keys (values are text; JSON where structured)::

    archc.version      archc's version
    archc.spec.name    the network's name          archc.spec.hash   its spec hash
    archc.inputs       [{"name", "shape", "layout"}]   shape with "batch" first when dynamic
    archc.outputs      [{"name", "shape", "layout", "op"}]  op: the spec op computing it
                       (softmax: probabilities; log_softmax: log-probabilities)
    archc.task         train.task, when the spec has one
    archc.train        JSON: the spec's train section as written, when it has one (``archc
                       evaluate M.onnx`` finds the data source, split and metrics there)
    archc.precision    "int8" or "fp16" in a file written by ``archc export --quantize``
                       (absent: fp32)
    archc.classes      JSON list of class names (train.data.classes, or the training run's
                       data source), when known
    archc.normalize    JSON {"mean": [...], "std": [...]} for image inputs, when known
    archc.weights      JSON: where the weights came from, either
                       {"source": "init", "seed": 0}  (the spec's initialisation: untrained), or
                       {"source": "checkpoint", "path": "runs/x/best.pt", "epoch": 12}
                       (epoch: finished epochs, when the checkpoint records it)

A file written elsewhere, or edited by hand, may carry any text under these keys:
:func:`read_checked` keeps what has the expected form and names what it dropped, so that
``archc infer`` warns and goes on instead of failing on someone else's metadata.
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
    """The metadata of ``graph``'s export; ``extra`` adds known ``classes``/``normalize``
    and the ``weights`` origin."""
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
    if train:
        props["archc.train"] = json.dumps(train, default=str)  # YAML dates etc. as text
    known = train_data(train) | (extra or {})
    for key in ("classes", "normalize", "weights"):
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


JSON_KEYS = ("inputs", "outputs", "classes", "normalize", "weights", "train")


def read(model) -> dict:
    """The archc metadata of a loaded ModelProto (or an onnxruntime ModelMetadata's
    custom_metadata_map), JSON values decoded, malformed entries left out; {} for a file
    archc did not write."""
    return read_checked(model)[0]


def read_checked(model) -> tuple[dict, list[str]]:
    """(the archc metadata, one line per entry left out because it has not the form archc
    writes). Never raises on the values: they may come from anywhere."""
    props = getattr(model, "custom_metadata_map", None)
    if props is None:
        props = {p.key: p.value for p in model.metadata_props}
    out, problems = {}, []
    for key, value in props.items():
        if not key.startswith("archc."):
            continue
        name = key[6:]
        if name not in JSON_KEYS:
            out[name] = value
            continue
        try:
            decoded = _CHECKS[name](json.loads(value))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            problems.append(f"ignored malformed metadata {key} ({exc})")
            continue
        out[name] = decoded
    return out, problems


def _tensors(value):
    if not isinstance(value, list) or not all(isinstance(v, dict) and isinstance(v.get("name"), str)
                                              for v in value):
        raise ValueError('expected a JSON list of {"name", "shape", ...}')
    return value


def _classes(value):
    if not isinstance(value, list) or not value or not all(isinstance(c, (str, int)) for c in value):
        raise ValueError("expected a JSON list of class names")
    return [str(c) for c in value]


def _normalize(value):
    """{mean, std}: lists of numbers of one length, every std above 0."""
    import math

    if not isinstance(value, dict):
        raise ValueError('expected {"mean": [...], "std": [...]}')
    mean, std = value.get("mean"), value.get("std")
    numbers = lambda v: isinstance(v, list) and v and all(  # noqa: E731
        isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)
    if not (numbers(mean) and numbers(std) and len(mean) == len(std)):
        raise ValueError("mean and std must be lists of numbers of the same length")
    if min(std) <= 0:
        raise ValueError("every std must be above 0")
    return {"mean": [float(x) for x in mean], "std": [float(x) for x in std]}


def _weights(value):
    if not isinstance(value, dict) or value.get("source") not in ("init", "checkpoint"):
        raise ValueError('expected {"source": "init" or "checkpoint", ...}')
    for field, kind in (("seed", int), ("epoch", int), ("path", str)):
        if value.get(field) is not None and (not isinstance(value[field], kind) or isinstance(value[field], bool)):
            raise ValueError(f"{field} must be {'an integer' if kind is int else 'text'}")
    return value


def _train(value):
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object (the spec's train section)")
    return value


_CHECKS = {"inputs": _tensors, "outputs": _tensors, "classes": _classes,
           "normalize": _normalize, "weights": _weights, "train": _train}


def checked(name: str, value):
    """``value`` in the form archc writes under ``archc.<name>``, or None when it has not."""
    try:
        return _CHECKS[name](value)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def weights_line(weights: dict | None) -> str:
    """Where the weights came from, in words ("" when the file does not say)."""
    if not weights:
        return ""
    if weights["source"] == "init":
        seed = weights.get("seed")
        return f"the spec's initialisation, {'seed ' + str(seed) if seed is not None else 'no seed'}"
    epoch = weights.get("epoch")
    return f"{weights.get('path') or 'a checkpoint'}" + (f" (epoch {epoch})" if epoch is not None else "")
