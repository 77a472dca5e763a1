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
from archc.ops.registry import Attr, Bool, Choice, Float, Int, Op, Saved, register, saved_new

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

    def layout(self, a, ins, out, contiguous):
        # the kernels run time-major: output: sequence is a batch-first view of an (L, B, ·)
        # tensor (contiguous at batch 1 only); the final state is a new (B, dirs·H) tensor
        return "transposed" if a["output"] == "sequence" and ins[0][0] > 1 else "new"

    @staticmethod
    def saved_is_estimate(settings) -> bool:
        """The rule below is exact on the CPU in float32 and a stated estimate elsewhere:
        CUDA keeps cuDNN's reserve instead of oneDNN's workspace and its GRU is fused, and
        under CPU autocast the kernels change (oneDNN's bf16 LSTM needs AVX-512 bf16; the
        GRU mixes bf16 and float32 copies): neither could be measured here."""
        return not (settings.device == "cpu" and settings.precision == "fp32")

    def saved(self, a, ins, out, ctx):
        """What torch 2.14 keeps on the CPU (oneDNN 3.x), derived from saved_tensors_hooks
        over a grid (batch 1-33, length 1-40, width 1-64, hidden 1-300, 1-3 layers, both
        directions, with and without bias and dropout) and equal to the byte there.

        nn.LSTM runs oneDNN's LSTM one layer and direction at a time (mkldnn_rnn_layer),
        which keeps its input, its output sequence, its final h and c and its workspace;
        nn.GRU runs torch's step-by-step cell, which keeps per step its (B, 3H) hidden
        gates, three (B, H) tensors (the new gate, two copies made before in-place
        products) and the hidden state it read. Both keep the zero initial states
        (layers·dirs, B, H) — h, and c for the LSTM — and read a time-major copy of the
        batch-first input, x.transpose(0, 1): no copy at batch 1 or length 1, where that
        is contiguous (the input itself is kept); the GRU's backward direction makes a
        second copy. Between layers: the layer output the next layer reads (both
        directions concatenated), or with dropout its noise and the dropped output. A frozen
        GRU (its input needing a gradient) keeps neither inputs nor hidden states."""
        n, (length, width), h, dirs = ctx.batch, ins[0], a["hidden"], _dirs(a)
        lstm = self.gates == 4
        # a frozen GRU's matmuls keep only their (frozen) weights: no inputs, no hidden states
        reads = lstm or ctx.trainable
        steps = n * length  # values per feature of one sequence tensor
        kept = [saved_new(a["layers"] * dirs * n * h)] * (2 if lstm else int(reads))  # zero h0 (and c0)
        copies = (1 if lstm else dirs) if reads else 0
        in_place = (n == 1 or length == 1) and (not ctx.contiguous or ctx.contiguous[0])
        kept += [Saved("input")] * bool(copies) if in_place else [saved_new(steps * width)] * copies
        last = a["layers"] - 1
        for layer, layer_in in enumerate(self._layer_inputs(a, ins)):
            if layer and a["dropout"]:
                kept += [saved_new(steps * layer_in)] * (1 + reads)  # the noise, the dropped input
            elif layer and reads and (dirs == 2 or not lstm):  # the concatenation / the GRU's output stack
                kept.append(saved_new(steps * layer_in))
            for _ in range(dirs):
                if not lstm:
                    kept += [saved_new(6 * steps * h)] + [saved_new((length - 1) * n * h)] * reads
                    continue
                whole = layer == last and dirs == 1 and a["output"] == "sequence"
                kept += [Saved("output") if whole else saved_new(steps * h), saved_new(n * h), saved_new(n * h),
                         saved_new(onednn_lstm_workspace(n, length, layer_in, h), 1)]
                if not a["bias"]:  # oneDNN is given copies of the weights when there are no biases
                    kept.append(saved_new(self.gates * h * (layer_in + h)))
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


PAGE = 4096  # oneDNN starts each part of an RNN workspace on a page


def _good_ld(dim: int) -> int:
    """oneDNN's leading dimension for float32 rows: a multiple of 64 bytes, moved off a
    multiple of 256 values (4K aliasing)."""
    ld = -(-dim // 16) * 16
    return ld + 16 if ld % 256 == 0 else ld


def onednn_lstm_workspace(batch: int, length: int, width: int, hidden: int) -> int:
    """Bytes of oneDNN's forward-training workspace for one LSTM layer and direction in
    float32 (oneDNN 3.x, cpu/rnn/rnn_utils: set_offsets; torch keeps it as a uint8 tensor):
    the gates of every step, h of every step, then for L + 1 steps and two "layers"
    (input and output) the states, c, and — reserved for backward — the diff states of
    the layer and of the iteration and diff c, each part starting on a 4 KiB page, the
    total rounded up to one (hence the floor of 7 pages at toy sizes)."""
    states = 2 * (length + 1) * batch
    parts = [length * batch * _good_ld(4 * hidden), length * batch * _good_ld(hidden),
             states * _good_ld(max(width, hidden)), states * hidden,
             states * _good_ld(max(width, hidden)), states * _good_ld(max(width, hidden)), states * hidden]
    offset = 0
    for values in parts:
        offset = -(-offset // PAGE) * PAGE + 4 * values
    return -(-offset // PAGE) * PAGE


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
    torch_class = "GRU"
    h_n = ""  # nn.GRU returns (output, h_n)
