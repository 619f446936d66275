"""Quadrature rules for path integrals (Integrated Gradients, boundary IG).

Each rule returns points α_s ∈ [0, 1] and weights w_s with Σ w_s = 1, so that
∫₀¹ g(α) dα ≈ Σ_s w_s g(α_s).
"""

from __future__ import annotations

import numpy as np
import torch

from .validation import check_positive_int

METHODS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")
_ALIASES = {
    "left": "riemann_left",
    "right": "riemann_right",
    "middle": "riemann_middle",
    "trapezoid": "riemann_trapezoid",
    "gauss-legendre": "gausslegendre",
    "gauss_legendre": "gausslegendre",
}


def normalise_method(method: str) -> str:
    """Canonical (Captum-compatible) name of an integration rule."""
    name = _ALIASES.get(method, method)
    if name not in METHODS:
        raise ValueError(f"unknown integration method {method!r}; choose one of {METHODS}")
    return name


def quadrature(method: str, n_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Points α (n_steps) and weights w (n_steps) of the rule, as float64 tensors."""
    name = normalise_method(method)
    check_positive_int("n_steps", n_steps)
    n = n_steps
    if name == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n)
        return torch.from_numpy(0.5 * (nodes + 1.0)), torch.from_numpy(0.5 * weights)
    i = torch.arange(n, dtype=torch.float64)
    if name == "riemann_trapezoid":
        if n < 2:
            raise ValueError("the trapezoid rule needs n_steps >= 2")
        w = torch.full((n,), 1.0 / (n - 1), dtype=torch.float64)
        w[0] = w[-1] = 0.5 / (n - 1)
        return i / (n - 1), w
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[name]
    return (i + offset) / n, torch.full((n,), 1.0 / n, dtype=torch.float64)


AUTO = "auto"


def check_steps(n_steps: int | str, tolerance: float, max_steps: int) -> int | str:
    """Validate IG's step options: a positive int, or ``"auto"`` with 0 < ``tolerance`` and
    ``max_steps`` >= 2 (the two end points of the path)."""
    if isinstance(n_steps, str):
        if n_steps != AUTO:
            raise ValueError(f"n_steps must be a positive int or {AUTO!r}, got {n_steps!r}")
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not (
                tolerance > 0 and np.isfinite(tolerance)):
            raise ValueError(f"tolerance must be a finite number > 0, got {tolerance!r}")
        if check_positive_int("max_steps", max_steps) < 2:
            raise ValueError(f"max_steps must be >= 2 (the path's end points), got {max_steps}")
        return n_steps
    return check_positive_int("n_steps", n_steps)


def trapezoid_weights(points: torch.Tensor) -> torch.Tensor:
    """Composite trapezoid weights on sorted points 0 = α_0 < … < α_m = 1 (non-uniform) with
    no slope at α_0: w_j = (α_{j+1} − α_{j−1}) / 2 for 0 < j < m, w_m = (1 − α_{m−1}) / 2,
    and the first interval [0, α_1] takes the slope at α_1 (one-sided: at the baseline a
    ReLU network's gradient is often degenerate, e.g. 0 at the all-zeros input). Returns the
    m weights of α_1..α_m; Σ w = 1."""
    h = points[1:] - points[:-1]
    w = torch.zeros_like(points)
    w[:-1] += h / 2
    w[1:] += h / 2
    w[1] += w[0]
    return w[1:]


def interval_errors(points: torch.Tensor, slopes: torch.Tensor,
                    values: torch.Tensor) -> torch.Tensor:
    """Completeness error of :func:`trapezoid_weights`' rule on each interval of a path with
    values F(α_0..α_m) and slopes F'(α_1..α_m): e_j = h_j (F'_j + F'_{j+1}) / 2 −
    (F_{j+1} − F_j), with F'_0 := F'_1; Σ_j e_j = Σ_j w_j F'_j − (F(1) − F(0))."""
    h = points[1:] - points[:-1]
    s = torch.cat([slopes[:1], slopes])
    return h * (s[1:] + s[:-1]) / 2 - (values[1:] - values[:-1])
