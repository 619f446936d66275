"""A slow, literal NeFLAG: one sample, one point, one step at a time (test reference).

Written from the equations in ``docs/methods/neflag.md`` without the batched code paths.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from faithmap.core.seeding import randn_blocks


def _grad(model: nn.Module, z: torch.Tensor, c: int, score: str) -> torch.Tensor:
    z = z.detach().clone().requires_grad_(True)
    out = model(z[None])[0]
    s = out.softmax(0)[c] if score == "probability" else out[c]
    s.backward()
    return z.grad.detach()


def _project(z, x, eps, low, high, norm):
    d = z - x
    if norm == "l2":
        length = math.sqrt(float((d * d).sum()))
        if length > eps:
            d = d * (eps / length)
    else:
        d = d.clamp(-eps, eps)
    z = x + d
    return z if low is None else torch.minimum(torch.maximum(z, low), high)


def literal_neflag(model, x, targets, *, n_samples, radius, steps, score="probability",
                   mode="vector", norm="l2", start=0.1, low=None, high=None, seed=0):
    """A(x) per sample, and the searched points z^T (N×n×C×H×W)."""
    out = torch.zeros_like(x)
    pts = torch.zeros(len(x), n_samples, *x.shape[1:], dtype=x.dtype)
    alpha = radius / steps
    for s in range(len(x)):
        xs, c = x[s], int(targets[s])
        for i in range(n_samples):
            xi = randn_blocks(seed, [s], [i], tuple(x.shape[1:]), x.dtype, x.device,
                              per_sample=n_samples)[0]
            z = _project(xs + xi / xi.norm() * start * radius, xs, radius, low, high, norm)
            for _ in range(steps):
                g = _grad(model, z, c, score)
                step = g / g.norm() if norm == "l2" else g.sign()
                z = _project(z - alpha * step, xs, radius, low, high, norm)
            g = _grad(model, z, c, score)
            normal = (z - xs) / (z - xs).norm()
            phi = float((g * normal).sum())
            pts[s, i] = z
            if mode == "vector":
                if phi < 0:
                    out[s] += phi * normal
            else:
                for j in range(normal.numel()):
                    f = float(g.flatten()[j] * normal.flatten()[j])
                    if f < 0:
                        out[s].view(-1)[j] += f * normal.flatten()[j]
    return out / n_samples, pts
