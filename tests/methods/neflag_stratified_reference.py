"""A slow, literal stratified NeFLAG (test reference), independent of the library.

Written from the equations in ``docs/methods/neflag.md`` (sampling="stratified") with plain
loops: one sample, one point, one step, one feature at a time. It imports nothing from
faithmap — not its seeding, projections, gradients or batching. The random draws follow the
documented seeding contract (DESIGN.md §5, ``core.seeding.BlockDraws``: draw j of a sample
is row j mod 8 of one float32 ``torch.randn(k, D)`` call (k = 8, or the draws left) on a
CPU ``torch.Generator`` seeded by a hash of (seed, sample, block tag, stream 0, j div 8)),
rewritten here from its equation.
"""

from __future__ import annotations

import math

import torch
from torch import nn

_MIX, _MASK = 0x9E3779B97F4A7C15, (1 << 63) - 1
_BLOCK, _BLOCK_TAG = 8, 0x5EED_B10C


def _key_seed(seed: int, *keys: int) -> int:
    h = seed & _MASK
    for k in keys:
        h = ((h ^ (k + 1)) * _MIX + 0x632BE59BD9B4E019) & _MASK
        h ^= h >> 29
    return h


def _draw(seed: int, sample: int, draw: int, size: int, count: int) -> list[float]:
    """Draw ``draw`` of ``count`` of a sample: blocks of 8 draws, the last one shorter."""
    g = torch.Generator().manual_seed(_key_seed(seed, sample, _BLOCK_TAG, 0, draw // _BLOCK))
    rows = min(_BLOCK, count - draw // _BLOCK * _BLOCK)
    block = torch.randn(rows, size, generator=g, dtype=torch.float32)
    return [float(v) for v in block[draw % _BLOCK]]


def _score_grad(model: nn.Module, z: list[float], shape, c: int, score: str) -> list[float]:
    leaf = torch.tensor(z, dtype=torch.float64).view(1, *shape).requires_grad_(True)
    out = model(leaf)[0]
    s = out.softmax(0)[c] if score == "probability" else out[c]
    (g,) = torch.autograd.grad(s, leaf)
    return [float(v) for v in g.flatten()]


def _dot(a: list[float], b: list[float]) -> float:
    return sum(p * q for p, q in zip(a, b))


def _unit(a: list[float]) -> list[float]:
    length = math.sqrt(_dot(a, a))
    return [v / length for v in a]


def _clip(z: list[float], low: list[float] | None, high: list[float] | None) -> list[float]:
    if low is None:
        return z
    return [min(max(v, lo), hi) for v, lo, hi in zip(z, low, high)]


def literal_stratified(model, x, targets, *, n_samples, radius, steps, angle=60.0,
                       score="probability", mode="vector", norm="l2", low=None, high=None,
                       seed=0):
    """A(x) per sample and the points z_i (N×n×C×H×W), float64."""
    shape = tuple(x.shape[1:])
    size = math.prod(shape)
    out = torch.zeros(x.shape, dtype=torch.float64)
    pts = torch.zeros(len(x), n_samples, *shape, dtype=torch.float64)
    lo = None if low is None else [float(v) for v in low.flatten()]
    hi = None if high is None else [float(v) for v in high.flatten()]
    theta = math.radians(angle)
    for s in range(len(x)):
        xs = [float(v) for v in x[s].flatten()]
        c = int(targets[s])
        # 1. the axis: T projected descent steps from x
        z = list(xs)
        for _ in range(steps):
            g = _score_grad(model, z, shape, c, score)
            if norm == "l2":
                gn = math.sqrt(_dot(g, g))
                d = [v / max(gn, 1e-30) for v in g]
            else:
                d = [(v > 0) - (v < 0) for v in g]
            z = [zj - radius / steps * dj for zj, dj in zip(z, d)]
            delta = [zj - xj for zj, xj in zip(z, xs)]
            if norm == "l2":
                length = math.sqrt(_dot(delta, delta))
                if length > radius:
                    delta = [v * radius / length for v in delta]
            else:
                delta = [min(max(v, -radius), radius) for v in delta]
            z = _clip([xj + v for xj, v in zip(xs, delta)], lo, hi)
        axis = _unit([zj - xj for zj, xj in zip(z, xs)])
        # 2. the pole (odd n) and antithetic pairs, v_j orthonormal to the axis and each other
        dirs, weights = [], []
        if n_samples % 2:
            dirs.append(axis)
            weights.append(1.0)
        basis = [axis]
        for j in range(n_samples // 2):
            v = _draw(seed, s, j, size, n_samples // 2)
            for b in basis:
                p = _dot(v, b)
                v = [vi - p * bi for vi, bi in zip(v, b)]
            v = _unit(v)
            basis.append(v)
            for sign in (1.0, -1.0):
                dirs.append([math.cos(theta) * a + sign * math.sin(theta) * vi
                             for a, vi in zip(axis, v)])
                weights.append(math.cos(theta))
        # 3. flux at each point, aggregated
        total = [0.0] * size
        for i, u in enumerate(dirs):
            scale = radius if norm == "l2" else radius / max(abs(v) for v in u)
            zi = _clip([xj + scale * uj for xj, uj in zip(xs, u)], lo, hi)
            pts[s, i] = torch.tensor(zi, dtype=torch.float64).view(shape)
            normal = _unit([zj - xj for zj, xj in zip(zi, xs)])
            g = _score_grad(model, zi, shape, c, score)
            phi = _dot(g, normal)
            for k in range(size):
                if mode == "vector":
                    if phi < 0:
                        total[k] += phi * normal[k]
                else:
                    f = g[k] * normal[k]
                    if f < 0:
                        total[k] += f * normal[k]
        w = sum(c_ * c_ for c_ in weights)
        out[s] = torch.tensor([t / w for t in total], dtype=torch.float64).view(shape)
    return out, pts
