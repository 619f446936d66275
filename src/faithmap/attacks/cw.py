"""Carlini–Wagner L2 attack (Carlini & Wagner, IEEE S&P 2017), batched.

Minimises ‖x_adv − x‖₂² + c · max(m(x_adv), −κ) with Adam over x_adv = x + w, where
m = f_y − max_{j≠y} f_j (untargeted: leave class y) or m = max_{j≠y} f_j − f_y
(``targeted``: reach class y). ``start`` (one point per sample) sets w₀ = start − x
(default w₀ = 0). The box is kept by projecting x + w into [lo, hi] (per channel,
:func:`~faithmap.core.geometry.clip_to_box`) after every step, not by the paper's tanh
change of variables: with inputs at the box edge (MNIST pixels are mostly exactly 0) tanh
saturates and 100 steps at lr 1e-2 barely move those pixels. Instead of the paper's outer
binary search over c, each sample's c is multiplied by ``c_growth`` every ``steps // 5``
steps while that sample has no adversarial point yet (one pass of ``steps`` iterations in
all). The result per sample is the closest iterate whose label differs from y (x where
none; "adversarial" means label ≠ y, or label = y when targeted).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..core.adam import adam_direction
from ..core.batching import chunks
from ..core.geometry import Box, clip_to_box


@dataclass
class CWResult:
    """Per sample: closest adversarial ``points`` (x where none), ``found``, L2 ``distances``
    (inf where none); pass counts."""

    points: torch.Tensor
    found: torch.Tensor
    distances: torch.Tensor
    forward_backward: int
    forward: int


def cw_l2(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int = 100, lr: float = 1e-2,
    c: float = 1.0, c_growth: float = 10.0, kappa: float = 0.0, box: Box = None,
    batch_size: int | None = None, targeted: bool = False, start: torch.Tensor | None = None,
) -> CWResult:
    """CW-L2 on every sample (chunks of ``batch_size`` samples; Adam is per element, so the
    result does not depend on the chunking). Returns detached tensors."""
    x = x.detach()
    best = x.clone()
    dist = torch.full((x.shape[0],), float("inf"), dtype=x.dtype, device=x.device)
    fb = fwd = 0
    every = max(1, steps // 5)
    for part in chunks(x.shape[0], batch_size):
        rows = part.to(x.device)
        xs, ys = x[rows], y[rows]
        w0 = torch.zeros_like(xs) if start is None else (
            clip_to_box(start.detach()[rows], box) - xs)
        w = w0.clone().requires_grad_(True)
        m, v = torch.zeros_like(xs), torch.zeros_like(xs)
        cs = torch.full_like(dist[rows], c)
        for t in range(steps + 1):
            with torch.set_grad_enabled(t < steps):
                xa = xs + w
                logits = model(xa)
                d2 = (xa - xs).flatten(1).pow(2).sum(1)
                real = logits.gather(1, ys[:, None]).squeeze(1)
                other = logits.scatter(1, ys[:, None], float("-inf")).amax(1)
                pred = logits.detach().argmax(1)
                adv = (pred == ys) if targeted else (pred != ys)
                closer = adv & (d2.detach().sqrt() < dist[rows])
                best[rows[closer]] = xa.detach()[closer]
                dist[rows[closer]] = d2.detach().sqrt()[closer]
                if t == steps:
                    fwd += len(rows)
                    break
                margin = (other - real) if targeted else (real - other)
                loss = (d2 + cs * margin.clamp_min(-kappa)).sum()
            (g,) = torch.autograd.grad(loss, w)
            with torch.no_grad():
                w.sub_(lr * adam_direction(g, m, v, t + 1))
                if box is not None:
                    w.copy_(clip_to_box(xs + w, box) - xs)
            fb += len(rows)
            if (t + 1) % every == 0:
                cs = torch.where(torch.isinf(dist[rows]), cs * c_growth, cs)
    return CWResult(best, torch.isfinite(dist), dist, fb, fwd)
