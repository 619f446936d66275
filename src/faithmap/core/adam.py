"""One Adam step on a tensor of free variables (Kingma & Ba, ICLR 2015).

Written out rather than taken from ``torch.optim``: importing the optimisers pulls in
dynamo (seconds of import time), and the callers (CW attack, DANCE decoys) optimise plain
tensors row by row, not module parameters.
"""

from __future__ import annotations

import torch


def adam_direction(g: torch.Tensor, m: torch.Tensor, v: torch.Tensor, t: int,
                   b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> torch.Tensor:
    """m̂ / (√v̂ + eps) for step ``t`` (from 1); updates the moments ``m``, ``v`` in place.
    The step is ``lr ·`` this."""
    m.mul_(b1).add_(g, alpha=1 - b1)
    v.mul_(b2).addcmul_(g, g, value=1 - b2)
    return (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
