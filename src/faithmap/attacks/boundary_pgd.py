"""Batched L2 / L∞ PGD over rows (samples × eps values) with per-channel box bounds.

One row is one (sample, eps) attack. Every step runs the still-active rows through the
model once (forward+backward, chunked by ``batch_size``):

- the logits of that forward pass tell whether the current iterate already has a label
  ≠ y; a row stops at its first adversarial iterate (``stop_on_flip``), which is the point
  closest to the decision boundary along its path;
- rows of a sample whose eps is larger than an eps that already flipped that sample are
  dropped (early stop: their result could never be picked);
- the other rows take a step of size a = step_scale · eps / steps (Madry et al. 2018) along
  g/‖g‖₂ (L2) or sign(g) (L∞), g = ∇ CE(f(x + δ), y), and are projected back onto the eps
  ball and the box [lo, hi] (per channel).

Clamping into a box that contains x never increases ‖δ‖_p, so the result lies in both sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..core.batching import chunks
from ..core.errors import InvalidInputError
from ..core.seeding import rand_rows, randn_rows
from .pgd import _l2

NORMS = ("l2", "linf")
Box = tuple[torch.Tensor, torch.Tensor] | None
BoundsLike = tuple[float | Sequence[float] | torch.Tensor, float | Sequence[float] | torch.Tensor]


def check_norm(norm: object) -> str:
    """``"l2"`` or ``"linf"`` (aliases ``2``, ``"L2"``, ``"inf"``, ``"Linf"``)."""
    key = str(norm).strip().lower().replace("∞", "inf")
    key = {"2": "l2", "inf": "linf", "l_inf": "linf", "l_2": "l2"}.get(key, key)
    if key not in NORMS:
        raise ValueError(f"norm must be 'l2' or 'linf', got {norm!r}")
    return key


def as_box(bounds: BoundsLike | None, x: torch.Tensor) -> Box:
    """``(lo, hi)`` as 1×C×1×1 tensors (scalars or C per-channel values); checks x lies inside."""
    if bounds is None:
        return None
    try:
        lo, hi = bounds
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bounds must be a pair (lo, hi) or None, got {bounds!r}") from exc
    c = x.shape[1]

    def channel(v: object, name: str) -> torch.Tensor:
        t = torch.as_tensor(v, dtype=x.dtype, device=x.device).detach()
        if t.dim() == 0:
            t = t.expand(c)
        if t.dim() != 1 or t.numel() != c:
            raise ValueError(f"bounds {name} must be a scalar or {c} per-channel values, "
                             f"got shape {tuple(t.shape)}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"bounds {name} must be finite")
        return t.view(1, c, 1, 1)

    lo_t, hi_t = channel(lo, "lo"), channel(hi, "hi")
    if not bool((lo_t < hi_t).all()):
        raise ValueError("bounds need lo < hi in every channel")
    tol = 1e-5 * float((hi_t - lo_t).max())
    outside = ((x < lo_t - tol) | (x > hi_t + tol)).flatten(2).any(2)  # N×C
    if bool(outside.any()):
        i, ch = (int(v) for v in torch.nonzero(outside)[0])
        raise InvalidInputError(
            f"inputs lie outside bounds (sample {i}, channel {ch}); pass the valid input range "
            "of your model, per channel when it normalises inside (or bounds=None)")
    return lo_t, hi_t


def norm_of(delta: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-row ‖δ‖₂ or ‖δ‖_∞ (shape R)."""
    flat = delta.flatten(1)
    return flat.norm(dim=1) if norm == "l2" else flat.abs().amax(1)


def project(delta: torch.Tensor, x: torch.Tensor, eps: torch.Tensor, norm: str,
            box: Box) -> torch.Tensor:
    """Project δ onto {‖δ‖_p ≤ eps} (eps: one radius per row), then keep x + δ in the box."""
    e = eps.view(-1, *[1] * (delta.dim() - 1))
    if norm == "l2":
        delta = delta * (e / _l2(delta)).clamp_max(1.0)
    else:
        delta = torch.maximum(torch.minimum(delta, e), -e)
    if box is not None:
        delta = torch.minimum(torch.maximum(x + delta, box[0]), box[1]) - x
    return delta


def random_start(x: torch.Tensor, eps: torch.Tensor, norm: str, box: Box, seed: int,
                 keys: list[tuple[int, ...]]) -> torch.Tensor:
    """δ₀ uniform in the eps ball (one seeded draw per row key), projected into the box."""
    shape = tuple(x.shape[1:])
    e = eps.view(-1, *[1] * len(shape))
    if norm == "l2":
        direction = randn_rows(seed, [(*k, 0) for k in keys], shape, x.dtype, x.device)
        u = rand_rows(seed, [(*k, 1) for k in keys], (1,), x.dtype, x.device)
        radius = u.pow(1.0 / x[0].numel()).view(-1, *[1] * len(shape))
        delta = direction / _l2(direction) * radius * e
    else:
        delta = (2 * rand_rows(seed, [(*k, 0) for k in keys], shape, x.dtype, x.device) - 1) * e
    return project(delta, x, eps, norm, box)


