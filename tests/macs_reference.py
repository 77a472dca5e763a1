"""An independent reference for MACs: torch's FlopCounterMode (FLOPs / 2) on the real module.

Convolutions, linear layers, (b)mm and the recurrent layers' matrix products are counted
by torch itself; bias additions are not (as archc's convention). On CPU the fused
scaled-dot-product attention kernel is invisible to FlopCounterMode, so attention runs on
torch's MATH backend here, which is made of bmm calls the counter does see.

Usage: ``torch_macs(model, x)`` -> MACs of one sample (``x`` a batch)."""

from __future__ import annotations

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode


def torch_macs(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of one sample of ``model(x)``, as torch's flop counter sees them."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        model(x)
    flops = counter.get_total_flops()
    assert flops % (2 * x.shape[0]) == 0, flops
    return flops // 2 // x.shape[0]
