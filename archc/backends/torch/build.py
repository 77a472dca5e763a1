"""Spec -> an ``nn.Module`` in this process: generate the source, compile it, instantiate.

Why compiling generated source is safe: the text compiled here is produced by
:mod:`archc.backends.torch.codegen` from an analysed graph, never taken from the user.
Every name in it was checked to be a plain identifier that is neither a keyword nor an
nn.Module attribute, every attribute value is a checked number, boolean, tuple or enum
word rendered by the op's own class, and the spec's free text (its name, its file) only
appears inside ``repr()``-quoted comments. The code runs in a fresh module namespace
that holds nothing but what its own imports bring (torch).

Doing it this way (rather than wiring modules together per call) makes ``forward`` the
straight-line code a person would write, at the cost of a hand-written module.
"""

from __future__ import annotations

import hashlib
import linecache
import types

import torch

from archc.analysis.budget import check_build
from archc.backends.torch.codegen import as_graph, class_name, generate, generate_source, model_class  # noqa: F401

_CLASSES: dict[str, type] = {}  # source hash -> compiled class (building twice is cheap)
_GRAPHS: dict[type, object] = {}  # compiled class -> its graph (feature_extractor of a model)


def compile_source(source: str, name: str) -> type:
    """Execute generated ``source`` as a fresh module and return its class ``name``.

    The source is registered with linecache so tracebacks and ``inspect`` show its lines."""
    key = hashlib.sha256(source.encode()).hexdigest()
    if key not in _CLASSES:
        filename = f"<archc:{name}:{key[:12]}>"
        module = types.ModuleType(f"archc_generated_{name}_{key[:12]}")
        module.__file__ = filename
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        exec(compile(source, filename, "exec"), module.__dict__)  # generated, see module doc
        _CLASSES[key] = getattr(module, name)
    return _CLASSES[key]


def build(spec=None, network=None, overrides=None, preset=None, seed=None, init=None, *,
          text: str | None = None, return_all: bool = False, outputs=None) -> torch.nn.Module:
    """Build the PyTorch module of a spec.

    ``spec`` is a path (``"specs/dcgan.yaml:generator"``), a zoo name (``"resnet18"``) or
    a Graph from :func:`archc.load`; ``text=`` is the YAML text of a spec instead (a string
    given as ``spec`` is always a path or a zoo name). ``overrides`` and ``preset`` act as
    ``--set`` and ``--preset``. ``init`` is the network's default initialisation
    (otherwise the spec's ``train.init``; per-layer ``init:`` keys always apply), see
    docs/python-api.md. ``seed`` makes the initial weights reproducible without touching
    the global random state (default: the spec's ``train.seed``, else the global state).
    ``outputs`` (ids of ``archc validate``'s report: ``["layer3", "layer4.1.relu_2"]``)
    makes forward return a dict id -> tensor of those layers, as torchvision's
    ``create_feature_extractor`` does; see :func:`feature_extractor`.

    >>> import torch, archc
    >>> model = archc.build(text="archc: 1\\ninput: [4]\\nlayers:\\n  - linear: {out: 2}\\n", seed=0)
    >>> model(torch.zeros(3, 4)).shape
    torch.Size([3, 2])
    """
    graph = as_graph(spec, network, overrides, preset, text=text)
    check_build(graph)  # weights larger than the memory available: refused before allocating
    source = generate(graph, init, return_all, outputs=outputs)
    cls = compile_source(source, model_class(graph))
    _GRAPHS[cls] = graph
    train = graph.train if isinstance(graph.train, dict) else {}
    if seed is None and isinstance(train.get("seed"), int):
        seed = train["seed"]
    if seed is None:
        return cls()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls()


def feature_extractor(model_or_spec, ids, **build_args) -> torch.nn.Module:
    """A module whose forward returns ``{id: tensor}`` for the layers ``ids`` (ids of
    ``archc validate``'s report; a block instance's id gives the block's output), computing
    only what they need — torchvision's ``create_feature_extractor`` for archc networks.

    ``model_or_spec`` is a module made by :func:`build` (the extractor shares its
    parameters and buffers: weights loaded into it are used, and its train/eval mode is
    copied) or anything :func:`build` takes, built with ``build_args``. An unknown id
    raises ValueError naming the closest ids.

    >>> import torch, archc
    >>> model = archc.build("lenet5", seed=0)
    >>> features = archc.feature_extractor(model, ["c3", "f6"])
    >>> {k: tuple(v.shape) for k, v in features(torch.zeros(2, 1, 32, 32)).items()}
    {'c3': (2, 16, 5, 5), 'f6': (2, 84)}
    """
    if not isinstance(model_or_spec, torch.nn.Module):
        return build(model_or_spec, outputs=ids, **build_args)
    if build_args:
        raise TypeError(f"{', '.join(build_args)} apply to a spec, not to a built module")
    graph = _GRAPHS.get(type(model_or_spec))
    if graph is None:
        raise TypeError(f"{type(model_or_spec).__name__} was not made by archc.build in this process: "
                        "pass the spec (a path, a zoo name or archc.loads(text)) and load the weights into the result")
    cls = compile_source(generate(graph, outputs=ids), model_class(graph))
    _GRAPHS[cls] = graph
    extractor = cls.__new__(cls)  # not cls(): no new weights, the model's own modules below
    torch.nn.Module.__init__(extractor)
    for name, child in model_or_spec.named_children():
        extractor.add_module(name, child)
    extractor.training = model_or_spec.training  # not .train(): the shared children keep their modes
    return extractor


def example_input(graph, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """A random input batch for ``graph``: standard normal floats, or token ids drawn
    uniformly below the input's vocabulary (``graph.id_limit()``) for an int64 input.

    >>> import archc
    >>> g = archc.loads("archc: 1\\ninput: {shape: [5], dtype: int64}\\nlayers:\\n  - embedding: {num: 7, dim: 3}\\n")
    >>> example_input(g, batch=2).dtype
    torch.int64
    """
    gen = torch.Generator().manual_seed(seed)
    if graph.input_dtype == "int64":
        return torch.randint(0, graph.id_limit(), (batch, *graph.input_shape), generator=gen)
    return torch.randn(batch, *graph.input_shape, generator=gen)