@dataclass
class PGDRows:
    """Per row: ``last`` iterate, ``hit`` (first adversarial iterate, x where none),
    ``flipped``, ``flip_step`` (−1 where none); pass counts (rows through the model)."""

    last: torch.Tensor
    hit: torch.Tensor
    flipped: torch.Tensor
    flip_step: torch.Tensor
    forward_backward: int
    forward: int


def pgd_rows(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor, *, norm: str,
    steps: int, step_size: torch.Tensor, box: Box, start: torch.Tensor,
    stop_on_flip: bool = True, groups: torch.Tensor | None = None,
    ranks: torch.Tensor | None = None, batch_size: int | None = None,
) -> PGDRows:
    """Untargeted PGD on every row of ``x`` (R×C×H×W) with its own ``eps``/``step_size``.

    ``groups``/``ranks`` (R ints): a row is dropped once a row of its group with a smaller
    rank has flipped (early stop of the eps sweep). Returns detached tensors.
    """
    r = x.shape[0]
    x, delta = x.detach(), start.detach().clone()
    hit = x.clone()
    flipped = torch.zeros(r, dtype=torch.bool, device=x.device)
    flip_step = torch.full((r,), -1, dtype=torch.long, device=x.device)
    active = torch.ones_like(flipped)
    a = step_size.view(-1, *[1] * (x.dim() - 1))
    fb = fwd = 0
    for t in range(steps + 1):
        idx = torch.nonzero(active).flatten()
        if len(idx) == 0:
            break
        for part in chunks(len(idx), batch_size):
            rows = idx[part.to(idx.device)]
            leaf = delta[rows].requires_grad_(t < steps)
            with torch.set_grad_enabled(t < steps):
                logits = model(x[rows] + leaf)
                if t < steps:
                    loss = F.cross_entropy(logits, y[rows], reduction="sum")
                    (g,) = torch.autograd.grad(loss, leaf)
            new = (logits.detach().argmax(1) != y[rows]) & ~flipped[rows]
            hit[rows[new]] = x[rows[new]] + delta[rows[new]]
            flip_step[rows[new]] = t
            flipped[rows[new]] = True
            if t == steps:
                fwd += len(rows)
                continue
            fb += len(rows)
            move = ~flipped[rows] if stop_on_flip else torch.ones_like(new)
            g = g.detach()
            direction = g / _l2(g) if norm == "l2" else g.sign()
            stepped = project(delta[rows] + a[rows] * direction, x[rows], eps[rows], norm, box)
            delta[rows] = torch.where(move.view(-1, *[1] * (x.dim() - 1)), stepped, delta[rows])
        if stop_on_flip:
            active = ~flipped
        if groups is not None and ranks is not None:
            best = torch.full((int(groups.max()) + 1,), r + 1, dtype=torch.long, device=x.device)
            best = best.scatter_reduce(0, groups[flipped], ranks[flipped], "amin")
            active &= ranks < best[groups]
    return PGDRows(x + delta, hit, flipped, flip_step, fb, fwd)


@dataclass
class Sweep:
    """Per sample: the first adversarial point at the smallest flipping eps (x where none),
    ``eps_index`` (−1 where none); pass counts."""

    points: torch.Tensor
    eps_index: torch.Tensor
    forward_backward: int
    forward: int


def pgd_sweep(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor, *, norm: str = "l2",
    steps: int = 40, step_scale: float = 2.5, box: Box = None, seed: int = 0,
    random_init: bool = True, early_stop: bool = True, batch_size: int | None = None,
) -> Sweep:
    """PGD for every sample × every eps (ascending) as one batched attack (module doc)."""
    n, e = x.shape[0], len(eps)
    eps_rows = eps.to(device=x.device, dtype=x.dtype).repeat_interleave(n)  # row = k·N + i
    xr, yr = x.repeat(e, 1, 1, 1), y.repeat(e)
    sample = torch.arange(n, device=x.device).repeat(e)
    rank = torch.arange(e, device=x.device).repeat_interleave(n)
    if random_init:
        keys = [(int(i), int(k)) for k, i in zip(rank.tolist(), sample.tolist())]
        start = random_start(xr, eps_rows, norm, box, seed, keys)
    else:
        start = torch.zeros_like(xr)
    res = pgd_rows(model, xr, yr, eps_rows, norm=norm, steps=steps,
                   step_size=step_scale * eps_rows / max(steps, 1), box=box, start=start,
                   groups=sample if early_stop else None, ranks=rank, batch_size=batch_size)
    flipped = res.flipped.view(e, n)
    k = torch.where(flipped.any(0), flipped.int().argmax(0), -1)
    points = res.hit.view(e, n, *x.shape[1:])[k.clamp_min(0), torch.arange(n, device=x.device)]
    return Sweep(points, k, res.forward_backward, res.forward)
