"""The attention mask every causal sequence encoder shares: position t reads the real positions <= t, and itself."""

from __future__ import annotations

import torch


def causal_mask(real: torch.Tensor) -> torch.Tensor:
    """(B, L) bool, True at non-padding positions -> (B, 1, L, L) bool mask for ``scaled_dot_product_attention``.

    Query t may read key s when s <= t and s is real; it always reads itself, so a padding row is never empty.
    """
    L = real.shape[1]
    causal = torch.ones(L, L, dtype=torch.bool, device=real.device).tril()  # (L, L)
    eye = torch.eye(L, dtype=torch.bool, device=real.device)  # (L, L)
    return ((causal & real[:, None, :]) | eye).unsqueeze(1)  # (B, 1, L, L)
