"""Projected gradient descent (Madry et al., 2018): the one PGD of faithmap, batched.

:func:`pgd_l2` is the plain L2 attack (robust training of the zoo); :func:`pgd_rows` and
:func:`pgd_sweep` are the batched L2 / L∞ attack over rows (samples × radii) with
per-channel box bounds that the boundary search uses. Both run :func:`pgd_rows`.

One row is one (sample, radius) attack. Every step runs the still-active rows through the
model once (forward+backward, chunked by ``batch_size``):

- the logits of that forward pass tell whether the current iterate already has a label
  ≠ y; a row stops at its first adversarial iterate (``stop_on_flip``), which is the point
  closest to the decision boundary along its path;
- rows of a sample whose radius is larger than a radius that already flipped that sample
  are dropped (early stop: their result could never be picked);
- the other rows take a step of size a = step_scale · radius / steps (Madry et al. 2018)
  along g/‖g‖₂ (L2) or sign(g) (L∞), g = ∇ CE(f(x + δ), y), and are projected back onto the
  radius ball and the box [lo, hi] (per channel) (:func:`~faithmap.core.geometry.project`).

Clamping into a box that contains x never increases ‖δ‖_p, so the result lies in both sets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..core.batching import chunks
from ..core.deprecation import renamed_attribute, renamed_options
from ..core.geometry import Box, l2_norm, project, unit_box
from ..core.prelude import prepare
from ..core.seeding import rand_rows, randn_rows

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@renamed_options(eps="radius")
def random_start(x: torch.Tensor, radius: torch.Tensor, norm: str, box: Box, seed: int,
                 keys: list[tuple[int, ...]]) -> torch.Tensor:
    """δ₀ uniform in the ball of ``radius`` (one per row; one seeded draw per row key),
    projected into the box."""
    shape = tuple(x.shape[1:])
    e = radius.view(-1, *[1] * len(shape))
    if norm == "l2":
        direction = randn_rows(seed, [(*k, 0) for k in keys], shape, x.dtype, x.device)
        u = rand_rows(seed, [(*k, 1) for k in keys], (1,), x.dtype, x.device)
        length = u.pow(1.0 / x[0].numel()).view(-1, *[1] * len(shape))
        delta = direction / l2_norm(direction) * length * e
    else:
        delta = (2 * rand_rows(seed, [(*k, 0) for k in keys], shape, x.dtype, x.device) - 1) * e
    return project(delta, x, radius, norm, box)


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


@renamed_options(eps="radius")
def pgd_rows(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, radius: torch.Tensor, *, norm: str,
    steps: int, step_size: torch.Tensor, box: Box, start: torch.Tensor,
    stop_on_flip: bool = True, groups: torch.Tensor | None = None,
    ranks: torch.Tensor | None = None, batch_size: int | None = None,
    loss_fn: Loss | None = None, targeted: bool = False,
) -> PGDRows:
    """PGD on every row of ``x`` (R×C×H×W) with its own ``radius``/``step_size``: ascent on
    ``loss_fn(logits, y)`` (summed cross-entropy by default; descent when ``targeted``).
    A row "flips" when its label differs from y (is y when ``targeted``).

    ``groups``/``ranks`` (R ints): a row is dropped once a row of its group with a smaller
    rank has flipped (early stop of the radius sweep). Returns detached tensors.
    """
    loss_fn = loss_fn or (lambda out, t: F.cross_entropy(out, t, reduction="sum"))
    sign = -1.0 if targeted else 1.0
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
                    loss = loss_fn(logits, y[rows])
                    (g,) = torch.autograd.grad(loss, leaf)
            pred = logits.detach().argmax(1)
            reached = (pred == y[rows]) if targeted else (pred != y[rows])
            new = reached & ~flipped[rows]
            hit[rows[new]] = x[rows[new]] + delta[rows[new]]
            flip_step[rows[new]] = t
            flipped[rows[new]] = True
            if t == steps:
                fwd += len(rows)
                continue
            fb += len(rows)
            move = ~flipped[rows] if stop_on_flip else torch.ones_like(new)
            g = g.detach()
            direction = sign * (g / l2_norm(g) if norm == "l2" else g.sign())
            stepped = project(delta[rows] + a[rows] * direction, x[rows], radius[rows], norm,
                              box)
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
    """Per sample: the first adversarial point at the smallest flipping radius (x where
    none), ``radius_index`` (−1 where none; ``eps_index`` is its deprecated name); pass
    counts."""

    points: torch.Tensor
    radius_index: torch.Tensor
    forward_backward: int
    forward: int

    eps_index = renamed_attribute("eps_index", "radius_index")


@renamed_options(eps="radius")
def pgd_sweep(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, radius: torch.Tensor, *,
    norm: str = "l2", steps: int = 40, step_scale: float = 2.5, box: Box = None, seed: int = 0,
    random_init: bool = True, early_stop: bool = True, batch_size: int | None = None,
    targeted: bool = False, start: torch.Tensor | None = None,
) -> Sweep:
    """PGD for every sample × every radius (ascending) as one batched attack (module doc).

    ``targeted``: descend the cross-entropy of y and stop where the label *is* y.
    ``start``: one point per sample to start from (projected into each radius ball and the
    box) instead of the random or zero start.
    """
    n, e = x.shape[0], len(radius)
    radius_rows = radius.to(device=x.device, dtype=x.dtype).repeat_interleave(n)  # k·N + i
    xr, yr = x.repeat(e, 1, 1, 1), y.repeat(e)
    sample = torch.arange(n, device=x.device).repeat(e)
    rank = torch.arange(e, device=x.device).repeat_interleave(n)
    if start is not None:
        start = project(start.detach().repeat(e, 1, 1, 1) - xr, xr, radius_rows, norm, box)
    elif random_init:
        keys = [(int(i), int(k)) for k, i in zip(rank.tolist(), sample.tolist())]
        start = random_start(xr, radius_rows, norm, box, seed, keys)
    else:
        start = torch.zeros_like(xr)
    res = pgd_rows(model, xr, yr, radius_rows, norm=norm, steps=steps,
                   step_size=step_scale * radius_rows / max(steps, 1), box=box, start=start,
                   groups=sample if early_stop else None, ranks=rank, batch_size=batch_size,
                   targeted=targeted)
    flipped = res.flipped.view(e, n)
    k = torch.where(flipped.any(0), flipped.int().argmax(0), -1)
    points = res.hit.view(e, n, *x.shape[1:])[k.clamp_min(0), torch.arange(n, device=x.device)]
    return Sweep(points, k, res.forward_backward, res.forward)


@renamed_options(eps="radius")
def project_l2(delta: torch.Tensor, x: torch.Tensor, radius: float) -> torch.Tensor:
    """Project ``delta`` onto the L2 ball of ``radius``, then keep ``x + delta`` in [0, 1].

    The box clamp can only shrink the norm, so the result lies in both sets.
    """
    rows = torch.full((x.shape[0],), float(radius), dtype=x.dtype, device=x.device)
    return project(delta, x, rows, "l2", unit_box(x))


@renamed_options(eps="radius")
def pgd_l2(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    radius: float,
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = True,
    targeted: bool = False,
    loss_fn: Loss | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Adversarial examples ``x_adv`` with ``‖x_adv − x‖₂ ≤ radius`` per sample, in [0, 1]
    (``eps`` is the deprecated name of ``radius``).

    Maximises ``loss_fn(model(x_adv), y)`` (cross-entropy by default; minimised when
    ``targeted``) with normalised-gradient steps of ``step_size`` (default
    2.5·radius/steps) from a uniform random start in the ball (drawn from ``generator``),
    through :func:`pgd_rows` without stopping at a flip. The inputs are checked by
    :func:`~faithmap.core.prelude.prepare`; a model in training mode is allowed (robust
    training). Gradients are taken with respect to the input only: the model's parameters,
    ``.grad`` fields and mode are left as they are. Returns a detached tensor.
    """
    if radius < 0 or steps < 0:
        raise ValueError("radius and steps must be non-negative")
    x, _ = prepare(model, x)
    step = step_size if step_size is not None else 2.5 * radius / max(steps, 1)
    delta = torch.zeros_like(x)
    if random_start and radius > 0:
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        length = torch.rand(len(x), generator=generator, dtype=x.dtype).to(x.device)
        length = length.pow(1.0 / x[0].numel()).view(-1, *[1] * (x.dim() - 1))
        delta = project_l2(noise / l2_norm(noise) * length * radius, x, radius)
    n = x.shape[0]
    radius_rows = torch.full((n,), float(radius), dtype=x.dtype, device=x.device)
    step_rows = torch.full((n,), float(step), dtype=x.dtype, device=x.device)
    return pgd_rows(model, x, y, radius_rows, norm="l2", steps=steps, step_size=step_rows,
                    box=unit_box(x), start=delta, stop_on_flip=False, loss_fn=loss_fn,
                    targeted=targeted).last
