"""The weight initialisation every sequential network shares (GPT-2 style: N(0, 0.02), zero biases, zero padding row)."""

from __future__ import annotations

from torch import nn


def init_weights(m: nn.Module) -> None:
    """Initialise one module in place; use as ``network.apply(init_weights)``."""
    if isinstance(m, (nn.Linear, nn.Embedding)):
        nn.init.normal_(m.weight, mean=0.0, std=0.02)
    if isinstance(m, nn.Linear) and m.bias is not None:
        nn.init.zeros_(m.bias)
    if isinstance(m, nn.Embedding) and m.padding_idx is not None:
        nn.init.zeros_(m.weight[m.padding_idx])
