"""NeFLAG: negative flux aggregation (Li, Pan, Li, Qiang, Zhu, IJCAI 2023, arXiv 2301.06989).

A *reconstruction*: the authors published no code and only the paper's abstract, introduction
and figure captions could be read; ``docs/methods/neflag.md`` marks each choice as stated in
the paper or reconstructed.

g(z) = ∇_z f_c(z) is the gradient field of the target score (softmax probability by default,
or the logit). The attribution aggregates the inward (negative) flux of g through the sphere
S_ε(x):  A(x) = ∯_{S_ε(x)} min(0, g(z)·n(z)) n(z) dS,  n(z) = (z − x)/ε.

``sampling="stratified"`` (default) estimates it from n points spread over the negative-flux
side of the sphere:
1. the axis a: T projected steps z^{t+1} = Π(z^t − α·d(g(z^t))) from z⁰ = x, d = g/‖g‖₂
   (L2) or sign(g) (Linf), α = ε/T; a = (z^T − x)/‖z^T − x‖₂ (a seeded random direction
   if the search did not move);
2. directions u: the pole a when n is odd, and ⌊n/2⌋ antithetic pairs cos θ·a ± sin θ·v_j,
   v_j seeded Gaussian draws made orthonormal to a and to each other (Gram–Schmidt), θ =
   ``angle``; z_i = clip(x + ε·u_i) (L2), clip(x + ε·u_i/‖u_i‖_∞) (Linf);
3. n_i = (z_i − x)/‖z_i − x‖₂, φ_i = g(z_i)·n_i and, with W = Σ_i cos²θ_i (θ_i = 0 at the pole),
   - ``mode="vector"``:      A = (1/W) Σ_i min(0, φ_i) n_i        (only φ_i < 0 contribute)
   - ``mode="elementwise"``: A_j = (1/W) Σ_i min(0, g_j(z_i) n_ij) n_ij.
For a linear logit A = w exactly for every n (the pairs' v-parts cancel). Cost: T + n
forward+backward passes per sample.

``sampling="descent"`` is the wave-1 estimator: n seeded starts x + ``start``·ε·ξ_i/‖ξ_i‖,
each searched T steps as in 1., W = n. Its n points converge to one direction (NeFLAG-n ≈
NeFLAG-1); cost n·(T+1). A positive attribution points along the field (the score grows).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..core.autograd import input_gradient
from ..core.batching import DEFAULT_BATCH_SIZE, map_rows, sum_rows
from ..core.cost import Cost, predicted
from ..core.deprecation import renamed_attribute, renamed_options
from ..core.explainer import Explainer
from ..core.geometry import BoundsLike, Box, as_box, clip_to_box, norm_of, project
from ..core.registry import register
from ..core.seeding import BlockDraws, SeedLike, base_seed
from ..core.targets import Target
from ..core.validation import check_positive_int

SCORES = ("probability", "logit")
MODES = ("vector", "elementwise")
NORMS = ("l2", "linf")
SAMPLINGS = ("stratified", "descent")


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

    ``n_samples`` n: points on the sphere (``n_points`` is its deprecated name). ``radius``
    ε: L2 radius (Linf: per-feature bound) in input units; ``None`` uses
    ε = 0.05·√D·(high − low) for L2 (0.05·(high − low) for Linf), i.e. an RMS change of 5% of
    the input range; without bounds, each sample's own range (max − min). ``steps`` T,
    ``step_size`` α (default ε/T). ``sampling``: ``"stratified"`` (default: the pole and
    antithetic pairs at ``angle`` degrees from the searched axis) or ``"descent"`` (wave 1:
    n random starts of length ``start``·ε, each searched; ``start`` is used by it only).
    ``bounds``: ``(low, high)`` of the valid inputs (scalars or per-channel values,
    :func:`~faithmap.core.geometry.as_box`) or ``None``; inputs outside them are an error.
    ``keep_points`` leaves the points z_i (N×n×C×H×W) in ``metadata["points"]``.
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
        sampling: str = "stratified",
        angle: float = 60.0,
    ) -> None:
        super().__init__(model, batch_size=batch_size)
        self.n_samples = check_positive_int("n_samples", n_samples)
        self.steps = check_positive_int("steps", steps)
        _positive("radius", radius, allow_none=True)
        _positive("step_size", step_size, allow_none=True)
        if isinstance(start, bool) or not isinstance(start, (int, float)) or start < 0:
            raise ValueError(f"start must be a number >= 0, got {start!r}")
        if (isinstance(angle, bool) or not isinstance(angle, (int, float))
                or not 0 < angle < 90):
            raise ValueError(f"angle must be a number of degrees in (0, 90), got {angle!r}")
        if bounds is not None and (not isinstance(bounds, (tuple, list)) or len(bounds) != 2):
            raise ValueError(f"bounds must be (low, high) or None, got {bounds!r}")
        self.radius, self.step_size, self.start = radius, step_size, float(start)
        self.angle = float(angle)
        self.score = _choice("score", score, SCORES)
        self.mode = _choice("mode", mode, MODES)
        self.norm = _choice("norm", norm, NORMS)
        self.sampling = _choice("sampling", sampling, SAMPLINGS)
        self.bounds, self.seed, self.keep_points = bounds, seed, keep_points

    n_points = renamed_attribute("n_points", "n_samples")

    def cost(self, x_shape, target=None) -> Cost:
        """Exact: T + n forward+backward passes per sample (``sampling="descent"``:
        n·(T + 1)), + 1 forward for a ``None`` target."""
        t, n = self.steps, self.n_samples
        rows = t + n if self.sampling == "stratified" else n * (t + 1)
        return Cost(rows + int(predicted(target)), rows)

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

    def descend(self, z, xs, es, box, target, sample):
        """T projected steps z ← Π(z − α·d(g(z))) for rows of samples ``sample``."""
        alpha = _per_row(es / self.steps if self.step_size is None
                         else torch.full_like(es, self.step_size), z)
        for _ in range(self.steps):
            g = score_gradient(self.model, z, target, sample, self.score)
            d = _unit(g) if self.norm == "l2" else g.sign()
            z = _onto(z - alpha * d, xs, es, self.norm, box)
        return z

    def search(self, x, radius, box, target, rows, seed, draws=None):
        """``sampling="descent"``: z^T for rows (sample = row // n, draw = row % n) and the
        gradient g(z^T) there; the starts ξ are drawn in seeded blocks (``draws``, a
        :class:`~faithmap.core.seeding.BlockDraws` kept across chunks)."""
        n = self.n_samples
        sample = rows // n
        if draws is None:
            draws = BlockDraws(seed, tuple(x.shape[1:]), x.dtype, x.device, per_sample=n)
        s = sample.to(x.device)
        xs, es = x[s], radius[s]
        xi = draws(sample, rows % n)
        z = _onto(xs + _unit(xi) * _per_row(self.start * es, xi), xs, es, self.norm, box)
        z = self.descend(z, xs, es, box, target, sample)
        return z, score_gradient(self.model, z, target, sample, self.score)

    def axes(self, x, radius, box, target, seed) -> torch.Tensor:
        """``sampling="stratified"``, step 1: the unit axis a per sample (N×D)."""
        def compute(rows: torch.Tensor) -> torch.Tensor:
            s = rows.to(x.device)
            z = self.descend(x[s], x[s], radius[s], box, target, rows)
            return (z - x[s]).flatten(1)

        d = map_rows(len(x), self.batch_size, compute)
        still = norm_of(d, "l2") == 0
        if bool(still.any()):  # no gradient anywhere on the path: a seeded random axis
            idx = torch.nonzero(still).flatten()
            d[idx] = BlockDraws(seed, (d.shape[1],), x.dtype, x.device, stream=1, per_sample=1)(
                idx.cpu(), [0] * len(idx))
        return _unit(d)

    def directions(self, axis: torch.Tensor, seed: int, samples: torch.Tensor | None = None,
                   draws: BlockDraws | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Step 2: the unit directions u (G×n×D) and their cos θ_i to the axis (n), for the
        G axes (rows of ``axis``) of samples ``samples`` (default 0..G−1). v_j is draw j of
        its sample, in seeded blocks (``draws``)."""
        n, (count, size) = self.n_samples, axis.shape
        pairs = n // 2
        if pairs > size - 1:
            raise ValueError(f"sampling='stratified' needs n_samples <= {2 * size - 1} for "
                             f"inputs of {size} features, got {n}")
        samples = torch.arange(count) if samples is None else samples.cpu()
        if draws is None:
            draws = BlockDraws(seed, (size,), axis.dtype, axis.device, per_sample=max(pairs, 1))
        theta = math.radians(self.angle)
        cos, sin = math.cos(theta), math.sin(theta)
        basis = [axis]
        u = [axis[:, None]] if n % 2 else []
        if pairs:
            vs = draws(samples.repeat_interleave(pairs), torch.arange(pairs).repeat(count))
            vs = vs.view(count, pairs, size)
        for j in range(pairs):
            v = vs[:, j]
            for b in basis:  # modified Gram–Schmidt against a, v_0, …, v_{j-1}
                v = v - (v * b).sum(1, keepdim=True) * b
            v = _unit(v)
            basis.append(v)
            u += [(cos * axis + sin * v)[:, None], (cos * axis - sin * v)[:, None]]
        c = torch.tensor(([1.0] if n % 2 else []) + [cos] * (2 * pairs), dtype=axis.dtype)
        return torch.cat(u, 1), c

    def _point_directions(self, axis: torch.Tensor, seed: int):  # noqa: ANN202
        """rows -> u of each row (sample = row // n, point = row % n), computed per sample
        when a chunk first needs it and kept only while chunks still need that sample, so
        memory is O((batch_size + n)·D), not N·n·D."""
        n = self.n_samples
        draws = BlockDraws(seed, (axis.shape[1],), axis.dtype, axis.device,
                           per_sample=max(n // 2, 1))
        kept: dict[int, torch.Tensor] = {}

        def of(rows: torch.Tensor) -> torch.Tensor:
            sample = rows // n
            wanted = sample.unique().tolist()
            new = [i for i in wanted if i not in kept]
            for i in list(kept):
                if i not in wanted:
                    del kept[i]
            if new:
                idx = torch.tensor(new)
                u, _ = self.directions(axis[idx.to(axis.device)], seed, idx, draws)
                kept.update(zip(new, u))
            return torch.stack([kept[int(i)][int(k)] for i, k in zip(sample, rows % n)])

        return of

    def attribute(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        box = as_box(self.bounds, x)
        radius = self.radii(x, box)
        target.resolve_with(self.model, x)
        seed, n, size = base_seed(self.seed), self.n_samples, x[0].numel()
        points: list[torch.Tensor] = []
        if self.sampling == "stratified":
            c = torch.tensor(([1.0] if n % 2 else []) + [math.cos(math.radians(self.angle))]
                             * (2 * (n // 2)), dtype=x.dtype)
            weight = float((c * c).sum())
            direction_of = self._point_directions(self.axes(x, radius, box, target, seed), seed)
        else:
            weight = float(n)
            draws = BlockDraws(seed, tuple(x.shape[1:]), x.dtype, x.device, per_sample=n)

        def compute(rows: torch.Tensor) -> torch.Tensor:
            s = (rows // n).to(x.device)
            if self.sampling == "descent":
                z, g = self.search(x, radius, box, target, rows, seed, draws)
            else:
                step = direction_of(rows).view(len(rows), *x.shape[1:])
                if self.norm == "linf":
                    step = step / _per_row(norm_of(step, "linf"), step)
                z = clip_to_box(x[s] + _per_row(radius[s], step) * step, box)
                g = score_gradient(self.model, z, target, rows // n, self.score)
            if self.keep_points:
                points.append(z.detach())
            contrib, phi, used, neg = flux_terms(z, x[s], g, self.mode)
            return torch.cat([contrib.flatten(1), torch.stack([phi, used, neg], 1)], dim=1)

        total = sum_rows(len(x) * n, len(x), self.batch_size, lambda rows: rows // n, compute)
        facts = total[:, size:].detach().cpu()
        self.metadata.update(
            points_used=facts[:, 1].round().long(), radius=radius.detach().cpu(),
            mean_flux=facts[:, 0] / n, mean_negative_flux=facts[:, 2] / n)
        if self.keep_points:
            self.metadata["points"] = torch.cat(points).view(len(x), n, *x.shape[1:]).cpu()
        return total[:, :size].view_as(x) / weight


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

