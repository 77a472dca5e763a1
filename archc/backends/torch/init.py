"""Weight initialisation from the spec: parsed, checked, and rendered as ``nn.init`` calls.

Torch-free: this module turns the spec's ``init`` values into a plan (which tensor of which
node gets which ``torch.nn.init`` function with which arguments); the code generator
writes the plan into the generated class's ``init_weights`` method, so a standalone
source file initialises itself exactly as ``archc.build`` does.

Where an initialisation comes from, the first that applies:

1. a layer's own ``init:`` key (any layer with parameters: conv, linear, norms);
2. the network default — ``build(init=...)`` / ``archc compile --init``, else the spec's
   ``train: {init: ...}``. A scheme applies to the layers whose weight is a matrix or a
   kernel (conv2d, conv_transpose2d, linear); norms keep ones and zeros. A mapping from op
   kinds to schemes chooses per kind, norms included;
3. otherwise torch's own default (``reset_parameters`` of each layer).

Forms of a value::

    init: he_normal                                  # the weight; the bias becomes zeros
    init: {name: kaiming_uniform, mode: fan_out, nonlinearity: relu}
    init: {weight: {name: normal, std: 0.02}, bias: zeros}
    train: {init: {conv2d: he_normal, batchnorm2d: {weight: {name: normal, mean: 1.0, std: 0.02}}}}
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from archc.errors import AttrError, Pos, SpecError, SpecErrors
from archc.ops.registry import REQUIRED, Attr, Choice, Float, all_ops, get_op, suggest

_NONLINEARITIES = Choice("relu", "leaky_relu", "linear", "tanh", "sigmoid", "selu", "conv2d")


@dataclass(frozen=True)
class Scheme:
    """One initialiser: the ``torch.nn.init`` function, its options, whether it needs fans."""

    function: str
    options: dict  # option -> Attr (type and default); rendered as keyword arguments
    fan: bool = False  # computes fan_in/fan_out: the tensor needs 2 or more dimensions
    doc: str = ""


SCHEMES: dict[str, Scheme | None] = {
    "default": None,  # torch's own reset_parameters
    "zeros": Scheme("zeros_", {}),
    "ones": Scheme("ones_", {}),
    "constant": Scheme("constant_", {"val": Attr(Float())}),
    "normal": Scheme("normal_", {"mean": Attr(Float(), 0.0), "std": Attr(Float(0), 1.0)}),
    "uniform": Scheme("uniform_", {"a": Attr(Float(), 0.0), "b": Attr(Float(), 1.0)}),
    "trunc_normal": Scheme("trunc_normal_", {"mean": Attr(Float(), 0.0), "std": Attr(Float(0), 1.0),
                                             "a": Attr(Float(), -2.0), "b": Attr(Float(), 2.0)}),
    "kaiming_normal": Scheme("kaiming_normal_", {
        "a": Attr(Float(0), 0.0, "negative slope of a leaky ReLU"),
        "mode": Attr(Choice("fan_in", "fan_out"), "fan_in"),
        "nonlinearity": Attr(_NONLINEARITIES, "relu")}, fan=True),
    "kaiming_uniform": Scheme("kaiming_uniform_", {
        "a": Attr(Float(0), 0.0, "negative slope of a leaky ReLU"),
        "mode": Attr(Choice("fan_in", "fan_out"), "fan_in"),
        "nonlinearity": Attr(_NONLINEARITIES, "relu")}, fan=True),
    "xavier_normal": Scheme("xavier_normal_", {"gain": Attr(Float(0), 1.0)}, fan=True),
    "xavier_uniform": Scheme("xavier_uniform_", {"gain": Attr(Float(0), 1.0)}, fan=True),
    "orthogonal": Scheme("orthogonal_", {"gain": Attr(Float(0), 1.0)}, fan=True),
}
ALIASES = {"torch": "default", "he_normal": "kaiming_normal", "he_uniform": "kaiming_uniform",
           "glorot_normal": "xavier_normal", "glorot_uniform": "xavier_uniform"}
TENSOR_KEYS = ("weight", "bias")


@dataclass(frozen=True)
class InitCall:
    """``nn.init.<function>(<module of node>.<tensor>, **kwargs)``."""

    node: str
    tensor: str
    function: str
    kwargs: tuple  # ((name, value), ...), values checked numbers or enum strings


class _Bad(Exception):
    def __init__(self, message, fix=""):
        self.message, self.fix = message, fix


def parse_scheme(value) -> tuple[str, Scheme | None, dict]:
    """A scheme value (``"he_normal"`` or ``{name: normal, std: 0.02}``) -> (name, scheme,
    checked options). Raises _Bad."""
    if isinstance(value, str):
        name, raw = value, {}
    elif isinstance(value, dict) and "name" in value:
        name, raw = value["name"], {k: v for k, v in value.items() if k != "name"}
    else:
        raise _Bad(f"expected a scheme name or {{name: ..., options}}, got {value!r}",
                   "e.g. `init: he_normal` or `init: {name: normal, std: 0.02}`")
    if not isinstance(name, str) or name.startswith("$"):
        raise _Bad(f"the scheme must be a name, got {name!r}", "expressions are not allowed here")
    name = ALIASES.get(name, name)
    if name not in SCHEMES:
        raise _Bad(f"unknown initialisation {name!r}",
                   suggest(name, list(SCHEMES) + list(ALIASES)).replace(
                       "`archc ops` lists the op kinds", "schemes: " + ", ".join(SCHEMES)))
    scheme = SCHEMES[name]
    return name, scheme, _options(name, scheme, raw)


def _options(name: str, scheme: Scheme | None, raw: dict) -> dict:
    known = scheme.options if scheme else {}
    out = {}
    for key, value in raw.items():
        if key not in known:
            raise _Bad(f"`{name}` has no option {key!r}",
                       "options: " + (", ".join(known) or "none"))
        try:
            out[key] = known[key].type.check(value)
        except AttrError as exc:
            raise _Bad(f"`{name}` option {key}: {exc.message}", exc.fix) from None
        if isinstance(out[key], float) and not math.isfinite(out[key]):
            raise _Bad(f"`{name}` option {key} must be finite, got {value!r}")
    for key, attr in known.items():
        if key not in out:
            if attr.default is REQUIRED:
                raise _Bad(f"`{name}` needs the option {key!r}", f"e.g. {{name: {name}, {key}: 0.0}}")
            out[key] = attr.default
    return {key: out[key] for key in known}  # the function's own order, whatever the spec's


def per_tensor(value) -> list[tuple[str, object, bool]]:
    """A layer's init value -> [(tensor, scheme value, implied)]. A bare scheme is the
    weight's, and implies zeros for the bias unless it is ``default`` (Keras' convention)."""
    if isinstance(value, dict) and "name" not in value:
        unknown = [k for k in value if k not in TENSOR_KEYS]
        if unknown:
            raise _Bad(f"unknown key {unknown[0]!r} in init",
                       "give a scheme, or {weight: scheme, bias: scheme}")
        return [(k, v, False) for k, v in value.items()]
    name, _, _ = parse_scheme(value)
    implied = [] if name == "default" else [("bias", "zeros", True)]
    return [("weight", value, False)] + implied


def _is_per_op(value) -> bool:
    """A network default keyed by op kinds (``{conv2d: he_normal, ...}``)."""
    return isinstance(value, dict) and any(get_op(str(k)) for k in value)


def check_default(default) -> None:
    """Check a network default as a whole, so that a bad one is reported even where no
    layer uses it. Raises _Bad."""
    per_op = default if _is_per_op(default) else {None: default}
    for kind, value in per_op.items():
        if kind is not None and get_op(str(kind)) is None:
            raise _Bad(f"unknown op kind {kind!r} in the per-kind init",
                       suggest(str(kind), list(all_ops())))
        for _, scheme, _ in per_tensor(value):
            parse_scheme(scheme)


def plan(graph, default=None) -> list[InitCall]:
    """The initialisation calls of ``graph``, in node order. ``default`` is the network
    default (build's ``init``), else ``train.init`` is read. Raises SpecErrors listing
    every bad value, located at its node."""
    train = graph.train if isinstance(graph.train, dict) else {}
    where = (None, "init")
    if default is None and "init" in train:
        default = train["init"]
        pos = train.pos_of("init") if hasattr(train, "pos_of") else Pos(graph.file)
        where = (pos, "train.init")
    calls, errors = [], {}
    if default is not None:
        try:
            check_default(default)
        except _Bad as exc:
            raise SpecErrors([SpecError(exc.message, *where, exc.fix)]) from None
    for node in graph.nodes:
        try:
            value = _choose(node, default)
            if value is not None:
                tied = node.meta.get("tie", (None, None))[1]  # a shared tensor is set by its owner
                calls += [c for c in _node_calls(node, value) if c.tensor != tied]
        except _Bad as exc:
            if "init" in node.meta:
                error = SpecError(f"`{node.name}`: {exc.message}", node.pos, node.path + ".init", exc.fix)
            else:  # the network default: said once, not once per layer
                error = SpecError(exc.message, *where, exc.fix)
            errors.setdefault(error.render(), error)
    if errors:
        raise SpecErrors(list(errors.values()))
    return calls


def _choose(node, default):
    """The init value for this node, or None for torch's default."""
    if "init" in node.meta:
        return node.meta["init"]
    if default is None:
        return None
    if _is_per_op(default):
        return default.get(node.op)
    params = get_op(node.op).torch_params(node.attrs)
    return default if params.get("weight", 0) >= 2 else None


def _node_calls(node, value) -> list[InitCall]:
    params = get_op(node.op).torch_params(node.attrs)
    if not params:
        raise _Bad(f"`{node.op}` has no parameters to initialise", "remove `init`")
    calls = []
    for tensor, scheme_value, implied in per_tensor(value):
        if tensor not in params:
            if not implied:
                raise _Bad(f"`{node.op}` has no {tensor} here", f"remove `{tensor}:` from init")
            continue
        name, scheme, options = parse_scheme(scheme_value)
        if scheme is None:
            continue
        if scheme.fan and params[tensor] < 2:
            raise _Bad(f"`{name}` computes fan-in/fan-out and needs a tensor of 2 or more "
                       f"dimensions; the {tensor} of `{node.op}` has {params[tensor]}",
                       "use normal, uniform, constant, zeros or ones")
        calls.append(InitCall(node.name, tensor, scheme.function, tuple(options.items())))
    return calls
