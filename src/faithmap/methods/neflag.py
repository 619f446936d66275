"""NeFLAG: negative flux aggregation (Li, Pan, Li, Qiang, Zhu, IJCAI 2023, arXiv 2301.06989).

A *reconstruction*: the authors published no code and the paper's equations were not
available; see ``docs/methods/neflag.md`` for the derivation and every assumption.

g(z) = ∇_z f_c(z) is the gradient field of the target score (softmax probability by default,
or the logit). The continuous attribution aggregates the inward (negative) flux of g through
the sphere S_ε(x):  A(x) = ∯_{S_ε(x)} min(0, g(z)·n(z)) n(z) dS,  n(z) = (z − x)/ε.
It is estimated from n searched points of most-negative flux: for i = 1..n (one batch),
z⁰ = Π(x + ξ_i), ξ_i a seeded random direction of length ``start``·ε;
z^{t+1} = Π(z^t − α·d(g(z^t))), d = g/‖g‖₂ (L2) or sign(g) (Linf), α = ε/T, t < T;
Π projects onto the ε-ball around x, then into the valid input box;
n_i = (z^T − x)/‖z^T − x‖₂, φ_i = g(z^T)·n_i and
- ``mode="vector"``:      A = (1/n) Σ_i min(0, φ_i) n_i            (only φ_i < 0 contribute)
- ``mode="elementwise"``: A_j = (1/n) Σ_i min(0, g_j(z_i^T) n_ij) n_ij  (per-feature flux).
A positive attribution points along the field (the class score grows). Cost: n·(T+1)
forward+backward passes.
"""

from __future__ import annotations

import torch
from torch import nn

from ..core.autograd import input_gradient
from ..core.batching import DEFAULT_BATCH_SIZE, sum_rows
from ..core.deprecation import renamed_attribute, renamed_options
from ..core.explainer import Explainer
from ..core.geometry import BoundsLike, Box, as_box, clip_to_box, norm_of, project
from ..core.registry import register
from ..core.seeding import SeedLike, base_seed, randn_rows
from ..core.targets import Target
from ..core.validation import check_positive_int

SCORES = ("probability", "logit")
MODES = ("vector", "elementwise")
NORMS = ("l2", "linf")


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value.lower()


