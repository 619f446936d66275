"""COMET's objective (Zhang, Lee, Wang, ECCV 2024, arXiv 2407.19308).

With m = σ(S(x)), x_s = m⊙x + (1−m)⊙q and x_{1−s} = (1−m)⊙x + m⊙q:

* per sample i: L_P,i = CE(f_P(x_s,i), y_i), L_D,i = CE(f_D(x_{1−s},i), y_i);
  L_P = mean_i L_P,i, L_D = mean_i L_D,i;
* area_i = mean_{h,w} m_i and R = mean_i max(area_i − τ, 0) — zero when every mask covers
  at most a fraction τ of the image;
* ``hinge="sample"`` (default, ours): H = mean_i max(L_P,i − L_D,i + γ, 0) — zero only when
  *every* sample's complement costs the detector at least γ more than its selection costs
  the predictor;
* ``hinge="batch"`` (the authors' reference code): H = max(L_P − L_D + γ, 0) on the batch
  means. It is 0 as soon as the *mean* L_D exceeds L_P + γ — a few complements on which the
  frozen detector is confidently wrong (huge L_D,i) zero it for the whole batch while the
  detector still recognises many other complements. Hinge 0 with a batch mean therefore does
  *not* mean "no class evidence in the complement" (measured in docs/methods/comet.md on
  ``cluttered_comet_batch``, trained with it).

Selector loss, ``form="bounded"`` (reference code, default): L_P + a·H + b·R.
``form="paper"`` (the equation in the paper): L_P − a·L_D + b·R — unbounded in L_D: the
selector can raise L_D without limit by covering the image, and trained on cluttered MNIST
its masks do grow to most of the image (docs/methods/comet.md), so it is an option only.
a = 0 gives the no-detector ablation (plain selector–predictor).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

HINGES = ("sample", "batch")


@dataclass(frozen=True)
class Objective:
    """Weights of the selector loss: ``a`` (detector term), ``gamma`` (hinge margin),
    ``b`` (area term), ``tau`` (allowed mask area), ``form`` ("bounded" or "paper") and
    ``hinge`` ("sample": per-sample hinge, default; "batch": on batch means, as the
    authors' code)."""

    a: float = 4.0
    gamma: float = 2.0
    b: float = 100.0
    tau: float = 0.6
    form: str = "bounded"
    hinge: str = "sample"

    def __post_init__(self) -> None:
        if self.form not in ("bounded", "paper"):
            raise ValueError(f"form must be 'bounded' or 'paper', got {self.form!r}")
        if self.hinge not in HINGES:
            raise ValueError(f"hinge must be one of {HINGES}, got {self.hinge!r}")
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
    """max(L_P − L_D + γ, 0), elementwise (per sample for shape-N losses)."""
    return (loss_p - loss_d + gamma).clamp_min(0)


def hinge_term(loss_p: torch.Tensor, loss_d: torch.Tensor, gamma: float,
               kind: str = "sample") -> torch.Tensor:
    """H: ``"sample"`` → mean_i max(L_P,i − L_D,i + γ, 0); ``"batch"`` → max(L_P − L_D + γ, 0)
    of the batch means (reference code). Scalar losses give the same under both."""
    if kind not in HINGES:
        raise ValueError(f"hinge must be one of {HINGES}, got {kind!r}")
    if kind == "batch":
        return hinge(loss_p.mean(), loss_d.mean(), gamma)
    return hinge(loss_p, loss_d, gamma).mean()


def select(x: torch.Tensor, m: torch.Tensor, fill: float | torch.Tensor) -> torch.Tensor:
    """x_s = m⊙x + (1−m)⊙q."""
    return m * x + (1 - m) * fill


def complement(x: torch.Tensor, m: torch.Tensor, fill: float | torch.Tensor) -> torch.Tensor:
    """x_{1−s} = (1−m)⊙x + m⊙q."""
    return (1 - m) * x + m * fill


def selector_loss(obj: Objective, loss_p: torch.Tensor, loss_d: torch.Tensor | None,
                  m: torch.Tensor) -> dict[str, torch.Tensor]:
    """The terms and the selector loss: keys ``loss``, ``hinge``, ``area_penalty``.

    ``loss_p``/``loss_d``: per-sample losses (shape N; :func:`faithmap.comet.comet_losses`
    passes these) or batch means (scalars, where both hinge kinds agree). ``loss_d`` may be
    ``None`` only when ``a == 0`` (no detector)."""
    r = area_penalty(m, obj.tau)
    lp = loss_p.mean()
    if loss_d is None:
        if obj.a != 0:
            raise ValueError("the detector term needs loss_d (or set a=0 for the ablation)")
        zero = lp.new_zeros(())
        return {"loss": lp + obj.b * r, "hinge": zero, "area_penalty": r}
    if loss_p.shape != loss_d.shape:
        raise ValueError(f"loss_p and loss_d must have the same shape, got "
                         f"{tuple(loss_p.shape)} and {tuple(loss_d.shape)}")
    h = hinge_term(loss_p, loss_d, obj.gamma, obj.hinge)
    if obj.form == "bounded":
        loss = lp + obj.a * h + obj.b * r
    else:
        loss = lp - obj.a * loss_d.mean() + obj.b * r
    return {"loss": loss, "hinge": h, "area_penalty": r}
