"""Faithfulness metrics: does removing what the map calls important change the prediction?

Every metric is ``fn(model, inputs, attributions, target=None, **options) -> Tensor[N]``;
inputs and target are validated by :func:`~faithmap.core.prelude.guarded_call`, which also
leaves the model as it was.
Attributions (N×C×H×W, N×1×H×W or N×H×W) are reduced to an N×H×W map by summing over
channels (``reduce`` option, see :func:`faithmap.metrics.as_maps`); a "pixel" is one spatial
location with all its channels. All samples × steps form one chunked batch of at most
``batch_size`` rows per forward pass; see ``docs/metrics/faithfulness.md``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..core.batching import DEFAULT_BATCH_SIZE
from ..core.deprecation import renamed_options
from ..core.prelude import guarded_call
from ..core.seeding import SeedLike, base_seed, randn_rows, row_seed, sample_key
from ..core.targets import TargetLike
from .base import as_maps, metric
from .curve_store import shared_curves
from .perturbation import (
    ORDERS,
    SCORES,
    auc,
    check_choice,
    check_maps,
    forward_scores,
    linear_impute,
    make_substrate,
    pixel_ranks,
    ranked_curve,
    resolve_target,
    tie_keys,
)

__all__ = [
    "deletion",
    "faithfulness_correlation",
    "fidelity",
    "fidelity_maps",
    "insertion",
    "insertion_deletion",
    "lerf_morf_gap",
    "perturbation_curve",
    "pixel_flipping",
    "road",
    "shared_curves",
]
BaselineLike = str | float


@renamed_options(targets="target", substrate="baseline")
def perturbation_curve(
    model: nn.Module,
    inputs: torch.Tensor,
    attributions: torch.Tensor,
    target: TargetLike = None,
    *,
    mode: str = "deletion",
    step: int | None = None,
    baseline: BaselineLike = "zeros",
    score: str = "probability",
    reduce: str = "sum",
    ties: str = "random",
    seed: SeedLike = 0,
    batch_size: int | None = DEFAULT_BATCH_SIZE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """RISE deletion/insertion curve: ``(fractions[T+1], scores[N, T+1])``.

    Pixels are taken in decreasing attribution order (ties: ``ties="random"``, default, in a
    random order seeded by ``(seed, sample)``, so a constant map scores like a random one;
    ``"index"``: lower row-major index first, wave 1's rule),
    ``step`` at a time (default ``ceil(H·W/224)``). Point k has ``min(k·step, H·W)`` pixels
    removed (deletion: replaced by the substrate image ``baseline``) or inserted (insertion:
    put back into it); ``fractions`` is that count over H·W, from 0 to 1.
    """
    check_choice("mode", mode, ("deletion", "insertion"))
    with guarded_call(model, inputs, target) as (x, tgt):
        return ranked_curve(model, x, attributions, tgt, insert=mode == "insertion",
                            order="morf", step=step, baseline=baseline, score=score,
                            reduce=reduce, batch_size=batch_size, ties=ties, seed=seed)


@metric("deletion", higher_is_better=False, category="faithfulness", kind="model")
@renamed_options(targets="target", substrate="baseline")
def deletion(
    model: nn.Module,
    inputs: torch.Tensor,
    attributions: torch.Tensor,
    target: TargetLike = None,
    *,
    step: int | None = None,
    baseline: BaselineLike = "zeros",
    score: str = "probability",
    reduce: str = "sum",
    ties: str = "random",
    seed: SeedLike = 0,
    batch_size: int | None = DEFAULT_BATCH_SIZE,
) -> torch.Tensor:
    """Deletion AUC (Petsiuk et al., RISE, BMVC 2018): ``∫₀¹ p_c(x with the top-f pixels
    replaced by the substrate image baseline) df``. Lower is better."""
    fractions, curves = perturbation_curve(model, inputs, attributions, target, mode="deletion",
                                           step=step, baseline=baseline, score=score,
                                           reduce=reduce, ties=ties, seed=seed,
                                           batch_size=batch_size)
    return auc(fractions, curves)


@metric("insertion", higher_is_better=True, category="faithfulness", kind="model")
@renamed_options(targets="target", substrate="baseline")
def insertion(
    model: nn.Module,
    inputs: torch.Tensor,
    attributions: torch.Tensor,
    target: TargetLike = None,
    *,
    step: int | None = None,
    baseline: BaselineLike = "blur",
    score: str = "probability",
    reduce: str = "sum",
    ties: str = "random",
    seed: SeedLike = 0,
    batch_size: int | None = DEFAULT_BATCH_SIZE,
) -> torch.Tensor:
    """Insertion AUC (Petsiuk et al., RISE, BMVC 2018): ``∫₀¹ p_c(substrate image baseline
    with the top-f pixels of x put back) df``. Higher is better. Default: blur, as in RISE."""
    fractions, curves = perturbation_curve(model, inputs, attributions, target, mode="insertion",
                                           step=step, baseline=baseline, score=score,
                                           reduce=reduce, ties=ties, seed=seed,
                                           batch_size=batch_size)
    return auc(fractions, curves)


@metric("insertion_deletion", higher_is_better=True, category="faithfulness", kind="model")
@renamed_options(targets="target", insertion_substrate="insertion_baseline",
                 deletion_substrate="deletion_baseline")
def insertion_deletion(
    model: nn.Module,
    inputs: torch.Tensor,
    attributions: torch.Tensor,
    target: TargetLike = None,
    *,
    step: int | None = None,
    insertion_baseline: BaselineLike = "blur",
    deletion_baseline: BaselineLike = "zeros",
    score: str = "probability",
    reduce: str = "sum",
    ties: str = "random",
    seed: SeedLike = 0,
    batch_size: int | None = DEFAULT_BATCH_SIZE,
) -> torch.Tensor:
    """Insertion AUC − deletion AUC (the difference reported by NeFLAG). Higher is better.
    Both curves order equal attributions by the same ``ties``/``seed``."""
    common = dict(step=step, score=score, reduce=reduce, ties=ties, seed=seed,
                  batch_size=batch_size)
    ins = insertion(model, inputs, attributions, target, baseline=insertion_baseline, **common)
    dele = deletion(model, inputs, attributions, target, baseline=deletion_baseline, **common)
    return ins - dele


def _flipping_curve(
    model: nn.Module,
    inputs: torch.Tensor,
    attributions: torch.Tensor,
    target: TargetLike,
    order: str,
    features_in_step: int,
    baseline: BaselineLike,
    score: str,
    reduce: str,
    batch_size: int | None,
    ties: str = "random",
    seed: SeedLike = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    with guarded_call(model, inputs, target) as (x, tgt):
        return ranked_curve(model, x, attributions, tgt, insert=False, order=order,
                            step=features_in_step, baseline=baseline, score=score,
                            reduce=reduce, batch_size=batch_size, ties=ties, seed=seed)


@metric("pixel_flipping", higher_is_better=False, category="faithfulness", kind="model")
@renamed_options(targets="target")
def pixel_flipping(
    model: nn.Module,
    inputs: torch.Tensor,
    attributions: torch.Tensor,
    target: TargetLike = None,
    *,
    order: str = "morf",
    features_in_step: int = 1,
    baseline: BaselineLike = 0.0,
    score: str = "probability",
    reduce: str = "sum",
    ties: str = "random",
    seed: SeedLike = 0,
    batch_size: int | None = DEFAULT_BATCH_SIZE,
) -> torch.Tensor:
    """Pixel flipping / region perturbation AUC (Bach et al. 2015; Samek et al. 2017).

    Pixels are flipped to ``baseline`` (a value, or ``"zeros" | "mean" | "blur"``) in MoRF
    (decreasing attribution) or LeRF (increasing) order, ``features_in_step`` at a time;
    score = trapezoid AUC of the target score over the flipped fraction in [0, 1], the
    unperturbed point included. MoRF: lower is better (the metadata); LeRF: higher is better.
    Equal attributions: ``ties`` as :func:`perturbation_curve` (the same random order for
    MoRF and LeRF).
    """
    check_choice("order", order, ORDERS)
    fractions, curves = _flipping_curve(model, inputs, attributions, target, order,
                                        features_in_step, baseline, score, reduce, batch_size,
                                        ties, seed)
    return auc(fractions, curves)


@metric("lerf_morf_gap", higher_is_better=True, category="faithfulness", kind="model")
@renamed_options(targets="target")
def lerf_morf_gap(
    model: nn.Module,
    inputs: torch.Tensor,
    attributions: torch.Tensor,
    target: TargetLike = None,
    *,
    features_in_step: int = 1,
    baseline: BaselineLike = 0.0,
    score: str = "probability",
    reduce: str = "sum",
    ties: str = "random",
    seed: SeedLike = 0,
    batch_size: int | None = DEFAULT_BATCH_SIZE,
) -> torch.Tensor:
    """Symmetric relevance gain: AUC(LeRF) − AUC(MoRF) of :func:`pixel_flipping`.

    A random map has equal expected LeRF and MoRF curves, so it scores ≈ 0 however fast its
    perturbations destroy the image; a constant map scores exactly 0 (both orders are the
    same tie order). Higher is better.
    """
    common = dict(features_in_step=features_in_step, baseline=baseline, score=score,
                  reduce=reduce, ties=ties, seed=seed, batch_size=batch_size)
    lerf = pixel_flipping(model, inputs, attributions, target, order="lerf", **common)
    morf = pixel_flipping(model, inputs, attributions, target, order="morf", **common)
    return lerf - morf


@metric("road", higher_is_better=False, category="faithfulness", kind="model")
@renamed_options(targets="target")
def road(
    model: nn.Module,
    inputs: torch.Tensor,
    attributions: torch.Tensor,
    target: TargetLike = None,
    *,
    percentages: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    order: str = "morf",
    noise: float = 0.01,
    score: str = "probability",
    reduce: str = "sum",
    seed: SeedLike = 0,
    tol: float = 1e-5,
    ties: str = "random",
    batch_size: int | None = DEFAULT_BATCH_SIZE,
) -> torch.Tensor:
    """ROAD, remove and debias (Rong et al., ICML 2022): mean target score over ``percentages``
    after removing that share of pixels (MoRF or LeRF) by noisy linear imputation.

    Removed pixels get the 8-neighbour weighted mean of their neighbours (a sparse linear
    system, see :func:`linear_impute`) plus ``noise`` · N(0, 1) (seeded per sample and
    percentage). Equal attributions: ``ties`` as :func:`perturbation_curve` (``"random"``
    keyed by ``seed``: a constant map scores like a random one, not like a raster scan,
    which ROAD's imputation rewards). MoRF: lower is better (the metadata); LeRF: higher is
    better.
    """
    check_choice("order", order, ORDERS)
    check_choice("score", score, SCORES)
    pct = torch.as_tensor(percentages, dtype=torch.float64)
    if pct.dim() != 1 or pct.numel() == 0 or bool(((pct < 0) | (pct >= 1)).any()):
        raise ValueError(f"percentages must be a non-empty list of values in [0, 1), got "
                         f"{percentages!r}")
    with guarded_call(model, inputs, target) as (x, tgt):
        a = check_maps(x, attributions, batch_size)
        n, c, h, w = x.shape
        keys = tie_keys(n, h * w, ties, seed, x.device)
        ranks = pixel_ranks(as_maps(a, reduce), order, keys)
        counts = torch.round(pct * h * w).long().to(x.device)
        tgt = resolve_target(model, x, tgt, batch_size)
        seed0, n_pct = base_seed(seed), counts.numel()

        def build(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            rows = rows.to(x.device)
            samples, k = rows // n_pct, rows % n_pct
            removed = (ranks[samples] < counts[k, None]).view(-1, 1, h, w)
            imputed = linear_impute(x[samples], removed, tol=tol)
            keys = [(int(s), int(j)) for s, j in zip(samples.tolist(), k.tolist())]
            z = randn_rows(seed0, keys, (c, h, w), x.dtype, x.device)
            return imputed + noise * z * removed, samples

        scores = forward_scores(model, n * n_pct, build, tgt, score, batch_size, x.device)
    return scores.view(n, n_pct).mean(dim=1)


FIDELITY_NORMALISE = ("dance", "max_abs", "none")


def fidelity_maps(attributions: torch.Tensor, normalise: str = "dance") -> torch.Tensor:
    """The map E that :func:`fidelity` multiplies into the input (N×C×H×W or N×1×H×W).

    ``"dance"``: DANCE's post-processing of a saliency map, |E| → max over channels → clip
    at the per-sample 95th percentile q → divide by q, so E ∈ [0, 1] (by the maximum
    instead where q = 0, i.e. a map with fewer than 5% non-zero pixels). ``"max_abs"``:
    E / max|E|, signed, per channel. ``"none"``: E as given (scale-dependent, wave 1).
    An all-zero map stays all zero. Both normalisations make E ↦ αE (α > 0) a no-op.
    """
    check_choice("normalise", normalise, FIDELITY_NORMALISE)
    e = attributions if attributions.dim() == 4 else attributions[:, None]
    if normalise == "none":
        return e
    if normalise == "max_abs":
        scale = e.abs().flatten(1).amax(1)
    else:
        e = e.abs().amax(1, keepdim=True)
        flat = e.flatten(1)
        q = torch.quantile(flat.double(), 0.95, dim=1).to(e.dtype)
        scale = torch.where(q > 0, q, flat.amax(1))
        e = torch.minimum(e, scale.view(-1, 1, 1, 1))
    safe = scale.clamp_min(torch.finfo(e.dtype).tiny).view(-1, 1, 1, 1)
    return torch.where(scale.view(-1, 1, 1, 1) > 0, e / safe, torch.zeros_like(e))


@metric("fidelity", higher_is_better=False, category="faithfulness", kind="model")
@renamed_options(targets="target")
def fidelity(
    model: nn.Module,
    inputs: torch.Tensor,
    attributions: torch.Tensor,
    target: TargetLike = None,
    *,
    normalise: str = "dance",
    eps: float = 1e-12,
    batch_size: int | None = DEFAULT_BATCH_SIZE,
) -> torch.Tensor:
    """DANCE's fidelity SF (Dabkowski & Gal 2017): ``−log(F^c((E − mean E)∘x) / F^c(x))``.

    F^c is the softmax probability of the target. E is the map after ``normalise``
    (:func:`fidelity_maps`; default ``"dance"``: |E|, max over channels, clipped at its 95th
    percentile and scaled to [0, 1], DANCE's post-processing), so SF(αE) = SF(E) for every
    α > 0; ``normalise="none"`` keeps wave 1's raw, scale-dependent maps. A one-channel map
    is broadcast over the channels; ``mean E`` is the per-sample mean of E. A constant map
    (an all-zero map included) has E − mean E = 0 and scores the blank-image level
    log F^c(x) − log F^c(0). Both probabilities are clamped to ``≥ eps`` (a numerical
    stabiliser of the log) before the log. Lower is better.
    """
    check_choice("normalise", normalise, FIDELITY_NORMALISE)
    with guarded_call(model, inputs, target) as (x, tgt):
        a = check_maps(x, attributions, batch_size)
        e = fidelity_maps(a, normalise)
        e = e - e.mean(dim=(1, 2, 3), keepdim=True)
        masked = e * x
        n = x.shape[0]
        tgt = resolve_target(model, x, tgt, batch_size)

        def build(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            rows = rows.to(x.device)
            samples, plain = rows % n, (rows < n)[:, None, None, None]
            return torch.where(plain, x[samples], masked[samples]), samples

        p = forward_scores(model, 2 * n, build, tgt, "probability", batch_size, x.device)
    log_p = p.clamp_min(eps).log()
    return log_p[:n] - log_p[n:]


@metric("faithfulness_correlation", higher_is_better=True, category="faithfulness", kind="model")
@renamed_options(targets="target", n_runs="n_samples")
def faithfulness_correlation(
    model: nn.Module,
    inputs: torch.Tensor,
    attributions: torch.Tensor,
    target: TargetLike = None,
    *,
    n_samples: int = 100,
    subset_size: int = 224,
    baseline: BaselineLike = 0.0,
    score: str = "logit",
    reduce: str = "sum",
    seed: SeedLike = 0,
    subsets: torch.Tensor | None = None,
    batch_size: int | None = DEFAULT_BATCH_SIZE,
) -> torch.Tensor:
    """Faithfulness correlation (Bhatt et al., IJCAI 2020): ``corr_S(Σ_{i∈S} a_i, f(x) − f(x_S))``.

    Over ``n_samples`` random pixel subsets S of ``subset_size`` (seeded per sample; or given
    explicitly as ``subsets``, N×runs×size pixel indices), x_S replaces S by ``baseline``;
    Pearson correlation per sample (NaN when either side has zero variance). Higher is better.
    """
    check_choice("score", score, SCORES)
    with guarded_call(model, inputs, target) as (x, tgt):
        a = check_maps(x, attributions, batch_size)
        n, _, h, w = x.shape
        maps = as_maps(a, reduce).flatten(1)
        idx = _subsets(n, h * w, n_samples, subset_size, seed, x.device, subsets)
        runs = idx.shape[1]
        removed = torch.zeros(n, runs, h * w, dtype=torch.bool, device=x.device)
        removed.scatter_(2, idx, True)
        base = make_substrate(x, baseline)
        tgt = resolve_target(model, x, tgt, batch_size)

        def build(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            rows = rows.to(x.device)
            samples, r = rows // runs, rows % runs
            mask = removed[samples, r].view(-1, 1, h, w)
            return torch.where(mask, base[samples], x[samples]), samples

        f_x = forward_scores(model, n, lambda r: (x[r], r), tgt, score, batch_size, x.device)
        f_s = forward_scores(model, n * runs, build, tgt, score, batch_size,
                             x.device).view(n, runs)
    sums = torch.gather(maps[:, None, :].expand(n, runs, h * w), 2, idx).sum(2)
    return _pearson(sums, f_x[:, None] - f_s)


def _subsets(
    n: int, n_pixels: int, n_samples: int, size: int, seed: SeedLike, device: torch.device,
    subsets: torch.Tensor | None,
) -> torch.Tensor:
    """N×runs×size pixel indices: given (validated) or drawn without replacement, per sample."""
    if subsets is not None:
        idx = torch.as_tensor(subsets, device=device).long()
        if idx.dim() != 3 or idx.shape[0] != n or idx.numel() == 0:
            raise ValueError(f"subsets must be N×runs×size = {n}×R×S, got {tuple(idx.shape)}")
        if bool(((idx < 0) | (idx >= n_pixels)).any()):
            raise ValueError(f"subset indices must lie in 0..{n_pixels - 1}")
        return idx
    if n_samples < 2 or not 1 <= size <= n_pixels:
        raise ValueError(f"need n_samples >= 2 and 1 <= subset_size <= {n_pixels} (H·W), got "
                         f"n_samples={n_samples}, subset_size={size}")
    s0 = base_seed(seed)
    g = torch.Generator(device=device)
    draws = []
    for i in range(n):  # one generator per sample: draws do not depend on the batch
        g.manual_seed(row_seed(s0, *sample_key(i)))
        keys = torch.rand(n_samples, n_pixels, generator=g, device=device)
        draws.append(keys.argsort(dim=1)[:, :size])
    return torch.stack(draws)


def _pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise Pearson correlation of two N×R tensors (float64 accumulation)."""
    a64, b64 = a.double(), b.double()
    a64 = a64 - a64.mean(1, keepdim=True)
    b64 = b64 - b64.mean(1, keepdim=True)
    denom = torch.sqrt((a64**2).sum(1) * (b64**2).sum(1))
    corr = (a64 * b64).sum(1) / denom
    return torch.where(denom > 0, corr, torch.full_like(corr, math.nan)).to(a.dtype)
