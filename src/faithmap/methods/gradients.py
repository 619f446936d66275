"""Gradient baselines: Saliency, Input×Gradient, Integrated Gradients, SmoothGrad, VarGrad.

- Saliency (Simonyan et al. 2014): ∂f_y/∂x, absolute value by default.
- Input×Gradient (Shrikumar et al. 2016): x ⊙ ∂f_y/∂x.
- Integrated Gradients (Sundararajan et al. 2017):
  IG(x) = (x − x') ⊙ ∫₀¹ ∂f_y(x' + α(x − x'))/∂x dα ≈ (x − x') ⊙ Σ_s w_s ∇f_y(x' + α_s(x − x')).
- SmoothGrad (Smilkov et al. 2017): (1/S) Σ_s ∇f_y(x + ε_s), ε_s ~ N(0, σ²),
  σ = noise_level · (max x − min x) per sample; ``squared`` averages ∇² instead.
- VarGrad (Adebayo et al. 2018): the variance over s of ∇f_y(x + ε_s).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..core.autograd import input_gradient
from ..core.batching import DEFAULT_BATCH_SIZE, sum_rows
from ..core.deprecation import renamed_attribute, renamed_options
from ..core.errors import InvalidInputError
from ..core.explainer import Explainer
from ..core.integration import normalise_method, quadrature
from ..core.registry import register
from ..core.seeding import SeedLike, base_seed, randn_rows
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
    Deprecated names: ``baselines`` (→ ``baseline``), ``method`` (→ ``integration``).
    """

    @renamed_options(baselines="baseline", method="integration")
    def __init__(
        self,
        model: nn.Module,
        *,
        baseline: Baseline = 0.0,
        n_steps: int = 50,
        integration: str = "gausslegendre",
        convergence_delta: bool = False,
        batch_size: int | None = DEFAULT_BATCH_SIZE,
    ) -> None:
        super().__init__(model, batch_size=batch_size)
        self.baseline = baseline
        self.integration = normalise_method(integration)
        self.alphas, self.weights = quadrature(self.integration, n_steps)
        self.n_steps = n_steps
        self.convergence_delta = convergence_delta

    method = renamed_attribute("method", "integration")

    baselines = renamed_attribute("baselines", "baseline")

    def rows_per_sample(self) -> int:
        return len(self.alphas)

    def attribute_differentiable(self, x: torch.Tensor, target: Target,
                                 model: nn.Module) -> torch.Tensor:
        baseline = resolve_baseline(self.baseline, x.detach())
        return integrated_gradients(model, x, baseline, target, self.alphas, self.weights,
                                    self.batch_size, create_graph=True)

    def attribute(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        baseline = resolve_baseline(self.baseline, x)
        target.resolve_with(self.model, x)
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
    """(x − x') ⊙ Σ_s w_s ∇f_y(x' + α_s (x − x')), rows = steps × samples, chunked
    (``create_graph``: differentiable in x)."""
    n = x.shape[0]
    delta = x - baseline
    alphas = alphas.to(device=x.device, dtype=x.dtype)
    weights = weights.to(device=x.device, dtype=x.dtype)

    def compute(rows: torch.Tensor) -> torch.Tensor:
        step, sample = rows // n, rows % n
        a = alphas[step.to(x.device)].view(-1, 1, 1, 1)
        s = sample.to(x.device)
        grad, _ = input_gradient(model, baseline[s] + a * delta[s], target, sample,
                                 create_graph=create_graph)
        return grad * weights[step.to(x.device)].view(-1, 1, 1, 1)

    total = sum_rows(len(alphas) * n, n, batch_size, lambda rows: rows % n, compute)
    return delta * total


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

    def noise(self, x: torch.Tensor, rows: torch.Tensor, seed: int) -> torch.Tensor:
        """The noise ε for rows (sample = row // S, draw = row % S), scaled by σ."""
        keys = [(int(r) // self.n_samples, int(r) % self.n_samples) for r in rows]
        eps = randn_rows(seed, keys, tuple(x.shape[1:]), x.dtype, x.device)
        return eps * self.noise_std(x)[rows // self.n_samples].view(-1, 1, 1, 1)

    def all_noise(self, x: torch.Tensor) -> torch.Tensor:
        """Every noise draw of a call, N×S×C×H×W (for inspection and tests)."""
        seed = base_seed(self.seed)
        rows = torch.arange(x.shape[0] * self.n_samples)
        return self.noise(x, rows, seed).view(x.shape[0], self.n_samples, *x.shape[1:])

    def rows_per_sample(self) -> int:
        return self.n_samples

    def gradient_moments(self, x: torch.Tensor, target: Target, powers: tuple[int, ...],
                         model: nn.Module | None = None, create_graph: bool = False):
        """Σ_s g_s^p for each p in ``powers`` (g_s: gradient at the s-th noisy copy), on
        ``model`` (default the explainer's; ``create_graph``: differentiable in x)."""
        net = self.model if model is None else model
        target.resolve_with(net, x.detach())
        seed = base_seed(self.seed)
        s_count = self.n_samples

        def compute(rows: torch.Tensor) -> torch.Tensor:
            sample = rows // s_count
            noisy = x[sample.to(x.device)] + self.noise(x.detach(), rows, seed)
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
