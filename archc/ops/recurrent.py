"""Recurrent layers: LSTM (Hochreiter & Schmidhuber, 1997) and GRU (Cho et al., 2014),
as torch.nn.LSTM / nn.GRU with ``batch_first=True``.

A sequence [L, D] becomes [L, dirs·H] (``output: sequence``, every step's hidden state of
the last layer) or [dirs·H] (``output: last``: the last layer's final hidden state h_n, the
backward direction's after reading the whole sequence backwards, directions side by side).

Parameters, per layer k and direction (torch's ``weight_ih_l{k}``, ``weight_hh_l{k}``,
``bias_ih_l{k}``, ``bias_hh_l{k}``, ``_reverse`` for the backward direction): G·H·(in_k + H)
weights and 2·G·H biases, G = 4 gates (LSTM) or 3 (GRU), in_0 = D, in_k = dirs·H after.

MACs (one sample): L · Σ_layers Σ_directions G·(in_k·H + H·H) — the gate matmuls of every
step; biases and the element-wise gate products are excluded (torchvision's convention).
"""

from __future__ import annotations

from archc.errors import ShapeError
from archc.ops.attention import rank_name, tokens_fix
from archc.ops.registry import Attr, Bool, Choice, Float, Int, Op, register, saved_new

# The last layer's final hidden state h_n (layers·dirs, B, H) as (B, dirs·H): the forward
# direction first, as in the sequence output's features.
FINAL_STATE = '''
def final_state(h, dirs):
    """(B, dirs * H): the last layer's final hidden state, directions side by side."""
    return torch.cat(list(h[-dirs:]), dim=1)
'''


class _Recurrent(Op):
    gates = 0
    autocast = "half"
    torch_class = ""
    attrs = {
        "hidden": Attr(Int(1), doc="hidden state size H (per direction)"),
        "layers": Attr(Int(1), 1, "stacked layers; each reads the one below's sequence"),
        "bidirectional": Attr(Bool(), False, "a second direction reads the sequence backwards"),
        "dropout": Attr(Float(0, 1), 0.0, "dropout between stacked layers (needs layers ≥ 2)"),
        "bias": Attr(Bool(), True),
        "output": Attr(Choice("sequence", "last"), "sequence",
                       "every step's hidden state [L, dirs·H], or the final one [dirs·H]"),
    }
    torch_helpers = {"final_state": FINAL_STATE}

    def infer(self, a, ins):
        shape = ins[0]
        if len(shape) != 2:
            raise ShapeError(f"`{self.name}` expects a sequence [L, D], got {rank_name(shape)} {list(shape)}",
                             tokens_fix(shape))
        if a["dropout"] and a["layers"] == 1:  # torch only warns: the dropout would do nothing
            raise ShapeError(f"dropout={a['dropout']} acts between stacked layers, and there is one layer",
                             "set layers ≥ 2 or remove dropout")
        width = _dirs(a) * a["hidden"]
        return (shape[0], width) if a["output"] == "sequence" else (width,)

    def _layer_inputs(self, a, ins):
        """The input width of each layer: D, then dirs·H."""
        return [ins[0][1]] + [_dirs(a) * a["hidden"]] * (a["layers"] - 1)

    def params(self, a, ins, out):
        g, h = self.gates, a["hidden"]
        per_dir = sum(g * h * (i + h) + (2 * g * h if a["bias"] else 0) for i in self._layer_inputs(a, ins))
        return _dirs(a) * per_dir, 0

    def macs(self, a, ins, out):
        g, h = self.gates, a["hidden"]
        per_step = sum(g * (i * h + h * h) for i in self._layer_inputs(a, ins))
        return ins[0][0] * _dirs(a) * per_step

    def rf(self, a, ins, out):
        return "global"  # a state carries everything read so far (the backward one: everything after)

    def torch_init(self, a, ins, out):
        return (f"nn.{self.torch_class}({ins[0][1]}, {a['hidden']}, num_layers={a['layers']}, "
                f"bias={a['bias']}, batch_first=True, dropout={a['dropout']!r}, "
                f"bidirectional={a['bidirectional']})")

    def torch_forward(self, a, ins, out, args, mod):
        if a["output"] == "sequence":
            return f"{mod}({args[0]})[0]"
        return f"final_state({mod}({args[0]})[1]{self.h_n}, {_dirs(a)})"

    # An estimate, not a count: the kernels keep an opaque workspace (oneDNN's LSTM on the
    # CPU, cuDNN's reserve on CUDA) or, for torch's step-by-step CPU GRU, the gates of every
    # step: about `workspace` values per step, sample and hidden unit for each layer and
    # direction (measured with torch 2.14 on the CPU at L 8-32, H 64-128, B 16-32: LSTM
    # 15.4-16.5, GRU 5.5-5.9; far more at toy sizes, oneDNN's buffer has a floor); besides
    # it each layer keeps its input and output sequences and four (B, H) states, and
    # dropout between layers its noise.
    saved_is_estimate = True
    workspace = 16

    def saved(self, a, ins, out, ctx):
        n, (length, width), h, dirs = ctx.batch, ins[0], a["hidden"], _dirs(a)
        kept = []
        for layer, layer_in in enumerate(self._layer_inputs(a, ins)):
            for _ in range(dirs):
                kept += [saved_new(n * length * layer_in), saved_new(n * length * h),
                         saved_new(self.workspace * n * length * h)] + [saved_new(n * h)] * 4
            if layer and a["dropout"]:
                kept.append(saved_new(n * length * layer_in))
        return kept

    def torch_params(self, a):
        names = {}
        for k in range(a["layers"]):
            for suffix in ("", "_reverse")[:_dirs(a)]:
                names |= {f"weight_ih_l{k}{suffix}": 2, f"weight_hh_l{k}{suffix}": 2}
                if a["bias"]:
                    names |= {f"bias_ih_l{k}{suffix}": 1, f"bias_hh_l{k}{suffix}": 1}
        return names

    def state(self, a, ins, out):
        # nn.LSTM / nn.GRU: per layer and direction, the gates' rows stacked (gates·H)
        rows, h = self.gates * a["hidden"], a["hidden"]
        shapes = {}
        for k, width in enumerate(self._layer_inputs(a, ins)):
            for suffix in ("", "_reverse")[:_dirs(a)]:
                shapes |= {f"weight_ih_l{k}{suffix}": (rows, width), f"weight_hh_l{k}{suffix}": (rows, h)}
                if a["bias"]:
                    shapes |= {f"bias_ih_l{k}{suffix}": (rows,), f"bias_hh_l{k}{suffix}": (rows,)}
        return shapes


def _dirs(a) -> int:
    return 2 if a["bidirectional"] else 1


@register
class LSTM(_Recurrent):
    name = "lstm"
    doc = "Long short-term memory over a sequence [L, D] (nn.LSTM, batch first)."
    gates = 4  # input, forget, cell, output
    torch_class = "LSTM"
    h_n = "[0]"  # nn.LSTM returns (output, (h_n, c_n))


@register
class GRU(_Recurrent):
    name = "gru"
    doc = "Gated recurrent unit over a sequence [L, D] (nn.GRU, batch first)."
    gates = 3  # reset, update, new
    workspace = 6
    torch_class = "GRU"
    h_n = ""  # nn.GRU returns (output, h_n)
