"""Complexity metrics: how concentrated is an attribution?"""

from __future__ import annotations

import torch

from .base import check_attributions, metric

__all__ = ["sparseness"]


@metric("sparseness", higher_is_better=True, category="complexity", kind="attribution")
def sparseness(attributions: torch.Tensor) -> torch.Tensor:
    """Sparseness: Gini index of |attribution| (Chalasani et al., ICML 2020).

    G(a) = Σ_{i=1}^{n} (2i − n − 1) |a|_(i) / (n Σ_i |a|_i), with |a|_(1) ≤ … ≤ |a|_(n)
    sorted, over all n = C·H·W entries of a sample (no channel reduction: pass N×H×W maps
    for a map-level index). A one-hot map scores 1 − 1/n, a constant map 0; an all-zero
    map scores 0. Quantus' Sparseness adds 1e-7 to every entry first (|Δ| ≲ 1e-7·n/Σ|a|).
    """
    a = check_attributions(attributions).flatten(1).abs().sort(1).values
    n = a.shape[1]
    i = torch.arange(1, n + 1, device=a.device, dtype=a.dtype)
    total = a.sum(1)
    gini = ((2 * i - n - 1) * a).sum(1) / (n * total.clamp_min(torch.finfo(a.dtype).tiny))
    return torch.where(total > 0, gini, torch.zeros_like(gini))
