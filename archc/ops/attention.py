"""Multi-head attention (Vaswani et al., "Attention Is All You Need", 2017, §3.2.2).

One input [L, D] is self-attention; two inputs ``from: [queries, keys_values]`` of shapes
[Lq, D] and [Lk, D] are cross-attention (the decoder of a transformer). The parameters are
torch.nn.MultiheadAttention's, under its names — ``in_proj_weight`` [3D, D] (q, k, v rows
stacked), ``in_proj_bias`` [3D], ``out_proj.weight`` [D, D], ``out_proj.bias`` [D] — so
the weights of torchvision's ViT (``encoder_layer.self_attention``) load by name.

MACs (one sample; torchvision's convention: every weight use, bias excluded, and the
weightless matmuls counted in full — the whole L×L square even under a causal mask):

    q, out projections     2·Lq·D²
    k, v projections       2·Lk·D²
    Q·Kᵀ and A·V           2·Lq·Lk·D

Self-attention (Lq = Lk = L): 4·L·D² + 2·L²·D. ViT-B/16 (L = 197, D = 768): 524.4 M per
layer. Key-padding masks are not supported (every position attends to every other).
"""

from __future__ import annotations

from archc.errors import ShapeError
from archc.ops.registry import Attr, Bool, Float, Int, Op, Saved, numel, register, saved_new

_RANK_NAMES = {1: "a vector", 3: "an image", 4: "a volume"}

# The helper emitted into generated code: nn.MultiheadAttention's parameters and numbers,
# computed by F.scaled_dot_product_attention (fused kernels where torch has them).
ATTENTION_CLASS = '''
class MultiheadAttention(nn.Module):
    """Multi-head attention with nn.MultiheadAttention's parameters (same names, same
    numbers, batch first). forward(x) attends x to itself; forward(x, kv) attends the
    queries x to the keys and values kv."""

    def __init__(self, dim, heads, bias=True, dropout=0.0, causal=False):
        super().__init__()
        self.heads, self.dropout, self.causal = heads, dropout, causal
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim)) if bias else None
        self.out_proj = nn.Linear(dim, dim, bias=bias)
        nn.init.xavier_uniform_(self.in_proj_weight)  # as nn.MultiheadAttention
        if bias:
            nn.init.zeros_(self.out_proj.bias)

    def forward(self, x, kv=None):
        dim = x.shape[-1]
        if kv is None:  # one packed projection: (B, L, 3D) -> three (B, L, D)
            q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        else:
            w_q, w_kv = self.in_proj_weight.split([dim, 2 * dim])
            b_q, b_kv = (None, None) if self.in_proj_bias is None else self.in_proj_bias.split([dim, 2 * dim])
            q = F.linear(x, w_q, b_q)
            k, v = F.linear(kv, w_kv, b_kv).chunk(2, dim=-1)
        # (B, L, D) -> (B, heads, L, D / heads)
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                           is_causal=self.causal)
        return self.out_proj(y.transpose(1, 2).flatten(2))  # (B, Lq, D)
'''


