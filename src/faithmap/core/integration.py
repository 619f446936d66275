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
