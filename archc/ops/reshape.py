"""Shape changes without arithmetic: flatten and reshape."""

from __future__ import annotations

from archc.errors import ShapeError
from archc.ops.registry import Attr, IntList, Op, numel, register


class _Reshapes(Op):
    """A reshape keeps nothing for backward; its output is a view of a contiguous input and
    a copy of a permuted or sliced one."""

    def saved(self, a, ins, out, ctx):
        return []

    def layout(self, a, ins, out, contiguous):
        return "view" if contiguous else "new"


@register
class Flatten(_Reshapes):
    passes_values = True
    keeps_dtype = True  # moves token ids as they are
    name = "flatten"
    doc = "Flattens everything but the batch: (C, H, W) -> (C*H*W,)."

    def infer(self, a, ins):
        return (numel(ins[0]),)

    def torch_forward(self, a, ins, out, args, mod):
        return f"torch.flatten({args[0]}, 1)"


@register
class Reshape(_Reshapes):
    passes_values = True
    keeps_dtype = True  # moves token ids as they are
    name = "reshape"
    doc = "Reshapes to `shape` (batch excluded); one entry may be -1 (inferred)."
    attrs = {"shape": Attr(IntList(-1), doc="target shape without the batch, e.g. [512, 4, 4]")}

    def infer(self, a, ins):
        shape = list(a["shape"])
        if shape.count(-1) > 1 or 0 in shape:
            raise ShapeError(f"shape {shape} may hold at most one -1 and no 0",
                             "give every size but one")
        total, known = numel(ins[0]), -numel(shape) if -1 in shape else numel(shape)
        if -1 in shape:
            if total % known:
                raise ShapeError(f"cannot reshape {list(ins[0])} ({total} values) to {shape}",
                                 f"{total} is not divisible by {known}")
            shape[shape.index(-1)] = total // known
        elif known != total:
            raise ShapeError(f"cannot reshape {list(ins[0])} ({total} values) to {shape} "
                             f"({known} values)", "the sizes must multiply to the same total")
        return tuple(shape)

    def torch_forward(self, a, ins, out, args, mod):
        return f"{args[0]}.reshape(-1, {', '.join(map(str, out))})"
