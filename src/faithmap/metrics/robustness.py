"""Robustness metrics: how much does an explanation move under small input changes?

- :func:`max_sensitivity` (Yeh et al., NeurIPS 2019): random perturbations in an r-ball.
- :func:`manipulation_attack` (Ghorbani, Abid & Zou, AAAI 2019): adversarial perturbations
  that keep the label and push the explanation away.

``explainer`` options accept a registry name (``"saliency"``), an
:class:`~faithmap.core.explainer.Explainer` object, or a callable
``(model, x, target) -> attributions``. Inputs and target are validated by
:func:`~faithmap.core.prelude.guarded_call`, which also leaves the model as it was.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..core.batching import DEFAULT_BATCH_SIZE, check_batch_size, map_rows
from ..core.deprecation import renamed_options
from ..core.errors import InvalidInputError
from ..core.geometry import BoundsLike
from ..core.prelude import guarded_call
from ..core.registry import ExplainerLike, as_explain_fn
from ..core.seeding import SeedLike, base_seed, derived_rows, rand_rows
from ..core.targets import TargetLike, row_targets
from ..core.validation import check_positive_int
from .base import check_attributions, metric
from .manipulation import manipulate, topk_intersection

__all__ = ["manipulation_attack", "max_sensitivity"]


def sensitivity_noise(
    x: torch.Tensor, rows: torch.Tensor, n_samples: int, radius: float, seed: int
) -> torch.Tensor:
    """Noise of rows (sample = row // n_samples, draw = row % n_samples), uniform in ±radius."""
    keys = [(int(r) // n_samples, int(r) % n_samples) for r in rows]
    u = rand_rows(seed, keys, tuple(x.shape[1:]), x.dtype, x.device)
    return (2 * u - 1) * radius


@metric("max_sensitivity", higher_is_better=False, category="robustness", kind="model")
@renamed_options(targets="target")
def max_sensitivity(
    model: nn.Module,
    inputs: torch.Tensor,
    attributions: torch.Tensor,
    target: TargetLike = None,
    *,
    explainer: ExplainerLike | None = None,
    radius: float = 0.2,
    n_samples: int = 10,
    seed: SeedLike = 0,
    batch_size: int | None = DEFAULT_BATCH_SIZE,
) -> torch.Tensor:
    """Max-sensitivity (Yeh et al., NeurIPS 2019), lower is better.

    SENS_max(E, x) = max_{s ≤ S} ‖E(x) − E(x + ε_s)‖₂ / ‖E(x)‖₂,  ε_s ~ U[−r, r]^d
    (Quantus' uniform noise, not clipped to the input box), ``S = n_samples``,
    ``r = radius``. ``attributions`` is E(x); E is ``explainer`` (required). All S × N
    noisy copies form one multiplied batch explained in chunks of ``batch_size`` rows.
    Noise is seeded per (sample, draw), so scores do not depend on ``batch_size``.
    """
    with guarded_call(model, inputs, target) as (x, tgt):
        a0 = check_attributions(attributions, x).flatten(1)
        check_positive_int("n_samples", n_samples)
        batch_size = check_batch_size(batch_size)
        if not radius >= 0:
            raise ValueError(f"radius must be >= 0, got {radius!r}")
        norm0 = a0.norm(dim=1)
        if bool((norm0 == 0).any()):
            bad = torch.nonzero(norm0 == 0).flatten().tolist()
            raise InvalidInputError(f"attributions are all zero for sample(s) {bad[:10]}: "
                                    "relative sensitivity is undefined")
        n, seed_ = x.shape[0], base_seed(seed)
        tgt.resolve_with(model, x)
        explain = as_explain_fn(explainer, model)

        def compute(rows: torch.Tensor) -> torch.Tensor:
            s = rows // n_samples
            sd = s.to(x.device)
            noisy = x[sd] + sensitivity_noise(x, rows, n_samples, radius, seed_)
            with derived_rows(s, rows % n_samples):  # the copies' draws follow their sample
                a = explain(noisy, row_targets(tgt, s)).detach().flatten(1)
            if a.shape[1] != a0.shape[1]:
                raise InvalidInputError(
                    f"the explainer returns {a.shape[1]} values per sample but attributions "
                    f"have {a0.shape[1]}"
                )
            return (a - a0[sd]).norm(dim=1) / norm0[sd]

        ratios = map_rows(n * n_samples, batch_size, compute)
    return ratios.view(n, n_samples).amax(1)


@metric("manipulation_attack", higher_is_better=True, category="robustness", kind="model")
@renamed_options(targets="target", epsilon="radius", input_range="bounds")
def manipulation_attack(
    model: nn.Module,
    inputs: torch.Tensor,
    attributions: torch.Tensor,
    target: TargetLike = None,
    *,
    explainer: ExplainerLike | None = None,
    attack: str = "topk",
    score: str = "topk_intersection",
    k: int | None = None,
    radius: float = 8 / 255,
    steps: int = 10,
    step_size: float | None = None,
    target_region: torch.Tensor | None = None,
    bounds: BoundsLike | None = (0.0, 1.0),
    beta: float = 10.0,
    n_candidates: int = 8,
    seed: SeedLike = 0,
    batch_size: int | None = DEFAULT_BATCH_SIZE,
) -> torch.Tensor:
    """Explanation manipulation (Ghorbani, Abid & Zou, AAAI 2019).

    Searches x̂ with ‖x̂ − x‖∞ ≤ ``radius`` (and x̂ inside the input box ``bounds``: scalars
    or one (lo, hi) value per channel; ``None``: no box) that keeps the predicted label and
    maximises an attack objective D on the normalised map m = Σ_c |E_c| / Σ |E|:
    ``attack="topk"``: −Σ_{p∈B} m_p (B: top-k pixels of E(x)); ``"targeted"``: Σ_{p∈T} m_p
    (T: ``target_region``, default the bottom-right 4×4 pixels, scaled by min(H, W)/224 above
    224 px, as DANCE's evaluation); ``"mass_center"``: ‖C(m̂) − C(m)‖₂ with C the centre of
    mass.

    Gradient attack (``steps`` signed-gradient steps of ``step_size``, default radius/4,
    projected each step) for explainers with a differentiable form
    (``explainer.differentiable``: ``saliency``, ``input_x_gradient``,
    ``integrated_gradients``, ``smoothgrad``): ∇_x D by double backward through a deep copy
    of the model whose ``nn.ReLU`` modules are replaced by Softplus(``beta``). Any other
    explainer: seeded random search (``n_candidates`` random-sign steps per sample and
    iteration). The iterate with the best D under the *real* explainer among label-keeping
    ones is kept; if none beats the unattacked D, x̂ = x and the sample scores as unattacked
    (intersection 1, sensitivity 0).

    ``score="topk_intersection"`` (default, higher is better — the metadata): |top-k(E(x)) ∩
    top-k(E(x̂))| / k on the map m. ``score="sensitivity"`` (lower is better; DANCE's SS):
    ‖E(x) − E(x̂)‖₂ / ‖x − x̂‖₂. ``k`` defaults to 10% of the H·W pixels.
    """
    with guarded_call(model, inputs, target) as (x, tgt):
        a0 = check_attributions(attributions, x)
        if score not in ("topk_intersection", "sensitivity"):
            raise ValueError(
                f"score must be 'topk_intersection' or 'sensitivity', got {score!r}")
        options: dict[str, Any] = dict(
            attack=attack, k=k, radius=radius, steps=steps, step_size=step_size,
            target_region=target_region, bounds=bounds, beta=beta, n_candidates=n_candidates,
            seed=base_seed(seed), batch_size=check_batch_size(batch_size),
        )
        tgt.resolve_with(model, x)
        explain = as_explain_fn(explainer, model)
        x_hat, a_hat, kk = manipulate(model, x, a0, tgt, explain, explainer, **options)
    if score == "sensitivity":
        dx = (x_hat - x).flatten(1).norm(dim=1)
        da = (a_hat - a0).flatten(1).norm(dim=1)
        return torch.where(dx > 0, da / dx.clamp_min(1e-30), torch.zeros_like(dx))
    return topk_intersection(a0, a_hat, kk)
