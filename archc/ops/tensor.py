"""Ops that move values without computing on them — permute, transpose, slice, select,
chunk, split — and mean over chosen dimensions.

Dimensions are counted without the batch (dim 0 is the first dimension of one sample:
the channels of an image, the tokens of a sequence); negative dims count from the end, as
in Python. The generated torch code shifts them by one for the batch. All of these count 0
MACs; only ``mean`` computes (additions, no multiply-accumulates) and it needs floats —
the others move token ids too.

One IR node has one output, so ``chunk`` and ``split`` output one piece, chosen by
``index``; all pieces are several layers reading the same source::

    - linear: {out: 48, id: qkv}
    - chunk: {chunks: 3, dim: -1, index: 0, from: qkv, id: q}
    - chunk: {chunks: 3, dim: -1, index: 1, from: qkv, id: k}
    - chunk: {chunks: 3, dim: -1, index: 2, from: qkv, id: v}

Receptive fields (docs/spec.md): an op on dim 0 (the channels) keeps every spatial field;
a slice or a piece of a spatial axis keeps the field size and moves its start (and a step
multiplies the jump), as a crop does; anything that reorders or removes spatial axes makes
the field "global" — never a number that could be wrong.
"""

from __future__ import annotations

from archc.errors import ShapeError
from archc.ops.registry import Attr, Bool, Int, IntList, Op, Window, register


def norm_dim(dim: int, shape, what: str = "dim") -> int:
    """``dim`` of a sample's ``shape`` as a non-negative index (negative counts from the end)."""
    rank = len(shape)
    if not rank:
        raise ShapeError(f"{what} {dim}: the input has no dimensions (one value per sample)",
                         "apply this op before the select or mean that removed the last dimension")
    if not -rank <= dim < rank:
        raise ShapeError(f"{what} {dim} is out of range for an input of {rank} dimensions",
                         f"use 0..{rank - 1} or -{rank}..-1 (the batch is not counted)")
    return dim % rank


def norm_dims(dims, shape, what: str = "dims") -> list[int]:
    """Every dim of ``dims`` normalised; a dim named twice is an error."""
    out = [norm_dim(d, shape, what[:-1]) for d in dims]
    if len(set(out)) != len(out):
        raise ShapeError(f"{what} {list(dims)} name a dimension twice",
                         "list each dimension once")
    return out


def index_code(arg: str, dim: int, item: str) -> str:
    """``arg[:, ..., item]`` with ``item`` at sample dim ``dim`` (one ``:`` for the batch)."""
    return f"{arg}[{':, ' * (dim + 1)}{item}]"


class _Moves(Op):
    """An op that only moves values: a view of its input's storage (torch keeps nothing for
    its backward but sizes), no longer contiguous."""

    keeps_dtype = True

    def saved(self, a, ins, out, ctx):
        return []

    def layout(self, a, ins, out, contiguous):
        return "strided"


def shifted(shape, dim: int, offset: int, step: int = 1):
    """Receptive-field effect of keeping every ``step``-th position from ``offset`` on
    ``dim``: None on the channels (dim 0), else a 1-wide window whose negative padding
    moves the start — as crop does — and whose stride is the step."""
    if dim == 0:
        return None
    wins = [Window() for _ in shape[1:]]
    wins[dim - 1] = Window(1, step, -offset)
    return wins


@register
class Permute(_Moves):
    name = "permute"
    doc = "Reorders the dimensions (batch excluded): dims [1, 0] turns [C, L] into [L, C]."
    attrs = {"dims": Attr(IntList(None), doc="the input dimension at each output position, "
                                             "e.g. [1, 2, 0]: (C, H, W) -> (H, W, C)")}

    def order(self, a, shape) -> list[int]:
        dims = a["dims"]
        if len(dims) != len(shape):
            raise ShapeError(f"dims {list(dims)} must list all {len(shape)} dimensions of the input",
                             f"give a permutation of 0..{len(shape) - 1} (the batch is not counted)")
        return norm_dims(dims, shape)

    def infer(self, a, ins):
        return tuple(ins[0][d] for d in self.order(a, ins[0]))

    def rf(self, a, ins, out):
        return None if self.order(a, ins[0]) == sorted(self.order(a, ins[0])) else "global"

    def torch_forward(self, a, ins, out, args, mod):
        order = self.order(a, ins[0])
        if order == sorted(order):
            return args[0]  # the identity: no code
        return f"{args[0]}.permute(0, {', '.join(str(d + 1) for d in order)})"


