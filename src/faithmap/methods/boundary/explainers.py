"""Boundary attributions (Wang, Fredrikson & Datta, ICML 2022; arXiv 2103.11257).

x' = the closest point to x (in ``norm``) whose predicted class differs from y, found by
:func:`faithmap.attacks.find_boundary` (by default the Fast Minimum-Norm attack, Pintor et
al., NeurIPS 2021, + bisection; ``engine="ddn"``: Rony et al., CVPR 2019; ``"sweep"``: the
PGD sweep + CW-L2 of the reference pipeline); then

- BSM (boundary saliency map): ∇_{x'} f_y(x') (``objective="logit"``, as the reference code)
  or the margin normal ∇_{x'} (f_y − f_{y'})(x'), y' = argmax_{j≠y} f_j(x') (``"margin"``);
- BIG (boundary integrated gradients): IG from x' to x,
  (x − x') ⊙ Σ_s w_s ∇f_y(x' + α_s (x − x')), with Σ BIG ≈ f_y(x) − f_y(x');
- boundary SmoothGrad: SmoothGrad at x', (1/S) Σ_s ∇f_y(x' + ε_s).

For a target y that is not the model's prediction at x, x' is the closest point predicted
as y (the nearest point of y's decision boundary seen from outside; ``metadata["targeted"]``),
so the maps explain y against the class x is predicted as (docs/methods/boundary.md).

The three share one search per (model, inputs, targets, search settings) through a
:class:`~faithmap.methods.boundary.cache.BoundaryCache`. Samples with no boundary found are
listed in ``metadata["fallback_samples"]`` (``metadata["found"]`` is False) with a warning,
and get the ``fallback`` outcome: ``"nan"`` (default: their map is all NaN, never a
plausible map), ``"raise"`` (:class:`~faithmap.attacks.boundary.BoundaryNotFoundError`), or
a baseline (number, tensor or callable, IG's rules) used as x' instead (the reference uses
the all-zeros input).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from ...attacks.boundary import (
    Boundary,
    BoundaryNotFoundError,
    check_radii,
    engine_options,
    find_boundary,
    resolve_engine,
    search_passes,
)
from ...core.autograd import input_gradient
from ...core.batching import DEFAULT_BATCH_SIZE, map_rows
from ...core.cost import Cost, check_shape, predicted
from ...core.deprecation import renamed, renamed_attribute, renamed_options
from ...core.errors import TargetError
from ...core.explainer import Explainer
from ...core.geometry import BoundsLike, check_norm
from ...core.integration import AUTO, check_steps, normalise_method, quadrature
from ...core.registry import register
from ...core.seeding import SeedLike
from ...core.targets import Target
from ..gradients import (
    Baseline,
    SmoothGrad,
    adaptive_integrated_gradients,
    integrated_gradients,
    resolve_baseline,
)
from .cache import DEFAULT_CACHE, BoundaryCache


class BoundaryExplainer(Explainer):
    """Shared boundary search of BSM, BIG and boundary SmoothGrad (see module doc).

    Search options (:func:`~faithmap.attacks.find_boundary`): ``engine`` (None: FMN, or the
    engine whose options are given; ``"fmn"``, ``"ddn"``, ``"sweep"``), ``norm`` ("l2" |
    "linf"), ``radius`` (the sweep's ascending radii, a minimum-norm engine's largest
    distance; ``eps`` is its deprecated name), ``steps`` (PGD steps per radius) and
    ``cw_steps`` (both sweep options: setting one selects the sweep), ``refine_steps``,
    ``bounds`` (valid input range, scalars or per channel), ``seed``, ``search_options``
    (other :func:`find_boundary` keywords, e.g. ``fmn_steps``). ``cache``: True (the shared
    cache), False, or a :class:`BoundaryCache`.
    ``batch_size`` (rows per forward pass) is also the search's. ``fallback`` (samples without
    a boundary): ``"nan"`` (NaN map), ``"raise"`` or a baseline used as x' (module doc).
    """

    @renamed_options(eps="radius")
    def __init__(
        self, model: nn.Module, *, norm: str = "l2", radius: Any = None,
        steps: int | None = None, cw_steps: int | None = None, refine_steps: int = 10,
        bounds: BoundsLike | None = (0.0, 1.0), seed: SeedLike = 0,
        fallback: Baseline | str = "nan", cache: bool | BoundaryCache = True,
        search_options: dict[str, Any] | None = None,
        batch_size: int | None = DEFAULT_BATCH_SIZE, engine: str | None = None,
    ) -> None:
        super().__init__(model, batch_size=batch_size)
        if isinstance(fallback, str) and fallback not in ("nan", "raise"):
            raise ValueError(f"fallback must be 'nan', 'raise' or a baseline, got {fallback!r}")
        extra = renamed(search_options or {}, {"eps": "radius"}, "search_options")
        if engine is not None and extra.get("engine", engine) != engine:
            raise TypeError(f"engine={engine!r} and search_options engine="
                            f"{extra['engine']!r} disagree; pass one of them")
        self.search = {"engine": engine, "norm": check_norm(norm),
                       "radius": None if radius is None else check_radii(radius),
                       "steps": steps, "cw_steps": cw_steps, "refine_steps": refine_steps,
                       "bounds": bounds, "seed": seed, **extra}
        resolve_engine(self.search["engine"], self.search["norm"],
                       engine_options(self.search))  # bad or mixed options fail here
        self.fallback = fallback
        self.seed = seed
        if not isinstance(cache, (bool, BoundaryCache)):
            raise TypeError(f"cache must be True, False or a BoundaryCache, got {cache!r}")
        self.cache = DEFAULT_CACHE if cache is True else (None if cache is False else cache)

    def search_cost(self, x_shape: tuple[int, ...], target: object = None) -> Cost:
        """The boundary search's passes per sample, an upper bound (early stopping and the
        cache only lower it): :func:`~faithmap.attacks.boundary.search_passes`, + 1 forward
        for a ``None`` target."""
        forward, backward = search_passes(check_shape(x_shape), **self.search)
        return Cost(forward + int(predicted(target)), backward, exact=False)

    def boundary(self, x: torch.Tensor, target: Target) -> tuple[torch.Tensor, Boundary]:
        """x' for every sample (fallback where none was found) and the search record."""
        target.resolve_with(self.model, x)
        if target.indices is None:
            raise TargetError(f"{type(self).__name__} needs class-index targets (a callable "
                              "target has no decision boundary to search)")
        y = target.indices
        cacheable = self.cache is not None and isinstance(self.seed, int)
        key = self.cache.key(self.model, x, y, self.search) if cacheable else None
        found = self.cache.get(key, self.model) if key is not None else None
        self.metadata["cache_hit"] = found is not None
        if found is None:
            found = find_boundary(self.model, x, y, batch_size=self.batch_size, **self.search)
            if key is not None:
                self.cache.put(key, self.model, found)
        b = found
        self.metadata.update(
            boundary=b, found=b.found.tolist(), distances=b.distances.tolist(),
            boundary_radius=b.radius.tolist(), targeted=b.targeted.tolist(),
            boundary_attack=list(b.attack), boundary_class=b.labels.tolist(),
            search_forward_backward=0 if self.metadata["cache_hit"] else b.forward_backward)
        missing = torch.nonzero(~b.found).flatten().tolist()
        self.metadata["fallback_samples"] = missing
        if not missing:
            return b.points, b
        where = (f"no decision boundary found for samples {missing[:10]} (largest radius "
                 f"{float(b.radii.max()):.3g})")
        if self.fallback == "raise":
            raise BoundaryNotFoundError(f"{type(self).__name__}: {where}", missing)
        if self.fallback == "nan":
            warnings.warn(f"{type(self).__name__}: {where}; their maps are NaN "
                          "(metadata['fallback_samples'])", RuntimeWarning, stacklevel=4)
            return b.points, b  # x there; the rows are set to NaN by _blank
        warnings.warn(f"{type(self).__name__}: {where}; they use the fallback baseline "
                      f"{self.fallback!r} instead (metadata['fallback_samples'])",
                      RuntimeWarning, stacklevel=4)
        base = resolve_baseline(self.fallback, x)  # type: ignore[arg-type]
        return torch.where(b.found.view(-1, 1, 1, 1), b.points, base), b

    def _blank(self, attr: torch.Tensor, b: Boundary) -> torch.Tensor:
        """``attr`` with NaN rows where no boundary was found and ``fallback="nan"``."""
        if self.fallback != "nan" or bool(b.found.all()):
            return attr
        keep = b.found.to(attr.device).view(-1, *[1] * (attr.dim() - 1))
        return torch.where(keep, attr, torch.full_like(attr, float("nan")))


