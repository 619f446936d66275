"""COMET's objective (Zhang, Lee, Wang, ECCV 2024, arXiv 2407.19308).

With m = σ(S(x)), x_s = m⊙x + (1−m)⊙q and x_{1−s} = (1−m)⊙x + m⊙q:

* L_P = CE(f_P(x_s), y), L_D = CE(f_D(x_{1−s}), y) (means over the batch);
* area_i = mean_{h,w} m_i and R = mean_i max(area_i − τ, 0) — zero when every mask covers
  at most a fraction τ of the image;
* hinge = max(L_P − L_D + γ, 0) — zero once the detector's loss on the complement exceeds
  the predictor's loss by the margin γ (the complement holds no class evidence).

Selector loss, ``form="bounded"`` (reference code, default): L_P + a·hinge + b·R.
``form="paper"`` (Eq. in the paper): L_P − a·L_D + b·R (unbounded in L_D).
a = 0 gives the no-detector ablation (plain selector–predictor).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class Objective:
    """Weights of the selector loss: ``a`` (detector term), ``gamma`` (hinge margin),
    ``b`` (area term), ``tau`` (allowed mask area) and ``form`` ("bounded" or "paper")."""

    a: float = 4.0
    gamma: float = 2.0
    b: float = 100.0
    tau: float = 0.6
    form: str = "bounded"

    def __post_init__(self) -> None:
        if self.form not in ("bounded", "paper"):
            raise ValueError(f"form must be 'bounded' or 'paper', got {self.form!r}")
        if not 0.0 <= self.tau <= 1.0:
            raise ValueError(f"tau is a fraction of the image in [0, 1], got {self.tau}")
        if self.a < 0 or self.b < 0 or self.gamma < 0:
            raise ValueError(f"a, b and gamma must be >= 0, got {self.a}, {self.b}, {self.gamma}")

    def to_dict(self) -> dict:
        return asdict(self)


def mask_area(m: torch.Tensor) -> torch.Tensor:
    """area_i = mean over pixels of m_i, for N×1×H×W masks (shape N)."""
    return m.flatten(1).mean(1)


def area_penalty(m: torch.Tensor, tau: float) -> torch.Tensor:
    """R = mean_i max(area_i − τ, 0)."""
    return (mask_area(m) - tau).clamp_min(0).mean()


def hinge(loss_p: torch.Tensor, loss_d: torch.Tensor, gamma: float) -> torch.Tensor:
    """max(L_P − L_D + γ, 0)."""
    return (loss_p - loss_d + gamma).clamp_min(0)


def select(x: torch.Tensor, m: torch.Tensor, fill: float | torch.Tensor) -> torch.Tensor:
    """x_s = m⊙x + (1−m)⊙q."""
    return m * x + (1 - m) * fill


def complement(x: torch.Tensor, m: torch.Tensor, fill: float | torch.Tensor) -> torch.Tensor:
    """x_{1−s} = (1−m)⊙x + m⊙q."""
    return (1 - m) * x + m * fill


def selector_loss(obj: Objective, loss_p: torch.Tensor, loss_d: torch.Tensor | None,
                  m: torch.Tensor) -> dict[str, torch.Tensor]:
    """The terms and the selector loss: keys ``loss``, ``hinge``, ``area_penalty``.

    ``loss_d`` may be ``None`` only when ``a == 0`` (no detector)."""
    r = area_penalty(m, obj.tau)
    if loss_d is None:
        if obj.a != 0:
            raise ValueError("the detector term needs loss_d (or set a=0 for the ablation)")
        zero = loss_p.new_zeros(())
        return {"loss": loss_p + obj.b * r, "hinge": zero, "area_penalty": r}
    h = hinge(loss_p, loss_d, obj.gamma)
    if obj.form == "bounded":
        loss = loss_p + obj.a * h + obj.b * r
    else:
        loss = loss_p - obj.a * loss_d + obj.b * r
    return {"loss": loss, "hinge": h, "area_penalty": r}
