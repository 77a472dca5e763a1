"""Ops of token sequences: embeddings, positional encodings and the class token.

* ``embedding`` — a lookup table of ``num`` vectors of ``dim`` values (torch.nn.Embedding):
  token ids (int64) in, float vectors out. Parameters num·dim; MACs 0 — a lookup reads a
  row, it multiplies nothing (fvcore and torch's flop counter count it as 0 too).
* ``pos_embedding`` — a learned vector per position added to the tokens (ViT, Dosovitskiy
  et al. 2021; GPT-2's ``wpe``). The parameter is ``[1, max_len, D]``, the layout of
  torchvision's ``VisionTransformer.encoder.pos_embedding`` ([1, 197, 768] for ViT-B/16),
  so its weights load as they are.
* ``sinusoidal_encoding`` — the fixed encoding of Vaswani et al., "Attention Is All You
  Need" (2017), §3.5: PE(pos, 2i) = sin(pos / base^(2i/D)), PE(pos, 2i+1) = cos(pos /
  base^(2i/D)), added to the tokens. A persistent buffer: counted in ``buffers()`` and
  saved in the state_dict, as batch norm's running statistics are.
* ``class_token`` — a learned token prepended to the sequence (ViT's ``class_token``,
  torchvision's [1, 1, D] parameter, initialised to zeros as there).

The additions are element-wise: 0 MACs (docs/spec.md, "What is counted").
"""

from __future__ import annotations

from archc.errors import ShapeError
from archc.ops.registry import FLOAT, IDS, Attr, Float, Int, Op, Saved, register

POSITIONAL_EMBEDDING = '''
class LearnedPositions(nn.Module):
    """A learned vector per position added to the tokens: x + weight[:, :L] (ViT, GPT-2)."""

    def __init__(self, max_len, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(1, max_len, dim).normal_(std=0.02))

    def forward(self, x):  # (B, L, D)
        return x + self.weight[:, : x.shape[1]]
'''

SINUSOIDAL_ENCODING = '''
class SinusoidalPositions(nn.Module):
    """The fixed sine/cosine encoding of Vaswani et al. (2017), section 3.5, added to the
    tokens: table[pos, 2i] = sin(pos / base^(2i/D)), table[pos, 2i+1] = cos(...)."""

    def __init__(self, max_len, dim, base):
        super().__init__()
        pos = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)  # (max_len, 1)
        rate = base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)  # (D/2,)
        table = torch.zeros(max_len, dim, dtype=torch.float64)
        table[:, 0::2] = torch.sin(pos * rate)
        table[:, 1::2] = torch.cos(pos * rate)
        self.register_buffer("table", table.float())  # persistent: in buffers() and state_dict

    def forward(self, x):  # (B, L, D)
        return x + self.table[: x.shape[1]]
'''

CLASS_TOKEN = '''
class LearnedClassToken(nn.Module):
    """A learned token prepended to the sequence (ViT): (B, L, D) -> (B, L + 1, D)."""

    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x):
        return torch.cat([self.weight.expand(x.shape[0], -1, -1), x], dim=1)
'''


def need_tokens(what: str, shape) -> tuple[int, int]:
    """(L, D) of a token sequence; an image or a vector says how to get tokens.
    ``what``: the op's relation to the tokens, e.g. "class_token prepends to"."""
    if len(shape) == 2:
        return shape
    if len(shape) == 3:  # archc's flatten makes one vector; tokens need reshape + permute
        c, h, w = shape
        raise ShapeError(f"{what} a token sequence [L, D], got an image {list(shape)}",
                         f"turn it into {h * w} tokens of width {c} first: reshape: "
                         f"{{shape: [{c}, {h * w}]}}, then permute: {{dims: [1, 0]}}")
    raise ShapeError(f"{what} a token sequence [L, D], got {list(shape)}",
                     "embed token ids first (embedding), or reshape to [tokens, width]")


def table_length(a: dict, length: int) -> int:
    """The rows of a positional table: ``max_len``, else the input's length."""
    max_len = a["max_len"] if a["max_len"] is not None else length
    if length > max_len:
        raise ShapeError(f"a sequence of {length} tokens is longer than the positional table "
                         f"({max_len})", "raise max_len or shorten the input")
    return max_len