@register
class Transpose(_Moves):
    name = "transpose"
    doc = "Swaps two dimensions (batch excluded): dims [0, 1] turns [C, L] into [L, C]."
    attrs = {"dims": Attr(IntList(None, min_items=2), doc="the two dimensions to swap")}

    def pair(self, a, shape) -> tuple[int, int]:
        if len(a["dims"]) != 2:
            raise ShapeError(f"transpose swaps two dimensions, got dims {list(a['dims'])}",
                             "name two dims, or use permute to reorder more")
        d0, d1 = (norm_dim(d, shape) for d in a["dims"])
        return d0, d1

    def infer(self, a, ins):
        d0, d1 = self.pair(a, ins[0])
        shape = list(ins[0])
        shape[d0], shape[d1] = shape[d1], shape[d0]
        return tuple(shape)

    def rf(self, a, ins, out):
        d0, d1 = self.pair(a, ins[0])
        return None if d0 == d1 else "global"

    def torch_forward(self, a, ins, out, args, mod):
        d0, d1 = self.pair(a, ins[0])
        return args[0] if d0 == d1 else f"{args[0]}.transpose({d0 + 1}, {d1 + 1})"


@register
class Slice(_Moves):
    name = "slice"
    doc = "Python's x[start:end:step] along one dimension (batch excluded); negative indices count from the end."
    attrs = {
        "dim": Attr(Int(None), doc="the dimension sliced"),
        "start": Attr(Int(None), 0),
        "end": Attr(Int(None), None, "one past the last index kept; default: the end"),
        "step": Attr(Int(1), 1),
    }

    def kept(self, a, shape) -> tuple[int, range]:
        """(dim, the indices kept): Python's slice semantics, an empty result refused."""
        dim = norm_dim(a["dim"], shape)
        kept = range(shape[dim])[a["start"]:a["end"]:a["step"]]
        if not kept:
            end = "" if a["end"] is None else a["end"]
            step = "" if a["step"] == 1 else f":{a['step']}"
            raise ShapeError(f"slice {a['start']}:{end}{step} of dim {a['dim']} (size {shape[dim]}) "
                             "is empty", f"choose start < end within 0..{shape[dim]}")
        return dim, kept

    def infer(self, a, ins):
        dim, kept = self.kept(a, ins[0])
        return (*ins[0][:dim], len(kept), *ins[0][dim + 1:])

    def rf(self, a, ins, out):
        dim, kept = self.kept(a, ins[0])
        return shifted(ins[0], dim, kept.start, kept.step)

    def torch_forward(self, a, ins, out, args, mod):
        dim, kept = self.kept(a, ins[0])
        if len(kept) == ins[0][dim]:
            return args[0]  # every index kept: no code
        step = "" if kept.step == 1 else f":{kept.step}"
        return index_code(args[0], dim, f"{kept.start}:{kept.stop}{step}")


@register
class Select(_Moves):
    name = "select"
    doc = "Takes one index of a dimension and removes it: {dim: 0, index: 0} is the first token of [L, D]."
    attrs = {"dim": Attr(Int(None), doc="the dimension indexed (removed)"),
             "index": Attr(Int(None), doc="the position taken; negative counts from the end")}

    def position(self, a, shape) -> tuple[int, int]:
        dim = norm_dim(a["dim"], shape)
        size = shape[dim]
        if not -size <= a["index"] < size:
            raise ShapeError(f"index {a['index']} is out of range for dim {a['dim']} (size {size})",
                             f"use 0..{size - 1} or -{size}..-1")
        return dim, a["index"] % size

    def infer(self, a, ins):
        dim, _ = self.position(a, ins[0])
        return ins[0][:dim] + ins[0][dim + 1:]

    def rf(self, a, ins, out):
        dim, _ = self.position(a, ins[0])
        return None if dim == 0 else "global"  # a spatial axis disappears

    def torch_forward(self, a, ins, out, args, mod):
        dim, index = self.position(a, ins[0])
        return index_code(args[0], dim, str(index))


