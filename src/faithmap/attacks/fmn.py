"""Fast Minimum-Norm attack (FMN; Pintor, Roli, Brendel & Biggio, NeurIPS 2021), batched,
L2 and L∞, with per-channel box bounds and early stop per row.

FMN looks for x' = x + δ with the smallest ‖δ‖_p on the other side of the decision
boundary of class y. Per row it keeps a radius ε_k and, at every step k (one
forward+backward of the still-active rows), with the margin loss

    L(δ) = s · (f_y(x + δ) − max_{j≠y} f_j(x + δ)),   s = +1 (leave y), −1 (reach y, targeted)

(L < 0 ⇔ the label at x + δ is on the other side, up to ties):

1. ε update (the paper's Alg. 1): if x + δ_k is adversarial, ε ← min(ε(1 − γ_k), ‖δ*‖)
   (δ*: the smallest adversarial δ so far); otherwise ε ← ε(1 + γ_k) once some adversarial
   point was found, and before that ε ← (‖δ_k‖_p + |L| / ‖∇L‖_q)(1 + γ_k) (the linearised
   distance to the boundary, q the dual norm: 2 for L2, 1 for L∞; the factor (1 + γ_k) is
   ours: without it some rows of the zoo's MNIST models — with adv-lib's FMN too — approach
   the boundary from inside and never cross it);
2. a gradient step δ ← δ − α_k ∇L / ‖∇L‖₂, where ∇L has its components zeroed that push a
   coordinate already at the box's edge further out (ours: on MNIST most pixels sit at 0,
   the clipped step then moves far less than ε and ‖∇L‖_q over-states the reachable
   slope, so rows stall short of the boundary);
3. projection onto {‖δ‖_p ≤ ε} and then into the box [lo, hi] (per channel,
   :func:`~faithmap.core.geometry.project`); ε is also capped at the farthest point of the
   box, ‖max(x − lo, hi − x)‖_p.

α_k and γ_k follow the paper's cosine annealing from α₀ to α₀/100 and from γ₀ = 0.05 to
0.001 over ``steps``. α₀ is given in units of the box's mean width (FMN's inputs are in
[0, 1], where α₀ = 1 for L2; our default α₀ = 10 for L∞ is reconstructed, not from the
paper: the step is L2-normalised, so an L∞ step of α₀ = 1 moves each of d coordinates by
about 1/√d). The result per row is δ*.

Early stop per row (not in the paper): a row that has an adversarial point leaves the batch
once ‖δ*‖ has not shrunk by more than ``tol`` (relative) for ``patience`` consecutive
steps, so its later steps cost nothing; rows without one run all ``steps``.

``start`` (one point per row): δ₀ = start − x; rows whose start is already adversarial
begin with δ* = δ₀ and ε = ‖δ₀‖ (pass a boundary point, e.g. after a bisection from x,
as FMN's warm start does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..core.batching import chunks
from ..core.geometry import Box, farthest_in_box, norm_of, project


@dataclass
class FMNResult:
    """Per row: smallest adversarial ``points`` (x where none), ``found``, ``distances``
    (‖x' − x‖_p, inf where none), ``steps`` (forward+backward steps the row ran); pass
    counts (rows through the model)."""

    points: torch.Tensor
    found: torch.Tensor
    distances: torch.Tensor
    steps: torch.Tensor
    forward_backward: int
    forward: int


def margin_loss(logits: torch.Tensor, y: torch.Tensor, targeted: torch.Tensor) -> torch.Tensor:
    """s · (f_y − max_{j≠y} f_j) per row: < 0 where the row is on the other side."""
    real = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.scatter(1, y[:, None], float("-inf")).amax(1)
    m = real - other
    return torch.where(targeted, -m, m)


def fmn(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, norm: str = "l2", steps: int = 100,
    alpha: float | None = None, gamma: float = 0.05, gamma_final: float = 0.001,
    box: Box = None, targeted: bool | torch.Tensor = False, early_stop: bool = True,
    patience: int = 20, tol: float = 1e-3, batch_size: int | None = None,
    start: torch.Tensor | None = None, max_norm: float | None = None,
) -> FMNResult:
    """FMN (module doc) on every row of ``x`` (chunks of ``batch_size`` rows; every step is
    per row, so the result does not depend on the chunking). ``targeted``: one bool for all
    rows or one per row. ``alpha``: α₀ in box widths (None: 1 for L2, 10 for L∞).
    ``max_norm``: a cap on ε, so no point farther than it is searched or returned (None:
    the box's farthest point). Returns detached tensors."""
    x = x.detach()
    n = x.shape[0]
    tg = torch.as_tensor(targeted, dtype=torch.bool, device=x.device).expand(n)
    if alpha is None:
        alpha = 1.0 if norm == "l2" else 10.0
    scale = float((box[1] - box[0]).mean()) if box is not None else float(x.max() - x.min())
    a0 = alpha * (scale or 1.0)
    dual = 2 if norm == "l2" else 1
    worst = farthest_in_box(x, box, norm)
    if max_norm is not None:
        worst = worst.clamp_max(float(max_norm))
    best = x.clone()
    dist = torch.full((n,), math.inf, dtype=x.dtype, device=x.device)
    ran = torch.zeros(n, dtype=torch.long)
    fb = fwd = 0
    for part in chunks(n, batch_size):
        rows = part.to(x.device)
        xs, ys, ts, cap = x[rows], y[rows], tg[rows], worst[rows]
        m = len(rows)
        delta = torch.zeros_like(xs)
        eps = torch.full((m,), math.inf, dtype=x.dtype, device=x.device)
        b_pt, b_d = xs.clone(), torch.full_like(eps, math.inf)
        if start is not None:
            delta = project(start.detach()[rows] - xs, xs, cap, norm, box)
            with torch.no_grad():
                adv0 = crossed(model(xs + delta).argmax(1), ys, ts)
            fwd += m
            d0 = norm_of(delta, norm)
            b_pt = torch.where(adv0.view(-1, 1, 1, 1), xs + delta, b_pt)
            b_d = torch.where(adv0, d0, b_d)
            eps = torch.where(adv0, d0, eps)
        found = torch.isfinite(b_d)
        stall = torch.zeros(m, dtype=torch.long, device=x.device)
        active = torch.ones(m, dtype=torch.bool, device=x.device)
        n_steps = torch.zeros(m, dtype=torch.long, device=x.device)
        for k in range(steps + 1):
            idx = torch.nonzero(active).flatten()
            if len(idx) == 0:
                break
            last = k == steps  # the last iterate is only evaluated
            d = delta[idx].clone().requires_grad_(not last)
            with torch.set_grad_enabled(not last):
                logits = model(xs[idx] + d)
                loss = margin_loss(logits, ys[idx], ts[idx])
                if not last:
                    (g,) = torch.autograd.grad(loss.sum(), d)
            d, loss = d.detach(), loss.detach()
            adv = crossed(logits.detach().argmax(1), ys[idx], ts[idx])
            dn = norm_of(d, norm)
            shrank = keep_closer(b_pt, b_d, idx, xs, d, dn, adv, tol)
            if last:
                fwd += len(idx)
                break
            fb += len(idx)
            n_steps[idx] += 1
            a_k = annealed(k, steps, a0, a0 / 100)
            g_k = annealed(k, steps, gamma, gamma_final)
            was_found = found[idx] | adv
            found[idx] = was_found
            g = inward(g, xs[idx] + d, box)
            flat_g = g.flatten(1)
            to_boundary = loss.abs() / flat_g.norm(p=dual, dim=1).clamp_min(1e-12)
            e = eps[idx]
            e = torch.where(adv, torch.minimum(e * (1 - g_k), b_d[idx]),
                            torch.where(was_found, e * (1 + g_k), (dn + to_boundary) * (1 + g_k)))
            e = torch.minimum(e, cap[idx])
            eps[idx] = e
            step = g / flat_g.norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (g.dim() - 1))
            delta[idx] = project(d - a_k * step, xs[idx], e, norm, box)
            if early_stop:
                s = torch.where(was_found & ~shrank, stall[idx] + 1, 0)
                stall[idx] = s
                active[idx] = s < patience
        best[rows], dist[rows] = b_pt, b_d
        ran[part] = n_steps.cpu()
    return FMNResult(best, torch.isfinite(dist), dist, ran, fb, fwd)


def keep_closer(best: torch.Tensor, dist: torch.Tensor, idx: torch.Tensor, xs: torch.Tensor,
                d: torch.Tensor, dn: torch.Tensor, adv: torch.Tensor, tol: float) -> torch.Tensor:
    """Where row ``idx`` is on the other side (``adv``) and closer (‖d‖ = ``dn`` < ``dist``),
    keep xs + d as its best point (in place). Returns the rows whose best distance shrank by
    more than ``tol`` (relative): FMN's and DDN's early-stop signal."""
    closer = adv & (dn < dist[idx])
    shrank = adv & (dn < dist[idx] * (1 - tol))
    best[idx[closer]] = xs[idx[closer]] + d[closer]
    dist[idx[closer]] = dn[closer]
    return shrank


def annealed(k: int, steps: int, start: float, end: float) -> float:
    """Cosine annealing from ``start`` (k = 0) to ``end`` (k = ``steps``) (FMN's α and γ,
    DDN's α)."""
    cos = (1 + math.cos(math.pi * k / steps)) / 2
    return end + (start - end) * cos


def inward(g: torch.Tensor, z: torch.Tensor, box: Box) -> torch.Tensor:
    """``g`` with its components zeroed that would move a coordinate of ``z`` already at the
    box's edge further out along the descent step z − g, so that a normalised step is not
    spent on what the box clips away at once."""
    if box is None:
        return g
    return g.masked_fill(((z <= box[0]) & (g > 0)) | ((z >= box[1]) & (g < 0)), 0.0)


def crossed(pred: torch.Tensor, y: torch.Tensor, targeted: torch.Tensor) -> torch.Tensor:
    """Label on the other side: ≠ y, or = y for targeted rows."""
    return torch.where(targeted, pred == y, pred != y)