@register("bsm")
class BoundarySaliency(BoundaryExplainer):
    """BSM: ∇f_y at the nearest boundary point x' (``objective="logit"``) or the margin
    normal ∇(f_y − f_{y'})(x') (``"margin"``); ``abs=True`` returns its absolute value."""

    def __init__(self, model: nn.Module, *, objective: str = "logit", abs: bool = False,
                 **options: Any) -> None:
        super().__init__(model, **options)
        if objective not in ("logit", "margin"):
            raise ValueError(f"objective must be 'logit' or 'margin', got {objective!r}")
        self.objective = objective
        self.abs = abs

    def attribute(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        xp, b = self.boundary(x, target)
        y = target.indices
        assert y is not None

        def grad(rows: torch.Tensor) -> torch.Tensor:
            r = rows.to(x.device)
            if self.objective == "logit":
                return input_gradient(self.model, xp[r], target, rows)[0]

            def margin(out: torch.Tensor) -> torch.Tensor:
                yy = y[rows].to(out.device)[:, None]
                return out.gather(1, yy).squeeze(1) - out.scatter(1, yy, -torch.inf).amax(1)

            return input_gradient(self.model, xp[r], Target(margin, len(rows)))[0]

        g = map_rows(x.shape[0], self.batch_size, grad)
        return self._blank(g.abs() if self.abs else g, b)

    def cost(self, x_shape, target=None) -> Cost:
        """The search (an upper bound) + one forward+backward at x'."""
        return self.search_cost(x_shape, target) + Cost(1, 1)


@register("big")
class BoundaryIntegratedGradients(BoundaryExplainer):
    """BIG: Integrated Gradients from the boundary point x' to x (``n_steps``, quadrature
    rule ``integration`` as :class:`IntegratedGradients`; ``method`` is its deprecated name).
    ``metadata`` holds ``convergence_delta`` = Σ BIG − (f_y(x) − f_y(x')) and
    ``boundary_gap`` = f_y(x) − f_y(x')."""

    @renamed_options(method="integration")
    def __init__(self, model: nn.Module, *, n_steps: int | str = 50,
                 integration: str = "gausslegendre", tolerance: float = 1e-2,
                 max_steps: int = 128, **options: Any) -> None:
        super().__init__(model, **options)
        self.integration = normalise_method(integration)
        self.n_steps = check_steps(n_steps, tolerance, max_steps)  # "auto": IG's rule
        self.tolerance, self.max_steps = float(tolerance), max_steps
        if n_steps != AUTO:
            self.alphas, self.weights = quadrature(self.integration, n_steps)

    method = renamed_attribute("method", "integration")

    def attribute(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        xp, b = self.boundary(x, target)
        if self.n_steps == AUTO:  # to a tolerance, as IntegratedGradients(n_steps="auto")
            path = adaptive_integrated_gradients(self.model, x, xp, target, self.tolerance,
                                                 self.max_steps, self.batch_size)
            self.metadata.update(path.metadata())
            attr = path.attribution
        else:
            attr = integrated_gradients(self.model, x, xp, target, self.alphas, self.weights,
                                        self.batch_size)
        with torch.no_grad():
            gap = target.scores(self.model(x)) - target.scores(self.model(xp))
        attr = self._blank(attr, b)
        self.metadata["boundary_gap"] = self._blank(gap, b)
        self.metadata["convergence_delta"] = attr.flatten(1).sum(1) - self._blank(gap, b)
        return attr

    def cost(self, x_shape, target=None) -> Cost:
        """The search (an upper bound) + the path integral (n_steps forward+backward) + two
        forwards for the gap f_y(x) − f_y(x')."""
        if self.n_steps == AUTO:  # at most max_steps (+ f_y(x') and the gap's two forwards)
            return self.search_cost(x_shape, target) + Cost(
                self.max_steps + 3, self.max_steps, exact=False)
        steps = len(self.alphas)
        return self.search_cost(x_shape, target) + Cost(steps + 2, steps)


@register("boundary_smoothgrad")
class BoundarySmoothGrad(BoundaryExplainer):
    """SmoothGrad at the boundary point: (1/S) Σ_s ∇f_y(x' + ε_s), ε_s ~ N(0, σ²), with
    :class:`SmoothGrad`'s options (``n_samples``, ``noise_level``, ``stdev``, ``squared``);
    ``seed`` seeds both the search and the noise."""

    def __init__(self, model: nn.Module, *, n_samples: int = 50, noise_level: float = 0.15,
                 stdev: float | None = None, squared: bool = False, **options: Any) -> None:
        super().__init__(model, **options)
        self.smoothgrad = SmoothGrad(model, n_samples=n_samples, noise_level=noise_level,
                                     stdev=stdev, squared=squared, seed=self.seed,
                                     batch_size=self.batch_size)

    def attribute(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        xp, b = self.boundary(x, target)
        return self._blank(self.smoothgrad.attribute(xp, target), b)

    def cost(self, x_shape, target=None) -> Cost:
        """The search (an upper bound) + n_samples forward+backward at x'."""
        s = self.smoothgrad.n_samples
        return self.search_cost(x_shape, target) + Cost(s, s)
