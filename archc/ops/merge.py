"""Ops that join several inputs: add, multiply (with broadcasting) and concat.

Where inputs reach a merge through paths of different receptive-field alignment the
analysis says so (archc/analysis/receptive_field.py)."""

from __future__ import annotations

from archc.errors import ShapeError
from archc.ops.registry import Attr, Int, Op, Saved, numel, register, saved_new

_DIM_NAMES = {3: ("channels", "heights", "widths"), 2: ("channels", "lengths"), 1: ("features",)}


def broadcast(ins, what: str):
    """torch's broadcasting over shapes without the batch dimension."""
    rank = max(len(s) for s in ins)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in ins]
    names = _DIM_NAMES.get(rank, tuple(f"sizes of dimension {i}" for i in range(rank)))
    out, differ = [], []
    for i, sizes in enumerate(zip(*padded)):
        big = {n for n in sizes if n != 1}
        if len(big) > 1:  # named as the user sees them: "channels 16 and 8"
            differ.append(f"{names[i]} {' and '.join(str(n) for n in sizes)}")
        out.append(max(big) if big else 1)
    if differ:
        raise ShapeError(f"cannot {what}: {', '.join(differ)} differ",
                         "make the shapes equal (a 1×1 conv or a pool on the shortcut)")
    return tuple(out)


class _Elementwise(Op):
    arity = (2, None)
    symbol = ""
    verb = ""
    method = ""  # the in-place tensor method (add_; not mul_: its backward needs both inputs)
    torch_output_writable = True  # a fresh tensor; backward reads the inputs only

    def infer(self, a, ins):
        return broadcast(ins, self.verb)

    def torch_forward(self, a, ins, out, args, mod):
        return f" {self.symbol} ".join(args)

    def saved(self, a, ins, out, ctx):
        return []  # a sum's gradient is the incoming one

    def torch_inplace(self, a, ins, out, args, i):
        """``a.add_(b).add_(c)`` sums in the order of ``a + b + c``; with two inputs the
        second may take the result (b + a is a + b exactly). The overwritten input must
        have the output's shape (broadcasting goes into it, never out of it)."""
        if not self.method or tuple(ins[i]) != tuple(out) or (i > 0 and len(args) > 2):
            return None
        first, rest = args[i], [x for k, x in enumerate(args) if k != i]
        return first + "".join(f".{self.method}({x})" for x in rest)


@register
class Add(_Elementwise):
    name, doc, symbol, verb = "add", "Element-wise sum (residual connections).", "+", "add"
    method = "add_"


@register
class Multiply(_Elementwise):
    name, doc, symbol, verb = "multiply", "Element-wise product (gating, squeeze-excitation).", "*", "multiply"

    def saved(self, a, ins, out, ctx):
        """a * b * c runs as (a * b) * c: each product keeps one factor for the other's
        gradient, where that other factor requires grad."""
        kept, left, left_grad = [], Saved("input", 0), ctx.needs_grad[0]
        shape = ins[0]
        for i in range(1, len(ins)):
            if left_grad:
                kept.append(Saved("input", i))
            if ctx.needs_grad[i]:
                kept.append(left)
            shape = broadcast([shape, ins[i]], "multiply")
            left, left_grad = saved_new(ctx.batch * numel(shape)), left_grad or ctx.needs_grad[i]
        return kept


@register
class Concat(Op):
    name = "concat"
    doc = "Concatenation along `dim` (0 = channels), as Inception and U-Net join branches."
    arity = (2, None)
    attrs = {"dim": Attr(Int(None), 0, "dimension to join along, batch excluded")}
    torch_output_writable = True  # a fresh tensor; backward only slices the gradient

    def infer(self, a, ins):
        rank = len(ins[0])
        if any(len(s) != rank for s in ins):
            raise ShapeError("inputs of different rank: " + ", ".join(str(list(s)) for s in ins),
                             "concatenate tensors of the same rank")
        d = a["dim"] % rank if -rank <= a["dim"] < rank else None
        if d is None:
            raise ShapeError(f"dim {a['dim']} is out of range for rank {rank}", f"use 0..{rank - 1}")
        names = _DIM_NAMES.get(rank, tuple(f"dimension {i}" for i in range(rank)))
        for i in range(rank):
            sizes = [s[i] for s in ins]
            if i != d and len(set(sizes)) > 1:
                fix = ("crop the skip connection or check padding" if rank == 3 and i > 0
                       else "make the other dimensions equal")
                raise ShapeError(f"{names[i]} {' and '.join(map(str, sizes))} differ", fix)
        out = list(ins[0])
        out[d] = sum(s[d] for s in ins)
        return tuple(out)

    def torch_forward(self, a, ins, out, args, mod):
        dim = a["dim"] % len(out) + 1
        return f"torch.cat([{', '.join(args)}], {dim})"

    def saved(self, a, ins, out, ctx):
        return []  # the gradient is sliced back by sizes
