"""Gradient baselines: Saliency, Input×Gradient, Integrated Gradients, SmoothGrad, VarGrad.

- Saliency (Simonyan et al. 2014): ∂f_y/∂x, absolute value by default.
- Input×Gradient (Shrikumar et al. 2016): x ⊙ ∂f_y/∂x.
- Integrated Gradients (Sundararajan et al. 2017):
  IG(x) = (x − x') ⊙ ∫₀¹ ∂f_y(x' + α(x − x'))/∂x dα ≈ (x − x') ⊙ Σ_s w_s ∇f_y(x' + α_s(x − x')).
  ``n_steps="auto"``: composite trapezoid rule on points refined per sample (below).
- SmoothGrad (Smilkov et al. 2017): (1/S) Σ_s ∇f_y(x + ε_s), ε_s ~ N(0, σ²),
  σ = noise_level · (max x − min x) per sample; ``squared`` averages ∇² instead.
- VarGrad (Adebayo et al. 2018): the variance over s of ∇f_y(x + ε_s).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..core.autograd import input_gradient
from ..core.batching import DEFAULT_BATCH_SIZE, chunks, map_rows, sum_rows
from ..core.cost import Cost, predicted
from ..core.deprecation import renamed_attribute, renamed_options
from ..core.errors import InvalidInputError
from ..core.explainer import Explainer
from ..core.integration import (
    AUTO,
    check_steps,
    interval_errors,
    normalise_method,
    quadrature,
    trapezoid_weights,
)
from ..core.registry import register
from ..core.seeding import BlockDraws, SeedLike, base_seed
from ..core.targets import Target
from ..core.validation import check_positive_int

Baseline = float | int | torch.Tensor | Callable[[torch.Tensor], torch.Tensor]


def _batched_gradient(explainer: Explainer, x: torch.Tensor, target: Target,
                      model: nn.Module | None = None, create_graph: bool = False) -> torch.Tensor:
    """∇f_y(x) for every sample, chunked by the explainer's ``batch_size`` (on ``model``,
    default the explainer's; ``create_graph`` keeps it differentiable in x)."""
    net = explainer.model if model is None else model
    return explainer.map_samples(
        x, target,
        lambda xs, t, rows: input_gradient(net, xs, t, rows, create_graph=create_graph)[0])