def _positive(name: str, value: float | None, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def _per_row(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *[1] * (like.dim() - 1))


def _unit(v: torch.Tensor) -> torch.Tensor:
    """v/‖v‖₂ per row; the floor 1e-30 (not l2_norm's 1e-12) keeps a saturated score's tiny
    gradient a unit step."""
    return v / _per_row(norm_of(v, "l2").clamp_min(1e-30), v)


def scorer(model: nn.Module, score: str) -> nn.Module:
    """The model whose outputs are f_c: the logits, or the softmax probabilities."""
    return model if score == "logit" else nn.Sequential(model, nn.Softmax(dim=1))


def score_gradient(
    model: nn.Module, z: torch.Tensor, target: Target, rows: torch.Tensor, score: str
) -> torch.Tensor:
    """g(z) = ∂ f_c(z)/∂z per row (:func:`~faithmap.core.autograd.input_gradient`);
    f_c = softmax probability or logit of the row's target."""
    return input_gradient(scorer(model, score), z, target, rows)[0]


def _onto(z: torch.Tensor, x: torch.Tensor, radius: torch.Tensor, norm: str,
          box: Box) -> torch.Tensor:
    """Π(z): z − x onto the ball of ``radius`` around x, then into the box
    (:func:`~faithmap.core.geometry.project`); the last clip undoes the rounding of
    x + (z' − x), which can leave a point on a face one ulp outside the box."""
    return clip_to_box(x + project(z - x, x, radius, norm, box), box)


@register("neflag")
class NeFLAG(Explainer):
    """Negative flux aggregation (Li et al., IJCAI 2023), reconstructed; see the module doc.

    ``n_samples`` n: random search starts (``n_points`` is its deprecated name). ``radius``
    ε: L2 radius (Linf: per-feature bound) in input units; ``None`` uses
    ε = 0.05·√D·(high − low) for L2 (0.05·(high − low) for Linf), i.e. an RMS change of 5% of
    the input range; without bounds, each sample's own range (max − min). ``steps`` T,
    ``step_size`` α (default ε/T), ``start`` the random start's length as a fraction of ε.
    ``bounds``: ``(low, high)`` of the valid inputs (scalars or per-channel values,
    :func:`~faithmap.core.geometry.as_box`) or ``None``; inputs outside them are an error.
    ``keep_points`` leaves the searched points z^T (N×n×C×H×W) in ``metadata["points"]``.
    Metadata: ``points_used`` (points with φ_i < 0 per sample), ``mean_flux``
    ((1/n) Σ_i φ_i), ``mean_negative_flux`` ((1/n) Σ_i min(0, φ_i)), ``radius`` (ε per
    sample). A callable target receives the softmax probabilities when
    ``score="probability"``.
    """

    @renamed_options(n_points="n_samples")
    def __init__(
        self,
        model: nn.Module,
        *,
        n_samples: int = 20,
        radius: float | None = None,
        steps: int = 10,
        step_size: float | None = None,
        score: str = "probability",
        mode: str = "vector",
        norm: str = "l2",
        start: float = 0.1,
        bounds: BoundsLike | None = (0.0, 1.0),
        seed: SeedLike = 0,
        keep_points: bool = False,
        batch_size: int | None = DEFAULT_BATCH_SIZE,
    ) -> None:
        super().__init__(model, batch_size=batch_size)
        self.n_samples = check_positive_int("n_samples", n_samples)
        self.steps = check_positive_int("steps", steps)
        _positive("radius", radius, allow_none=True)
        _positive("step_size", step_size, allow_none=True)
        if isinstance(start, bool) or not isinstance(start, (int, float)) or start < 0:
            raise ValueError(f"start must be a number >= 0, got {start!r}")
        if bounds is not None and (not isinstance(bounds, (tuple, list)) or len(bounds) != 2):
            raise ValueError(f"bounds must be (low, high) or None, got {bounds!r}")
        self.radius, self.step_size, self.start = radius, step_size, float(start)
        self.score = _choice("score", score, SCORES)
        self.mode = _choice("mode", mode, MODES)
        self.norm = _choice("norm", norm, NORMS)
        self.bounds, self.seed, self.keep_points = bounds, seed, keep_points

    n_points = renamed_attribute("n_points", "n_samples")

    def radii(self, x: torch.Tensor, box: Box) -> torch.Tensor:
        """ε per sample (see the class doc for the default)."""
        if self.radius is not None:
            return torch.full((len(x),), float(self.radius), dtype=x.dtype, device=x.device)
        if box is None:
            span = (x.flatten(1).max(1).values - x.flatten(1).min(1).values).clamp_min(1e-12)
        else:
            span = (box[1] - box[0])[0].expand_as(x[0]).mean().expand(len(x))
        scale = x[0].numel() ** 0.5 if self.norm == "l2" else 1.0
        return 0.05 * scale * span

    def search(self, x, radius, box, target, rows, seed):
        """z^T for rows (sample = row // n, draw = row % n) and the gradient g(z^T) there."""
        n = self.n_samples
        sample = rows // n
        keys = [(int(r) // n, int(r) % n) for r in rows]
        s = sample.to(x.device)
        xs, es = x[s], radius[s]
        xi = randn_rows(seed, keys, tuple(x.shape[1:]), x.dtype, x.device)
        z = _onto(xs + _unit(xi) * _per_row(self.start * es, xi), xs, es, self.norm, box)
        alpha = _per_row(es / self.steps if self.step_size is None
                         else torch.full_like(es, self.step_size), z)
        for _ in range(self.steps):
            g = score_gradient(self.model, z, target, sample, self.score)
            d = _unit(g) if self.norm == "l2" else g.sign()
            z = _onto(z - alpha * d, xs, es, self.norm, box)
        return z, score_gradient(self.model, z, target, sample, self.score)

    def attribute(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        box = as_box(self.bounds, x)
        radius = self.radii(x, box)
        target.resolve_with(self.model, x)
        seed, n, size = base_seed(self.seed), self.n_samples, x[0].numel()
        points: list[torch.Tensor] = []

        def compute(rows: torch.Tensor) -> torch.Tensor:
            z, g = self.search(x, radius, box, target, rows, seed)
            if self.keep_points:
                points.append(z.detach())
            contrib, phi, used, neg = flux_terms(z, x[(rows // n).to(x.device)], g, self.mode)
            return torch.cat([contrib.flatten(1), torch.stack([phi, used, neg], 1)], dim=1)

        total = sum_rows(len(x) * n, len(x), self.batch_size, lambda rows: rows // n, compute)
        facts = total[:, size:].detach().cpu()
        self.metadata.update(
            points_used=facts[:, 1].round().long(), radius=radius.detach().cpu(),
            mean_flux=facts[:, 0] / n, mean_negative_flux=facts[:, 2] / n)
        if self.keep_points:
            self.metadata["points"] = torch.cat(points).view(len(x), n, *x.shape[1:]).cpu()
        return total[:, :size].view_as(x) / n


def flux_terms(z: torch.Tensor, x: torch.Tensor, g: torch.Tensor, mode: str):
    """Per point: its term of Σ_i (``mode``), the flux φ_i, 1[φ_i < 0] and min(0, φ_i).

    A point that did not move (z = x) has no normal: it contributes nothing (φ_i := 0).
    """
    d = z - x
    dist = norm_of(d, "l2")
    moved = dist > 0
    normal = d / _per_row(dist.clamp_min(1e-30), d)
    phi = (g * normal).flatten(1).sum(1)
    neg = torch.where(moved, phi.clamp_max(0), torch.zeros_like(phi))
    if mode == "vector":
        contrib = _per_row(neg, normal) * normal
    else:
        contrib = (g * normal).clamp_max(0) * normal * _per_row(moved.to(g.dtype), g)
    used = ((phi < 0) & moved).to(g.dtype)
    return contrib, torch.where(moved, phi, torch.zeros_like(phi)), used, neg

