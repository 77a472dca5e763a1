"""A hand-written GPT-2 (Radford et al. 2019) to check specs/gpt2.yaml against.

Written from the paper's description, independently of archc's ops: token and position
embeddings, pre-norm blocks (x + attn(ln_1(x)), then + mlp(ln_2(x))) with causal
multi-head self-attention written out (scores, mask, softmax — no fused kernel), a GELU
(tanh) MLP of 4× the width, a final layer norm, and an output projection that reuses the
token embedding's matrix. Parameters: 124,439,808 at the small size.

``to_archc(state)`` renames this module's state_dict to the spec-built module's keys.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class CausalSelfAttention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)     # rows: queries, keys, values
        self.proj = nn.Linear(width, width)

    def forward(self, x):                          # (B, L, D)
        b, n, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=-1)
        q, k, v = (t.view(b, n, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))  # (B, h, L, d/h)
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)   # (B, h, L, L)
        future = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1)
        weights = scores.masked_fill(future, float("-inf")).softmax(-1)
        y = (weights @ v).transpose(1, 2).reshape(b, n, d)               # (B, L, D)
        return self.proj(y)


class Block(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, heads)
        self.fc, self.out = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.out(F.gelu(self.fc(self.ln_2(x)), approximate="tanh"))


class GPT2(nn.Module):
    def __init__(self, vocab=50257, context=1024, width=768, heads=12, layers=12):
        super().__init__()
        self.tokens = nn.Embedding(vocab, width)
        self.positions = nn.Embedding(context, width)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(width)
        for name, p in self.named_parameters():  # GPT-2's initialisation: weights N(0, 0.02), biases 0
            if p.dim() >= 2:
                nn.init.normal_(p, std=0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, ids):                        # (B, L) token ids
        x = self.tokens(ids) + self.positions.weight[:ids.shape[1]]      # (B, L, D)
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x) @ self.tokens.weight.T                       # (B, L, vocab), tied


def to_archc(state: dict) -> dict:
    """This module's state_dict under the spec-built module's names (specs/gpt2.yaml)."""
    out = {"wte.weight": state["tokens.weight"], "wpe.weight": state["positions.weight"][None],
           "ln_f.weight": state["ln_f.weight"], "ln_f.bias": state["ln_f.bias"]}
    names = {"ln_1": "ln_1", "ln_2": "ln_2", "attn.proj": "attn.out_proj", "fc": "mlp_fc", "out": "mlp_proj"}
    layers = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    for i in range(layers):
        for ours, theirs in names.items():
            for leaf in ("weight", "bias"):
                out[f"h.{i}.{theirs}.{leaf}"] = state[f"blocks.{i}.{ours}.{leaf}"]
        out[f"h.{i}.attn.in_proj_weight"] = state[f"blocks.{i}.attn.qkv.weight"]
        out[f"h.{i}.attn.in_proj_bias"] = state[f"blocks.{i}.attn.qkv.bias"]
    return out