@register
class Chunk(_Moves):
    name = "chunk"
    doc = ("The index-th piece of torch.chunk: `chunks` pieces of ceil(size / chunks) along `dim` "
           "(the last may be smaller). Take every piece with one layer per index, each `from:` the same source.")
    attrs = {
        "chunks": Attr(Int(1), doc="how many pieces to cut (torch may make fewer: ceil sizes)"),
        "dim": Attr(Int(None), doc="the dimension cut"),
        "index": Attr(Int(0), doc="which piece this layer outputs, from 0"),
    }

    def piece(self, a, shape) -> tuple[int, int, int]:
        """(dim, offset, length) of the chosen piece: torch.chunk cuts pieces of
        ceil(n / chunks), so it may make fewer than ``chunks`` pieces."""
        dim = norm_dim(a["dim"], shape)
        size = shape[dim]
        width = -(-size // a["chunks"])
        pieces = -(-size // width)
        if a["index"] >= pieces:
            made = f"{pieces} pieces" + ("" if pieces == a["chunks"] else f" (not {a['chunks']}: "
                                         f"pieces of ceil({size}/{a['chunks']}) = {width})")
            raise ShapeError(f"index {a['index']} is past the last piece: chunk cuts dim {a['dim']} "
                             f"(size {size}) into {made}", f"use an index in 0..{pieces - 1}")
        offset = a["index"] * width
        return dim, offset, min(width, size - offset)

    def infer(self, a, ins):
        dim, _, length = self.piece(a, ins[0])
        return (*ins[0][:dim], length, *ins[0][dim + 1:])

    def rf(self, a, ins, out):
        dim, offset, _ = self.piece(a, ins[0])
        return shifted(ins[0], dim, offset)

    def torch_forward(self, a, ins, out, args, mod):
        dim, _, _ = self.piece(a, ins[0])
        return f"torch.chunk({args[0]}, {a['chunks']}, {dim + 1})[{a['index']}]"


@register
class Split(_Moves):
    name = "split"
    doc = ("The index-th piece of torch.split with `sizes` along `dim` (the sizes add up to the "
           "dim's size). Take every piece with one layer per index, each `from:` the same source.")
    attrs = {
        "sizes": Attr(IntList(1), doc="the length of each piece, in order"),
        "dim": Attr(Int(None), doc="the dimension cut"),
        "index": Attr(Int(0), doc="which piece this layer outputs, from 0"),
    }

    def piece(self, a, shape) -> tuple[int, int]:
        """(dim, offset) of the chosen piece."""
        dim = norm_dim(a["dim"], shape)
        sizes, size = list(a["sizes"]), shape[dim]
        if sum(sizes) != size:
            raise ShapeError(f"sizes {sizes} add up to {sum(sizes)} but dim {a['dim']} has size {size}",
                             f"make the sizes add up to {size}")
        if a["index"] >= len(sizes):
            raise ShapeError(f"index {a['index']} is past the last of {len(sizes)} pieces {sizes}",
                             f"use an index in 0..{len(sizes) - 1}")
        return dim, sum(sizes[:a["index"]])

    def infer(self, a, ins):
        dim, _ = self.piece(a, ins[0])
        return (*ins[0][:dim], a["sizes"][a["index"]], *ins[0][dim + 1:])

    def rf(self, a, ins, out):
        dim, offset = self.piece(a, ins[0])
        return shifted(ins[0], dim, offset)

    def torch_forward(self, a, ins, out, args, mod):
        dim, _ = self.piece(a, ins[0])
        return f"torch.split({args[0]}, {list(a['sizes'])}, {dim + 1})[{a['index']}]"


@register
class Mean(Op):
    name = "mean"
    doc = "The mean over `dims` (batch excluded), removed unless `keepdims`; [L, D] -> [D] with dims [0]."
    attrs = {"dims": Attr(IntList(None), doc="the dimensions averaged, e.g. [0] for the tokens of [L, D]"),
             "keepdims": Attr(Bool(), False, "keep the averaged dimensions as size 1")}

    def infer(self, a, ins):
        dims = norm_dims(a["dims"], ins[0])
        if a["keepdims"]:
            return tuple(1 if i in dims else n for i, n in enumerate(ins[0]))
        return tuple(n for i, n in enumerate(ins[0]) if i not in dims)

    def rf(self, a, ins, out):
        return None if norm_dims(a["dims"], ins[0]) == [0] else "global"

    def saved(self, a, ins, out, ctx):
        return []  # a mean's backward needs only the sizes

    def torch_forward(self, a, ins, out, args, mod):
        dims = tuple(d + 1 for d in sorted(norm_dims(a["dims"], ins[0])))
        keep = ", keepdim=True" if a["keepdims"] else ""
        return f"torch.mean({args[0]}, {dims!r}{keep})"
