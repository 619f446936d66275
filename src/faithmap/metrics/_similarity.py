"""Batched similarity of attribution maps in torch: Spearman rank correlation and SSIM."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def average_ranks(v: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n along dim 1 of an N×n tensor, ties given their average rank (scipy's rule)."""
    n_rows, n = v.shape
    s, order = v.sort(dim=1, stable=True)
    new = torch.ones_like(s, dtype=torch.bool)
    new[:, 1:] = s[:, 1:] != s[:, :-1]
    group = new.long().cumsum(1) - 1 + torch.arange(n_rows, device=v.device)[:, None] * n
    pos = torch.arange(1, n + 1, device=v.device, dtype=torch.float64).expand(n_rows, n)
    first = torch.full((n_rows * n,), float(n + 1), device=v.device, dtype=torch.float64)
    last = torch.zeros(n_rows * n, device=v.device, dtype=torch.float64)
    first = first.scatter_reduce(0, group.flatten(), pos.flatten(), "amin")
    last = last.scatter_reduce(0, group.flatten(), pos.flatten(), "amax")
    sorted_ranks = ((first + last) / 2)[group]
    return torch.empty_like(sorted_ranks).scatter_(1, order, sorted_ranks)


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of the rows of two N×n tensors (0 where a row is constant)."""
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    den = (a.norm(dim=1) * b.norm(dim=1))
    return torch.where(den > 0, (a * b).sum(1) / den.clamp_min(1e-300), torch.zeros_like(den))


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman ρ between ``a[i].flatten()`` and ``b[i].flatten()``: Pearson of average ranks.

    Computed in float64 and returned in ``a``'s dtype; 0 where a sample's map is constant
    (scipy returns NaN there).
    """
    ra, rb = average_ranks(a.flatten(1)), average_ranks(b.flatten(1))
    return pearson(ra, rb).to(a.dtype)


def ssim(
    a: torch.Tensor, b: torch.Tensor, *, win_size: int = 7, data_range: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean structural similarity (Wang et al. 2004) of N×H×W maps, skimage's defaults.

    SSIM = (2μ_aμ_b + C1)(2σ_ab + C2) / ((μ_a² + μ_b² + C1)(σ_a² + σ_b² + C2)),
    uniform ``win_size``×``win_size`` windows, sample covariance, K1 = 0.01, K2 = 0.03,
    C_k = (K_k L)², averaged over the windows that fit inside the image (skimage crops the
    border). ``data_range`` L defaults to max − min over both maps (as Quantus), per sample.
    """
    if a.shape != b.shape or a.dim() != 3:
        raise ValueError(f"ssim needs two N×H×W maps of one shape, got {a.shape}, {b.shape}")
    if min(a.shape[-2:]) < win_size:
        raise ValueError(f"maps of size {tuple(a.shape[-2:])} are smaller than win_size")
    a64, b64 = a.double()[:, None], b.double()[:, None]
    if data_range is None:
        both = torch.cat([a64.flatten(1), b64.flatten(1)], 1)
        data_range = both.amax(1) - both.amin(1)
    rng = torch.as_tensor(data_range, dtype=torch.float64, device=a.device).expand(a.shape[0])
    rng = rng.clamp_min(1e-12).view(-1, 1, 1, 1)
    c1, c2 = (0.01 * rng) ** 2, (0.03 * rng) ** 2
    npix = win_size**2
    cov = npix / (npix - 1)

    def mean(t: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(t, win_size, stride=1)

    ua, ub = mean(a64), mean(b64)
    vaa = cov * (mean(a64 * a64) - ua * ua)
    vbb = cov * (mean(b64 * b64) - ub * ub)
    vab = cov * (mean(a64 * b64) - ua * ub)
    s = ((2 * ua * ub + c1) * (2 * vab + c2)) / ((ua**2 + ub**2 + c1) * (vaa + vbb + c2))
    return s.flatten(1).mean(1).to(a.dtype)