@register("saliency")
class Saliency(Explainer):
    """Vanilla gradient ∂f_y/∂x (Simonyan et al. 2014); ``abs=True`` returns |∂f_y/∂x|."""

    def __init__(
        self, model: nn.Module, *, abs: bool = True, batch_size: int | None = DEFAULT_BATCH_SIZE
    ) -> None:
        super().__init__(model, batch_size=batch_size)
        self.abs = abs

    def attribute(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        return self.attribute_differentiable(x, target, self.model, create_graph=False)

    def attribute_differentiable(self, x: torch.Tensor, target: Target, model: nn.Module,
                                 create_graph: bool = True) -> torch.Tensor:
        grad = _batched_gradient(self, x, target, model, create_graph)
        return grad.abs() if self.abs else grad


@register("input_x_gradient")
class InputXGradient(Explainer):
    """x ⊙ ∂f_y/∂x (Shrikumar et al. 2016)."""

    def attribute(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        return self.attribute_differentiable(x, target, self.model, create_graph=False)

    def attribute_differentiable(self, x: torch.Tensor, target: Target, model: nn.Module,
                                 create_graph: bool = True) -> torch.Tensor:
        return x * _batched_gradient(self, x, target, model, create_graph)


def resolve_baseline(baseline: Baseline, x: torch.Tensor) -> torch.Tensor:
    """A baseline of ``x``'s shape from a scalar, a broadcastable tensor or a callable x -> x'."""
    b = baseline
    if callable(baseline) and not isinstance(baseline, torch.Tensor):
        b = baseline(x)
    if isinstance(b, bool) or not isinstance(b, (int, float, torch.Tensor)):
        raise InvalidInputError(f"baseline must be a number, a tensor or a callable, got {b!r}")
    b = torch.as_tensor(b, dtype=x.dtype, device=x.device)
    try:
        b = torch.broadcast_to(b, x.shape)
    except RuntimeError as exc:
        raise InvalidInputError(
            f"baseline of shape {tuple(b.shape)} does not broadcast to the inputs {tuple(x.shape)}"
        ) from exc
    if not bool(torch.isfinite(b).all()):
        raise InvalidInputError("baseline contains NaN or Inf values")
    return b.detach()


@register("integrated_gradients")
class IntegratedGradients(Explainer):
    """Integrated Gradients (Sundararajan et al. 2017) along the straight path x' → x.

    ``baseline`` x': a number, a broadcastable tensor or a callable x -> x'. ``integration``:
    ``riemann_left|right|middle|trapezoid`` or ``gausslegendre`` (default, as in Captum).
    Our trapezoid weights sum to 1; Captum's sum to (n−1)/n. With ``convergence_delta=True``
    the completeness gap Σ IG − (f_y(x) − f_y(x')) is left in ``metadata["convergence_delta"]``.

    ``n_steps="auto"``: per sample, the trapezoid rule on points refined until the relative
    completeness error |Σ IG − Δf| / |Δf| ≤ ``tolerance`` or ``max_steps`` gradients are spent
    (:func:`adaptive_integrated_gradients`; ``integration`` is then unused). ``metadata``:
    ``n_steps`` (passes per sample), ``completeness_error``, ``converged``, ``convergence_delta``.
    Deprecated names: ``baselines`` (→ ``baseline``), ``method`` (→ ``integration``).
    """

    @renamed_options(baselines="baseline", method="integration")
    def __init__(
        self,
        model: nn.Module,
        *,
        baseline: Baseline = 0.0,
        n_steps: int | str = 50,
        integration: str = "gausslegendre",
        convergence_delta: bool = False,
        tolerance: float = 1e-2,
        max_steps: int = 128,
        batch_size: int | None = DEFAULT_BATCH_SIZE,
    ) -> None:
        super().__init__(model, batch_size=batch_size)
        self.baseline = baseline
        self.integration = normalise_method(integration)
        self.n_steps = check_steps(n_steps, tolerance, max_steps)
        self.tolerance, self.max_steps = float(tolerance), max_steps
        self.auto = self.n_steps == AUTO
        if not self.auto:
            self.alphas, self.weights = quadrature(self.integration, n_steps)
        self.convergence_delta = convergence_delta

    method = renamed_attribute("method", "integration")

    baselines = renamed_attribute("baselines", "baseline")

    def rows_per_sample(self) -> int:
        return self.max_steps if self.auto else len(self.alphas)

    def cost(self, x_shape, target=None) -> Cost:
        """n_steps forward+backward (``"auto"``: at most ``max_steps``), + 1 forward for a
        ``None`` target, + 2 forward for ``convergence_delta`` (f_y(x) and f_y(x'))."""
        if self.auto:  # + 1 forward for f_y(x') (adaptive_integrated_gradients)
            return Cost(self.max_steps + 1 + int(predicted(target)), self.max_steps, exact=False)
        rows = len(self.alphas)
        return Cost(rows + int(predicted(target)) + 2 * int(self.convergence_delta), rows)

    def attribute_differentiable(self, x: torch.Tensor, target: Target,
                                 model: nn.Module) -> torch.Tensor:
        baseline = resolve_baseline(self.baseline, x.detach())
        if self.auto:  # points chosen without the graph, then differentiated through
            path = adaptive_integrated_gradients(model, x.detach(), baseline, target,
                                                 self.tolerance, self.max_steps, self.batch_size)
            return path_sum(model, x, baseline, target, path.samples, path.alphas, path.weights,
                            self.batch_size, create_graph=True)
        return integrated_gradients(model, x, baseline, target, self.alphas, self.weights,
                                    self.batch_size, create_graph=True)

    def attribute(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        baseline = resolve_baseline(self.baseline, x)
        target.resolve_with(self.model, x)
        if self.auto:
            path = adaptive_integrated_gradients(self.model, x, baseline, target,
                                                 self.tolerance, self.max_steps, self.batch_size)
            self.metadata.update(path.metadata())
            return path.attribution
        attr = integrated_gradients(
            self.model, x, baseline, target, self.alphas, self.weights, self.batch_size
        )
        if self.convergence_delta:
            with torch.no_grad():
                gap = target.scores(self.model(x)) - target.scores(self.model(baseline))
            self.metadata["convergence_delta"] = attr.flatten(1).sum(1) - gap
        return attr


def integrated_gradients(
    model: nn.Module,
    x: torch.Tensor,
    baseline: torch.Tensor,
    target: Target,
    alphas: torch.Tensor,
    weights: torch.Tensor,
    batch_size: int | None,
    create_graph: bool = False,
) -> torch.Tensor:
    """(x − x') ⊙ Σ_s w_s ∇f_y(x' + α_s (x − x')), rows = steps × samples (row r: step
    r // n, sample r % n), chunked (``create_graph``: differentiable in x): :func:`path_sum`
    with the same points for every sample."""
    n, steps = x.shape[0], len(alphas)
    return path_sum(model, x, baseline, target, torch.arange(n).repeat(steps),
                    alphas.repeat_interleave(n), weights.repeat_interleave(n), batch_size,
                    create_graph=create_graph)


def path_sum(model: nn.Module, x: torch.Tensor, baseline: torch.Tensor, target: Target,
             samples: torch.Tensor, alphas: torch.Tensor, weights: torch.Tensor,
             batch_size: int | None, create_graph: bool = False) -> torch.Tensor:
    """(x − x') ⊙ Σ_r w_r ∇f_y(x' + α_r (x − x')) over rows r of (sample, α, w), chunked:
    :func:`integrated_gradients` with points of its own for each sample."""
    delta = x - baseline
    shape = (-1,) + (1,) * (x.dim() - 1)

    def compute(rows: torch.Tensor) -> torch.Tensor:
        s = samples[rows]
        a = alphas[rows].to(device=x.device, dtype=x.dtype).view(shape)
        grad, _ = input_gradient(model, baseline[s.to(x.device)] + a * delta[s.to(x.device)],
                                 target, s, create_graph=create_graph)
        return grad * weights[rows].to(device=x.device, dtype=x.dtype).view(shape)

    return delta * sum_rows(len(samples), x.shape[0], batch_size, lambda r: samples[r], compute)


#: Errors below ROUNDING · eps(dtype) · max(|f_y(x')|, |Δf|) count as met (rounding noise).
ROUNDING = 8
#: An interval is split when its error is at least this fraction of the sample's largest one.
SPLIT_FRACTION = 0.5


@dataclass
class AdaptivePath:
    """What :func:`adaptive_integrated_gradients` computed: the attribution, and per sample
    the passes (``n_steps``), relative completeness error, whether it met the tolerance, the
    gap Δf = f_y(x) − f_y(x'), and the rows (``samples``, ``alphas``, ``weights``) of the rule."""

    attribution: torch.Tensor
    n_steps: torch.Tensor
    completeness_error: torch.Tensor
    converged: torch.Tensor
    gap: torch.Tensor
    convergence_delta: torch.Tensor
    samples: torch.Tensor
    alphas: torch.Tensor
    weights: torch.Tensor
    rounds: int

    def metadata(self) -> dict:
        return {"n_steps": self.n_steps, "completeness_error": self.completeness_error,
                "converged": self.converged, "convergence_delta": self.convergence_delta,
                "tolerance_rounds": self.rounds}


def adaptive_integrated_gradients(
    model: nn.Module, x: torch.Tensor, baseline: torch.Tensor, target: Target,
    tolerance: float, max_steps: int, batch_size: int | None,
) -> AdaptivePath:
    """IG to a tolerance: per sample, the trapezoid rule on points 0 = α_0 < α_1 < … < α_m = 1
    (:func:`~faithmap.core.integration.trapezoid_weights`: no gradient at the baseline α_0).

    Each gradient row gives the slope F'(α) = ∇f_y(x' + α(x − x')) · (x − x') and, from its
    forward pass, the value F(α) = f_y(x' + α(x − x')); F(0) = f_y(x') costs one
    gradient-free forward row per sample. So every interval's own completeness error
    e_j = h_j (F'_j + F'_{j+1}) / 2 − (F_{j+1} − F_j) is known without further passes, and
    Σ_j e_j = Σ IG − (f_y(x) − f_y(x')). Starting from {α = 1}, each round bisects, for every
    sample whose relative error |Σ e_j| / |Δf| exceeds ``tolerance``, its intervals with
    |e_j| ≥ ``SPLIT_FRACTION`` · max |e| (steps go where the path's gradient changes: a ReLU
    network's F is piecewise linear, so an interval without a kink has e_j = 0). Every point
    is kept, no pass is repeated; at most ``max_steps`` gradients per sample (else
    ``converged`` is False). The points depend only on each sample's own rows, so the result
    does not depend on ``batch_size``. Samples are refined in groups of ``batch_size``
    (each group's kept gradients, at most ``batch_size · max_steps`` rows, are summed and
    released before the next group), so memory does not grow with N. Reconstructed (not in
    the IG paper, which asks for 20–300 uniform steps): adaptive quadrature with the exactly
    known path integral F(1) − F(0) as the error estimate.
    """
    n = x.shape[0]
    group = n if batch_size is None else batch_size
    attr = torch.zeros_like(x)
    parts = [_adaptive_group(model, x, baseline, target, tolerance, max_steps, batch_size,
                             list(range(lo, min(lo + group, n))), attr)
             for lo in range(0, n, group)]
    return _merge_paths(parts)


def _adaptive_group(model, x, baseline, target, tolerance, max_steps, batch_size,
                    members: list[int], attr: torch.Tensor) -> AdaptivePath:
    """:func:`adaptive_integrated_gradients` for the samples ``members`` (global indices,
    at most ``batch_size`` of them, so the kept gradients take at most
    ``batch_size · max_steps`` rows); their rows of ``attr`` are filled."""
    delta = x - baseline
    shape = (-1,) + (1,) * (x.dim() - 1)
    idx = torch.tensor(members, dtype=torch.long)
    with torch.no_grad():
        start = map_rows(len(members), batch_size, lambda r: target.scores(
            model(baseline[idx[r].to(x.device)]), idx[r]).double().cpu())
    n = x.shape[0]
    pts: list[list[float]] = [[0.0] for _ in range(n)]
    value: list[list[float]] = [[0.0] for _ in range(n)]
    for k, i in enumerate(members):
        value[i][0] = float(start[k])
    slope: list[list[float]] = [[] for _ in range(n)]
    grads: list[list[torch.Tensor]] = [[] for _ in range(n)]
    pending = [(i, 1.0) for i in members]
    inside = set(members)
    done = [i not in inside for i in range(n)]
    rounds = 0
    while pending:
        rounds += 1
        samples = torch.tensor([i for i, _ in pending], dtype=torch.long)
        alphas = torch.tensor([a for _, a in pending], dtype=torch.float64)
        for rows in chunks(len(pending), batch_size):
            s = samples[rows]
            sd = s.to(x.device)
            a = alphas[rows].to(device=x.device, dtype=x.dtype).view(shape)
            g, out = input_gradient(model, baseline[sd] + a * delta[sd], target, s)
            f = target.scores(out, s).double().cpu()
            d = (g * delta[sd]).flatten(1).sum(1).double().cpu()
            for k, i in enumerate(s.tolist()):
                pts[i].append(float(alphas[rows[k]]))
                value[i].append(float(f[k]))
                slope[i].append(float(d[k]))
                grads[i].append(g[k].detach())
        pending = []
        for i in range(n):
            if done[i]:
                continue
            p, order = torch.sort(torch.tensor(pts[i], dtype=torch.float64))
            e = interval_errors(p, torch.tensor(slope[i], dtype=torch.float64)[order[1:] - 1],
                                torch.tensor(value[i], dtype=torch.float64)[order])
            gap = value[i][pts[i].index(1.0)] - value[i][0]
            room = max_steps - len(slope[i])
            floor = ROUNDING * torch.finfo(x.dtype).eps * max(abs(value[i][0]), abs(gap))
            if abs(float(e.sum())) <= max(tolerance * abs(gap), floor) or room <= 0:
                done[i] = True
                continue
            mag = e.abs()
            split = torch.nonzero(mag >= SPLIT_FRACTION * mag.max()).flatten()
            split = split[torch.argsort(-mag[split], stable=True)][:room]
            pending += [(i, float((p[j] + p[j + 1]) / 2)) for j in sorted(split.tolist())]
    return _finish_path(x, delta, pts, value, grads, tolerance, rounds, members, attr)


def _merge_paths(parts: list[AdaptivePath]) -> AdaptivePath:
    """The groups' paths (consecutive samples, one shared attribution) as one."""
    if len(parts) == 1:
        return parts[0]
    cat = lambda name: torch.cat([getattr(p, name) for p in parts])  # noqa: E731
    return AdaptivePath(
        attribution=parts[0].attribution, n_steps=cat("n_steps"),
        completeness_error=cat("completeness_error"),
        converged=cat("converged"), gap=cat("gap"), convergence_delta=cat("convergence_delta"),
        samples=cat("samples"), alphas=cat("alphas"), weights=cat("weights"),
        rounds=max(p.rounds for p in parts))


def _finish_path(x, delta, pts, value, grads, tolerance, rounds, members,
                 attr) -> AdaptivePath:
    """Trapezoid sums in increasing α per sample of ``members`` (into ``attr``), and their
    facts; the group's kept gradients are released."""
    rows_s, rows_a, rows_w = [], [], []
    gap = torch.tensor([value[i][pts[i].index(1.0)] - value[i][0] for i in members],
                       dtype=torch.float64)
    shape = (-1,) + (1,) * (x.dim() - 1)
    for i in members:
        p, order = torch.sort(torch.tensor(pts[i], dtype=torch.float64))
        w = trapezoid_weights(p)
        g = torch.stack([grads[i][j - 1] for j in order[1:].tolist()])
        attr[i] = delta[i] * (w.to(device=x.device, dtype=x.dtype).view(shape) * g).sum(0)
        grads[i] = []
        rows_s.append(torch.full((len(w),), i, dtype=torch.long))
        rows_a.append(p[1:])
        rows_w.append(w)
    rows = torch.tensor(members, dtype=torch.long)
    err = attr[rows.to(x.device)].flatten(1).sum(1).double().cpu() - gap
    rel = err.abs() / gap.abs().clamp_min(torch.finfo(torch.float64).tiny)
    start = torch.tensor([value[i][0] for i in members], dtype=torch.float64)
    floor = ROUNDING * torch.finfo(x.dtype).eps * torch.maximum(start.abs(), gap.abs())
    return AdaptivePath(
        attribution=attr, n_steps=torch.tensor([len(pts[i]) - 1 for i in members]),
        completeness_error=rel, converged=(rel <= tolerance) | (err.abs() <= floor),
        gap=gap, convergence_delta=err,
        samples=torch.cat(rows_s), alphas=torch.cat(rows_a), weights=torch.cat(rows_w),
        rounds=rounds)


class _NoisyGradients(Explainer):
    """Gradients at S noisy copies of each sample: rows = samples × draws, chunked."""

    def __init__(
        self,
        model: nn.Module,
        *,
        n_samples: int = 50,
        noise_level: float = 0.15,
        stdev: float | None = None,
        seed: SeedLike = 0,
        batch_size: int | None = DEFAULT_BATCH_SIZE,
    ) -> None:
        super().__init__(model, batch_size=batch_size)
        check_positive_int("n_samples", n_samples)
        if noise_level < 0 or (stdev is not None and stdev < 0):
            raise ValueError("noise_level and stdev must be >= 0")
        self.n_samples = n_samples
        self.noise_level = noise_level
        self.stdev = stdev
        self.seed = seed

    def noise_std(self, x: torch.Tensor) -> torch.Tensor:
        """σ per sample: ``stdev`` if given, else noise_level · (max x_i − min x_i)."""
        if self.stdev is not None:
            return torch.full((x.shape[0],), float(self.stdev), dtype=x.dtype, device=x.device)
        flat = x.flatten(1)
        return self.noise_level * (flat.max(1).values - flat.min(1).values)

    def noise(self, x: torch.Tensor, rows: torch.Tensor, seed: int,
              draws: BlockDraws | None = None) -> torch.Tensor:
        """The noise ε for rows (sample = row // S, draw = row % S), scaled by σ: standard
        normal draws in seeded blocks (:class:`~faithmap.core.seeding.BlockDraws`; pass one
        ``draws`` across chunks so each block is drawn once)."""
        if draws is None:
            draws = BlockDraws(seed, tuple(x.shape[1:]), x.dtype, x.device,
                               per_sample=self.n_samples)
        sample = rows // self.n_samples
        eps = draws(sample, rows % self.n_samples)
        return eps * self.noise_std(x)[sample.to(x.device)].view(-1, *[1] * (x.dim() - 1))

    def all_noise(self, x: torch.Tensor) -> torch.Tensor:
        """Every noise draw of a call, N×S×C×H×W (for inspection and tests)."""
        seed = base_seed(self.seed)
        rows = torch.arange(x.shape[0] * self.n_samples)
        return self.noise(x, rows, seed).view(x.shape[0], self.n_samples, *x.shape[1:])

    def rows_per_sample(self) -> int:
        return self.n_samples

    def cost(self, x_shape, target=None) -> Cost:
        """n_samples forward+backward, + 1 forward for a ``None`` target."""
        return Cost(self.n_samples + int(predicted(target)), self.n_samples)

    def gradient_moments(self, x: torch.Tensor, target: Target, powers: tuple[int, ...],
                         model: nn.Module | None = None, create_graph: bool = False):
        """Σ_s g_s^p for each p in ``powers`` (g_s: gradient at the s-th noisy copy), on
        ``model`` (default the explainer's; ``create_graph``: differentiable in x)."""
        net = self.model if model is None else model
        target.resolve_with(net, x.detach())
        seed = base_seed(self.seed)
        s_count = self.n_samples
        draws = BlockDraws(seed, tuple(x.shape[1:]), x.dtype, x.device, per_sample=s_count)

        def compute(rows: torch.Tensor) -> torch.Tensor:
            sample = rows // s_count
            noisy = x[sample.to(x.device)] + self.noise(x.detach(), rows, seed, draws)
            grad, _ = input_gradient(net, noisy, target, sample, create_graph=create_graph)
            return torch.stack([grad**p for p in powers], dim=1)

        total = sum_rows(x.shape[0] * s_count, x.shape[0], self.batch_size,
                         lambda rows: rows // s_count, compute)
        return total.unbind(1)


@register("smoothgrad")
class SmoothGrad(_NoisyGradients):
    """SmoothGrad (Smilkov et al. 2017): mean gradient over Gaussian-noised copies.

    ``squared=True`` gives SmoothGrad-Squared (mean of squared gradients, Hooker et al. 2019).
    """

    def __init__(self, model: nn.Module, *, squared: bool = False, **options) -> None:
        super().__init__(model, **options)
        self.squared = squared

    def attribute(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        return self.attribute_differentiable(x, target, self.model, create_graph=False)

    def attribute_differentiable(self, x: torch.Tensor, target: Target, model: nn.Module,
                                 create_graph: bool = True) -> torch.Tensor:
        powers = (2,) if self.squared else (1,)
        (total,) = self.gradient_moments(x, target, powers, model, create_graph)
        return total / self.n_samples


@register("vargrad")
class VarGrad(_NoisyGradients):
    """VarGrad (Adebayo et al. 2018): variance of gradients over noised copies, E[g²] − E[g]²."""

    def attribute(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        first, second = self.gradient_moments(x, target, (1, 2))
        mean = first / self.n_samples
        return (second / self.n_samples - mean**2).clamp_min(0)