@register
class Embedding(Op):
    name = "embedding"
    doc = "A table of `num` learned vectors of `dim` values, looked up by token id: [L] ids -> [L, dim]."
    attrs = {
        "num": Attr(Int(1), doc="rows: the number of distinct token ids (the vocabulary)"),
        "dim": Attr(Int(1), doc="the width of each vector"),
        "padding_idx": Attr(Int(None), None, "a token id whose vector stays zero and gets no "
                                             "gradient (torch's padding_idx); negative counts from the end"),
    }

    def dtype(self, a, ins, dtypes):
        if dtypes[0] == FLOAT:
            raise ShapeError(f"`embedding` reads token ids ({IDS}), got float values",
                             "feed it the input declared as {shape: [...], dtype: int64, vocab: V}, "
                             "or use linear on float features")
        return FLOAT

    def id_limit(self, a):
        return a["num"]

    def infer(self, a, ins):
        num, pad = a["num"], a["padding_idx"]
        if pad is not None and not -num <= pad < num:
            raise ShapeError(f"padding_idx {pad} is not a row of the table (num {num})",
                             f"use an id in 0..{num - 1}, or -{num}..-1 from the end")
        return (*ins[0], a["dim"])  # (..., L) ids -> (..., L, dim)

    def params(self, a, ins, out):
        return a["num"] * a["dim"], 0

    def rf(self, a, ins, out):
        return "global"  # a new axis of width: the axes of an image's field no longer line up

    def tied_weight(self, a, ins):
        return "weight", (a["num"], a["dim"])

    def torch_init(self, a, ins, out):
        return f"nn.Embedding({a['num']}, {a['dim']}, padding_idx={a['padding_idx']!r})"

    def saved(self, a, ins, out, ctx):
        return [Saved("input")] if ctx.trainable else []  # the ids, to scatter the gradient into rows

    def torch_params(self, a):
        return {"weight": 2}

    def state(self, a, ins, out):
        return {"weight": (a["num"], a["dim"])}


@register
class PosEmbedding(Op):
    name = "pos_embedding"
    doc = ("A learned vector per position added to the tokens [L, D] (ViT, GPT-2); "
           "weight [1, max_len, D], initialised normal(std 0.02).")
    attrs = {"max_len": Attr(Int(1), None, "positions in the table; default: the input's length")}
    torch_helpers = {"LearnedPositions": POSITIONAL_EMBEDDING}

    def infer(self, a, ins):
        length, _ = need_tokens("pos_embedding adds to", ins[0])
        table_length(a, length)
        return ins[0]

    def params(self, a, ins, out):
        length, width = ins[0]
        return table_length(a, length) * width, 0

    def torch_init(self, a, ins, out):
        length, width = ins[0]
        return f"LearnedPositions({table_length(a, length)}, {width})"

    def saved(self, a, ins, out, ctx):
        return []  # an addition or a concatenation: the gradient needs no values

    def torch_params(self, a):
        # rank 1 as a network default sees it (as layer_scale): a fan-based scheme meant for
        # convolutions and linear layers must not replace ViT's normal(0.02) positions; an
        # explicit `init: {weight: {name: normal, std: ...}}` still applies
        return {"weight": 1}

    def state(self, a, ins, out):
        length, width = ins[0]
        return {"weight": (1, table_length(a, length), width)}


@register
class SinusoidalEncoding(Op):
    name = "sinusoidal_encoding"
    doc = ("The fixed sine/cosine position encoding of Vaswani et al. (2017) added to the tokens "
           "[L, D]; a persistent buffer [max_len, D] (counted in buffers).")
    attrs = {
        "max_len": Attr(Int(1), None, "positions in the table; default: the input's length"),
        "base": Attr(Float(0, exclusive_min=True), 10000.0, "the wavelength base (10000 in the paper)"),
    }
    torch_helpers = {"SinusoidalPositions": SINUSOIDAL_ENCODING}

    def infer(self, a, ins):
        length, width = need_tokens("sinusoidal_encoding adds to", ins[0])
        if width % 2:
            raise ShapeError(f"sinusoidal_encoding pairs a sine and a cosine per frequency and "
                             f"needs an even width, got {width}",
                             "make the token width even (e.g. a linear layer before it)")
        table_length(a, length)
        return ins[0]

    def params(self, a, ins, out):
        length, width = ins[0]
        return 0, table_length(a, length) * width

    def torch_init(self, a, ins, out):
        length, width = ins[0]
        return f"SinusoidalPositions({table_length(a, length)}, {width}, {a['base']!r})"

    def state(self, a, ins, out):
        length, width = ins[0]
        return {"table": (table_length(a, length), width)}  # a buffer (torch_params names none)

    def saved(self, a, ins, out, ctx):
        return []  # an addition or a concatenation: the gradient needs no values


@register
class ClassToken(Op):
    name = "class_token"
    doc = "A learned token prepended to the sequence (ViT): [L, D] -> [L + 1, D]; weight [1, 1, D], zeros."
    torch_helpers = {"LearnedClassToken": CLASS_TOKEN}

    def infer(self, a, ins):
        length, width = need_tokens("class_token prepends to", ins[0])
        return (length + 1, width)

    def params(self, a, ins, out):
        return ins[0][-1], 0

    def rf(self, a, ins, out):
        return "global"  # the new token is no window of the input

    def torch_init(self, a, ins, out):
        return f"LearnedClassToken({ins[0][-1]})"

    def saved(self, a, ins, out, ctx):
        return []  # an addition or a concatenation: the gradient needs no values

    def torch_params(self, a):
        return {"weight": 1}  # as pos_embedding: zeros unless an init names it

    def state(self, a, ins, out):
        return {"weight": (1, 1, ins[0][-1])}
