"""The op registry: everything archc knows about an op kind, registered once.

An op is a subclass of :class:`Op` decorated with :func:`register`. The class holds

* ``attrs`` — its attributes, each an :class:`Attr` with a type, a default and a doc;
  the JSON Schema for editors and the checks of evaluated values both come from here;
* ``infer(a, ins)`` — the shape rule: input shapes (batch excluded) -> output shape;
* ``params(a, ins, out)`` — ``(trainable, buffers)`` element counts, as torch counts them;
* ``macs(a, ins, out)`` — multiply-accumulates, torchvision's convention (see docs/spec.md);
* ``rf(a, ins)`` — the receptive-field effect per spatial axis, or a merge/reset rule;
* ``torch_init`` / ``torch_forward`` — the PyTorch code it becomes (archc/backends/torch).

Nothing here imports torch. Ops are looked up by name in :data:`REGISTRY`, never through
``globals()`` or ``getattr(torch.nn, ...)``.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from archc.errors import AttrError, ShapeError

REGISTRY: dict[str, "Op"] = {}

Shape = tuple  # a shape without the batch dimension, e.g. (3, 224, 224)

# Element types a value can have. Networks compute on floats; token ids (the input of a
# language model, the indices of an embedding) are integers. The analysis tracks the
# dtype of every value so that an op fed the wrong kind says so where it is used.
FLOAT, IDS = "float32", "int64"
DTYPES = (FLOAT, IDS)


# --------------------------------------------------------------------------- attr types


class AttrType:
    """A type of attribute value: a JSON Schema fragment and a check of Python values."""

    schema: dict = {}
    text = "a value"

    def check(self, value):
        return value


class Int(AttrType):
    def __init__(self, min: int | None = 1, max: int | None = None):
        self.min, self.max = min, max
        self.schema = {"type": "integer"}
        if min is not None:
            self.schema["minimum"] = min
        if max is not None:
            self.schema["maximum"] = max
        self.text = "an integer" + (f" ≥ {min}" if min is not None else "")

    def check(self, value):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise AttrError(f"expected {self.text}, got {value!r}")
        if self.min is not None and value < self.min:
            raise AttrError(f"must be ≥ {self.min}, got {value}")
        if self.max is not None and value > self.max:
            raise AttrError(f"must be ≤ {self.max}, got {value}")
        return value


class Float(AttrType):
    def __init__(self, min: float | None = None, max: float | None = None, exclusive_min=False):
        self.min, self.max, self.exclusive_min = min, max, exclusive_min
        self.schema = {"type": "number"}
        if min is not None:
            self.schema["exclusiveMinimum" if exclusive_min else "minimum"] = min
        if max is not None:
            self.schema["maximum"] = max
        self.text = "a number"

    def check(self, value):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise AttrError(f"expected a number, got {value!r}")
        if self.min is not None and (value <= self.min if self.exclusive_min else value < self.min):
            raise AttrError(f"must be {'>' if self.exclusive_min else '≥'} {self.min}, got {value}")
        if self.max is not None and value > self.max:
            raise AttrError(f"must be ≤ {self.max}, got {value}")
        return float(value)


class Bool(AttrType):
    schema = {"type": "boolean"}
    text = "true or false"

    def check(self, value):
        if not isinstance(value, bool):
            raise AttrError(f"expected true or false, got {value!r}")
        return value


class Choice(AttrType):
    def __init__(self, *options: str):
        self.options = options
        self.schema = {"enum": list(options)}
        self.text = "one of " + ", ".join(options)

    def check(self, value):
        if value not in self.options:
            close = difflib.get_close_matches(str(value), self.options, n=1)
            raise AttrError(f"expected {self.text}, got {value!r}",
                            f"did you mean {close[0]!r}?" if close else "")
        return value


class Pair(AttrType):
    """An int or a pair [height, width]; normalised to a tuple of two ints."""

    def __init__(self, min: int = 1):
        self.min = min
        item = {"type": "integer", "minimum": min}
        self.schema = {"anyOf": [item, {"type": "array", "items": item, "minItems": 2, "maxItems": 2}]}
        self.text = f"an integer ≥ {min} or a pair [h, w]"

    def check(self, value):
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value, value]
        if (not isinstance(value, (list, tuple)) or len(value) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
            raise AttrError(f"expected {self.text}, got {value!r}")
        if min(value) < self.min:
            raise AttrError(f"must be ≥ {self.min}, got {value!r}")
        return tuple(value)


class Padding(AttrType):
    """int, [h, w], [top, bottom, left, right], 'same' or 'valid'."""

    text = "an integer ≥ 0, [h, w], [top, bottom, left, right], 'same' or 'valid'"
    schema = {"anyOf": [
        {"type": "integer", "minimum": 0},
        {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 2, "maxItems": 4},
        {"enum": ["same", "valid"]},
    ]}

    def __init__(self, allow_same=True):
        self.allow_same = allow_same
        if not allow_same:  # zeropad2d: counts of pixels, no words (its schema and message say so too)
            self.text = "an integer ≥ 0, [h, w] or [top, bottom, left, right]"
            self.schema = {"anyOf": self.schema["anyOf"][:2]}

    def check(self, value):
        if value in ("valid", "same") and self.allow_same:
            return (0, 0, 0, 0) if value == "valid" else "same"
        counts = [value] if isinstance(value, int) and not isinstance(value, bool) else value
        if isinstance(counts, (list, tuple)) and all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts):
            if len(counts) == 1:
                return (counts[0],) * 4
            if len(counts) == 2:
                return (counts[0], counts[0], counts[1], counts[1])
            if len(counts) == 4:
                return tuple(counts)
        raise AttrError(f"expected {self.text}, got {value!r}")


class IntList(AttrType):
    def __init__(self, min: int | None = None, min_items=1):
        self.min, self.min_items = min, min_items
        item = {"type": "integer"} | ({"minimum": min} if min is not None else {})
        self.schema = {"type": "array", "items": item, "minItems": min_items}
        self.text = "a list of integers"

    def check(self, value):
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if (not isinstance(value, (list, tuple)) or len(value) < self.min_items
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
            raise AttrError(f"expected {self.text}, got {value!r}")
        if self.min is not None and any(v < self.min for v in value):
            raise AttrError(f"every item must be ≥ {self.min}, got {value!r}")
        return tuple(value)


class Scale(AttrType):
    """A positive number or a pair of them (upsampling factors)."""

    text = "a number > 0 or a pair [h, w]"
    schema = {"anyOf": [{"type": "number", "exclusiveMinimum": 0},
                        {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0},
                         "minItems": 2, "maxItems": 2}]}

    def check(self, value):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value, value]
        if (isinstance(value, (list, tuple)) and len(value) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in value)):
            return tuple(int(v) if float(v).is_integer() else float(v) for v in value)
        raise AttrError(f"expected {self.text}, got {value!r}")


REQUIRED = object()


@dataclass
class Attr:
    type: AttrType
    default: Any = REQUIRED
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


# --------------------------------------------------------------------------- memory


@dataclass(frozen=True)
class Saved:
    """One tensor an op's backward keeps (archc/analysis/memory.py adds them up):
    ``of`` "input" (the storage of input ``index``), "output" (the output's storage) or
    "new" (a tensor of its own: ``elements`` values, batch included, ``itemsize`` bytes
    each; 0 = the activations' itemsize)."""

    of: str
    index: int = 0
    elements: int = 0
    itemsize: int = 0


def saved_new(elements: int, itemsize: int = 0) -> Saved:
    return Saved("new", elements=elements, itemsize=itemsize)


@dataclass(frozen=True)
class SaveContext:
    """What a ``saved`` rule may depend on besides the shapes."""

    batch: int
    device: str = "cuda"  # "cuda" or "cpu": a few kernels differ (dropout's mask, attention)
    needs_grad: tuple = ()  # per input: it requires grad
    trainable: bool = True  # the node's own parameters (if any) are trained
    inplace: bool = False  # the generated code overwrote an input
    contiguous: tuple = ()  # per input: a contiguous tensor (not a permuted or sliced view)
    itemsize: int = 4  # bytes of one activation value (2 under mixed precision)


# --------------------------------------------------------------------------- ops


class Op:
    """Base of all op kinds. Subclasses override what differs from these defaults."""

    name: ClassVar[str] = ""
    doc: ClassVar[str] = ""
    attrs: ClassVar[dict[str, Attr]] = {}
    # How many inputs the op takes: 1, or (min, max) for merges (max None = any).
    arity: ClassVar[int | tuple] = 1
    # The first ONNX opset that can express the op (checked by `validate --target onnx`).
    onnx_opset: ClassVar[int | None] = 11
    # At inference the op hands its input's values on unchanged (identity, dropout,
    # flatten): `archc infer` looks through it for the op that made a classifier's output.
    passes_values: ClassVar[bool] = False
    # The op moves values without computing on them (reshape, permute, slice, identity):
    # its output has its input's dtype, token ids included. Every other op computes on
    # floats, and an integer input is an error that says to embed it first.
    keeps_dtype: ClassVar[bool] = False
    # Helper classes and functions the generated torch code of this op needs, emitted once
    # per generated file (name -> source). Standalone files carry them; nothing is imported.
    torch_helpers: ClassVar[dict[str, str]] = {}

    def normalize(self, a: dict) -> dict:
        """Fill attributes whose default depends on others (a pool's stride = its kernel)."""
        return a

    # -- shapes and counts -----------------------------------------------------------
    def infer(self, a: dict, ins: list[Shape]) -> Shape:
        return ins[0]

    def params(self, a: dict, ins: list[Shape], out: Shape) -> tuple[int, int]:
        return 0, 0

    def macs(self, a: dict, ins: list[Shape], out: Shape) -> int:
        return 0

    def dtype(self, a: dict, ins: list[Shape], dtypes: list[str]) -> str:
        """The dtype of the output from the inputs' dtypes (raise ShapeError to refuse)."""
        if self.keeps_dtype:
            return dtypes[0]
        if IDS in dtypes:
            raise ShapeError(f"`{self.name}` computes on float values, got token ids ({IDS})",
                             "embed the ids first (embedding)")
        return FLOAT

    def id_limit(self, a: dict) -> int | None:
        """The number of distinct token ids the op accepts (an embedding's rows), else None."""
        return None

    def tied_weight(self, a: dict, ins: list[Shape]) -> tuple[str, tuple] | None:
        """(tensor name, shape) of the weight another layer may share with ``tie:``
        (GPT-2's output projection shares the token embedding), or None."""
        return None

    def rf(self, a: dict, ins: list[Shape], out: Shape):
        """Receptive-field effect: None (pointwise: unchanged), a :class:`Window` per
        spatial axis, or the string "global" (every output sees the whole input)."""
        return None

    # -- the torch backend (see archc/backends/torch) -----------------------------------
    def torch_init(self, a: dict, ins: list[Shape], out: Shape) -> str | None:
        """Source of the submodule this op owns (``nn.Conv2d(...)``), or None."""
        return None

    def torch_forward(self, a: dict, ins: list[Shape], out: Shape, args: list[str],
                      mod: str | None) -> str:
        """Source of the expression computing the output from ``args`` (variable names)."""
        return f"{mod}({args[0]})"

    def torch_params(self, a: dict) -> dict[str, int]:
        """The parameter tensors of the module ``torch_init`` builds: name -> rank. The
        initialisers (archc/backends/torch/init.py) read it; fan-based schemes need rank ≥ 2."""
        return {}

    def state(self, a: dict, ins: list[Shape], out: Shape) -> dict[str, tuple]:
        """The ``state_dict`` of the module ``torch_init`` builds, without building it: name ->
        shape, in torch's order (the module's own parameters, its buffers, then each
        submodule's). The parameters are the tensors ``torch_params`` names, the rest are
        buffers (batch norm's running statistics; ``num_batches_tracked`` has shape ()).
        Their sizes add up to ``params``; archc diff's checkpoint verdict reads them."""
        return {}

    # In-place code (as torchvision's ReLU(inplace=True) and `out += identity`): spares an
    # allocation per op. The code generator uses it only where it is safe for autograd —
    # the overwritten value has this node as its only reader, is neither the network's
    # input nor an output, and comes from an op whose output is writable.
    torch_output_writable = False  # a fresh tensor its op keeps no reference to for backward

    def torch_inplace(self, a: dict, ins: list[Shape], out: Shape, args: list[str], i: int) -> str | None:
        """Source computing the output by overwriting ``args[i]``, or None (no such form)."""
        return None

    # -- training memory (archc/analysis/memory.py) ---------------------------------------
    # Under mixed precision: "half" (autocast runs the op in bf16/fp16: convolutions,
    # matmuls), "float" (autocast runs it in float32: norms over rows, softmax), None (it
    # computes in its inputs' type).
    autocast: ClassVar[str | None] = None

    def buffer_bytes(self, a: dict, buffers: int) -> int:
        """Bytes of the op's ``buffers`` values (float32 unless an op says otherwise)."""
        return 4 * buffers

    def saved(self, a: dict, ins: list[Shape], out: Shape, ctx: SaveContext) -> list[Saved]:
        """The tensors autograd keeps for this op's backward in training (parameters
        excluded: they are counted apart). Called only when the output requires grad. The
        default: the input, as most ops whose gradient depends on it keep it."""
        return [Saved("input")]

    def layout(self, a: dict, ins: list[Shape], out: Shape, contiguous: bool) -> str:
        """Where the output lives: "new" (a tensor of its own), "transposed" (one of its own
        whose batch axis is not the outermost: contiguous at batch 1 only), "view" (the
        input's storage, still contiguous) or "strided" (the input's storage, permuted or sliced)."""
        return "new"


@dataclass(frozen=True)
class Window:
    """The receptive-field effect of one spatial axis of a sliding window (distill.pub's
    k, s, p), extended with dilation; transposed windows divide the jump by the stride."""

    kernel: float = 1
    stride: float = 1
    pad: float = 0
    dilation: int = 1
    transposed: bool = False


def register(cls):
    """Class decorator: instantiate an op kind and add it to :data:`REGISTRY`."""
    if not cls.name:
        raise TypeError(f"{cls.__name__} has no name")
    if cls.name in REGISTRY:
        raise ValueError(f"op {cls.name!r} is registered twice "
                         f"({type(REGISTRY[cls.name]).__name__} and {cls.__name__})")
    REGISTRY[cls.name] = cls()
    return cls


def get_op(name: str) -> Op | None:
    op = REGISTRY.get(name)
    if op is None:  # not registered yet: importing the package registers every op
        from archc import ops  # noqa: F401

        op = REGISTRY.get(name)
    return op


def all_ops() -> dict[str, Op]:
    from archc import ops  # noqa: F401

    return dict(REGISTRY)


def suggest(name: str, candidates) -> str:
    """A did-you-mean for ``name`` among ``candidates``: a layer name from Keras or torch
    (`Dense`, `nn.Conv2d`) answered with its archc op first, then difflib's close matches."""
    from archc.ops.foreign_names import archc_ops_for

    candidates = list(candidates)
    # only where op kinds are asked for (not attribute or variable names)
    foreign = archc_ops_for(name, candidates) if any(c in REGISTRY for c in candidates) else []
    if foreign:
        return ("did you mean " + " or ".join(f"`{c}`" for c in foreign)
                + f"? (archc's name for `{name}`)")
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(f"`{c}`" for c in close) + "?"
    return "`archc ops` lists the op kinds"


# --------------------------------------------------------------------------- helpers


def numel(shape: Shape) -> int:
    return math.prod(shape)


def need_rank(ins: list[Shape], ranks, what: str) -> Shape:
    """The single input shape, checked to have one of the ranks ``ranks``."""
    shape = ins[0]
    ranks = (ranks,) if isinstance(ranks, int) else ranks
    if len(shape) not in ranks:
        layout = {1: "(features)", 2: "(channels, length) or (tokens, width)",
                  3: "(channels, height, width)", 4: "(channels, depth, height, width)"}
        want = " or ".join(layout.get(r, f"rank {r}") for r in ranks)
        raise ShapeError(f"expects an input of shape {want}, got {list(shape)}",
                         f"{what} (flatten before linear layers; reshape to add channels)")
    return shape


def window_out(size: int, kernel: int, stride: int, pad_total: int, dilation: int = 1,
               ceil_mode: bool = False) -> int:
    """Output length of a sliding window: floor((n + p - d(k-1) - 1) / s) + 1 (torch docs);
    with ceil_mode the last window may start in the padding but not beyond the input."""
    span = size + pad_total - dilation * (kernel - 1) - 1
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= size + pad_total // 2:  # torch drops a window starting in the right pad
            out -= 1
        return out
    return span // stride + 1


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """Keras/TensorFlow 'same': output = ceil(size / stride); the odd pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def fmt_tuple(t) -> str:
    return "(" + ", ".join(repr(v) for v in t) + ("," if len(t) == 1 else "") + ")"


# --------------------------------------------------------------------------- N-d attr types
# 1-D and 3-D windows (conv1d, maxpool3d, ...) take one size per spatial axis; the 2-D ops
# keep Pair and Padding above, whose texts and schema fragments the docs already show.

AXIS_NAMES = {1: "[l]", 2: "[h, w]", 3: "[d, h, w]"}
SIDE_NAMES = {1: "[left, right]", 2: "[top, bottom, left, right]",
              3: "[front, back, top, bottom, left, right]"}


def _plain_ints(value) -> bool:
    return isinstance(value, (list, tuple)) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value)


class Sizes(AttrType):
    """An int or one int per spatial axis; normalised to a tuple of ``axes`` ints."""

    def __init__(self, axes: int, min: int = 1):
        self.axes, self.min = axes, min
        item = {"type": "integer", "minimum": min}
        self.schema = {"anyOf": [item, {"type": "array", "items": item,
                                        "minItems": axes, "maxItems": axes}]}
        self.text = f"an integer ≥ {min} or a list {AXIS_NAMES[axes]}"

    def check(self, value):
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value] * self.axes
        if not _plain_ints(value) or len(value) != self.axes:
            raise AttrError(f"expected {self.text}, got {value!r}")
        if min(value) < self.min:
            raise AttrError(f"must be ≥ {self.min}, got {value!r}")
        return tuple(value)


class PaddingNd(AttrType):
    """Padding of ``axes`` spatial axes: an int, one int per axis, two per axis (before and
    after, axis by axis: [front, back, top, bottom, left, right]), 'same' or 'valid'.
    Normalised to 2·axes ints (before, after per axis) or 'same'."""

    def __init__(self, axes: int):
        self.axes = axes
        counts = sorted({axes, 2 * axes})
        item = {"type": "integer", "minimum": 0}
        self.schema = {"anyOf": [item, {"type": "array", "items": item, "minItems": counts[0],
                                        "maxItems": counts[-1]},
                                 {"enum": ["same", "valid"]}]}
        per_axis = "" if axes == 1 else f"{AXIS_NAMES[axes]}, "
        self.text = f"an integer ≥ 0, {per_axis}{SIDE_NAMES[axes]}, 'same' or 'valid'"

    def check(self, value):
        if value == "valid":
            return (0,) * (2 * self.axes)
        if value == "same":
            return "same"
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value] * self.axes
        if _plain_ints(value) and all(v >= 0 for v in value):
            if len(value) == self.axes:  # the same padding before and after
                return tuple(v for v in value for _ in (0, 1))
            if len(value) == 2 * self.axes:
                return tuple(value)
        raise AttrError(f"expected {self.text}, got {value!r}")