@register
class Attention(Op):
    name = "attention"
    doc = ("Multi-head attention (nn.MultiheadAttention's weights): self-attention of [L, D], "
           "or cross-attention with `from: [queries, keys_values]`.")
    arity = (1, 2)
    onnx_opset = 14  # the dynamo exporter lowers scaled_dot_product_attention to MatMul/Softmax
    attrs = {
        "heads": Attr(Int(1), doc="number of heads; must divide the width D"),
        "bias": Attr(Bool(), True, "biases of the q, k, v and output projections"),
        "dropout": Attr(Float(0, 1), 0.0, "dropout on the attention weights in training"),
        "causal": Attr(Bool(), False, "each position attends only to itself and earlier ones"),
    }
    torch_helpers = {"MultiheadAttention": ATTENTION_CLASS}
    torch_output_writable = True  # the output projection's fresh tensor
    autocast = "half"

    def infer(self, a, ins):
        for shape in ins:
            _check_tokens(shape)
        (lq, d), (lk, dk) = ins[0], ins[-1]
        if dk != d:
            raise ShapeError(f"queries are {d} wide but keys/values are {dk} wide",
                             "project one of them to the other's width (linear)")
        if d % a["heads"]:
            raise ShapeError(f"heads={a['heads']} does not divide the width {d}",
                             f"use a number of heads that divides {d}"
                             + (f" (e.g. {_divisor_near(d, a['heads'])})" if d > 1 else ""))
        if a["causal"] and lq != lk:
            raise ShapeError(f"a causal mask needs as many queries as keys, got {lq} queries and {lk} keys",
                             "drop `causal` for cross-attention of different lengths")
        return (lq, d)

    def params(self, a, ins, out):
        d = out[1]
        return 4 * d * d + (4 * d if a["bias"] else 0), 0

    def macs(self, a, ins, out):
        (lq, d), lk = ins[0], ins[-1][0]
        return 2 * lq * d * d + 2 * lk * d * d + 2 * lq * lk * d  # see the module docstring

    def rf(self, a, ins, out):
        return "global"  # every query sees every key

    def torch_init(self, a, ins, out):
        return (f"MultiheadAttention({out[1]}, {a['heads']}, bias={a['bias']}, dropout={a['dropout']!r}, "
                f"causal={a['causal']})")

    def torch_forward(self, a, ins, out, args, mod):
        return f"{mod}({', '.join(args)})"

    def torch_params(self, a):
        return {"in_proj_weight": 2, "out_proj.weight": 2} | (
            {"in_proj_bias": 1, "out_proj.bias": 1} if a["bias"] else {})

    def state(self, a, ins, out):
        # ATTENTION_CLASS's own parameters first, then its out_proj submodule's
        d, bias = out[1], a["bias"]
        return ({"in_proj_weight": (3 * d, d)} | ({"in_proj_bias": (3 * d,)} if bias else {})
                | {"out_proj.weight": (d, d)} | ({"out_proj.bias": (d,)} if bias else {}))

    def saved(self, a, ins, out, ctx):
        """The projections keep their inputs (for their weights' gradients); the fused
        attention kernels (flash on CPU, flash / memory-efficient on CUDA) keep q, k, v —
        views of the projections' outputs —, their output (which the output projection
        keeps too) and a float32 log-sum-exp per head and query. On the CPU with attention
        dropout torch falls back to the unfused math: the scaled q, copies of k and v, the
        softmax, the dropout noise and the dropped weights, then the output (with one sample,
        v's reshape to (heads, Lk, D/heads) is a view: the whole projection is kept instead)."""
        n, (lq, d), lk, h = ctx.batch, ins[0], ins[-1][0], a["heads"]
        inputs = [Saved("input", i) for i in range(len(ins))] if ctx.trainable else []
        if ctx.device == "cpu" and a["dropout"] > 0:
            squares = [saved_new(n * h * lq * lk)] * 3
            v = saved_new(n * lk * (d if n > 1 else (3 if len(ins) == 1 else 2) * d))
            return inputs + [saved_new(n * lq * d), saved_new(n * lk * d), v, *squares, saved_new(n * lq * d)]
        projections = [saved_new(n * lq * 3 * d)] if len(ins) == 1 else \
            [saved_new(n * lq * d), saved_new(n * lk * 2 * d)]
        return inputs + projections + [saved_new(n * lq * d), saved_new(n * h * lq, 4)]


def _check_tokens(shape) -> None:
    if len(shape) != 2:
        raise ShapeError(f"`attention` expects tokens [L, D], got {rank_name(shape)} {list(shape)}",
                         tokens_fix(shape))


def rank_name(shape) -> str:
    return _RANK_NAMES.get(len(shape), f"a rank-{len(shape)} tensor")


def tokens_fix(shape) -> str:
    """How to make a sequence [L, D] of ``shape``. Not `flatten`: archc's makes one
    vector; an image's positions become tokens by a reshape, then a permute."""
    if len(shape) < 3:
        return "reshape it to [L, D] first (reshape)"
    channels, positions = shape[0], numel(shape[1:])
    return (f"turn it into {positions} tokens of width {channels} first: reshape: "
            f"{{shape: [{channels}, {positions}]}}, then permute: {{dims: [1, 0]}}")


def _divisor_near(d: int, heads: int) -> int:
    """The divisor of ``d`` closest to ``heads`` (ties: the smaller), for the fix text."""
    return min((k for k in range(1, d + 1) if d % k == 0), key=lambda k: (abs(k - heads), k))
