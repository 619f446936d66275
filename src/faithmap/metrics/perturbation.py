"""Shared machinery for perturbation metrics: orderings, substrates, scored curves, imputation.

A perturbation curve is a "multiplied batch" of ``N × T`` rows (samples × steps). Row
``r`` is sample ``r // T`` at step ``r % T``; its image is built on the fly inside the
chunk, so memory is bounded by ``batch_size`` and no Python loop runs over steps or pixels.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..core.batching import check_batch_size, map_rows
from ..core.seeding import SeedLike, base_seed, rand_rows
from ..core.targets import Target
from ..core.validation import check_positive_int
from .base import as_maps, check_attributions
from .curve_store import active_store

BASELINES = ("zeros", "blur", "mean")  # substrate images (RISE); or a number
SCORES = ("probability", "logit")
ORDERS = ("morf", "lerf")
TIES = ("random", "index")  # how pixels of equal attribution are ordered
_TIE_TAG = 0x7469657321  # keeps the tie draws apart from a metric's other draws
BLUR_SIZE, BLUR_SIGMA = 11, 5.0  # RISE's gkern(klen=11, nsig=5)


def check_maps(
    x: torch.Tensor, attributions: torch.Tensor, batch_size: int | None
) -> torch.Tensor:
    """Detached attributions matching the prepared inputs ``x`` (from
    :func:`~faithmap.core.prelude.guarded_call`), on x's device; validates ``batch_size``."""
    a = check_attributions(attributions, x)
    check_batch_size(batch_size)
    return a.to(x.device)


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value  # type: ignore[return-value]


def resolve_target(
    model: nn.Module, x: torch.Tensor, target: Target, batch_size: int | None
) -> Target:
    """``target`` resolved for ``x``: a ``None`` target becomes the predicted class (chunked)."""
    if target.needs_prediction:
        def predict(sel: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return map_rows(len(sel), batch_size,
                                lambda r: model(x[sel[r.to(sel.device)]]).detach())

        store = active_store()  # one prediction per sample inside shared_curves()
        sel = torch.arange(x.shape[0], device=x.device)
        target.resolve(predict(sel) if store is None
                       else store.rows(("predicted", model), (x,), predict, counted=False))
    return target


def score_output(
    output: torch.Tensor, target: Target, rows: torch.Tensor | None, score: str
) -> torch.Tensor:
    """The target score per output row: softmax probability (over dim 1) or raw logit.

    A callable target receives the probabilities when ``score="probability"``.
    """
    if score == "probability":
        output = output.softmax(dim=1)
    return target.scores(output, rows)


def forward_scores(
    model: nn.Module,
    total: int,
    build: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    target: Target,
    score: str,
    batch_size: int | None,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Scores of ``total`` rows; ``build(rows) -> (images, sample_of_rows)`` per chunk of at
    most ``batch_size`` rows. ``rows`` are made on ``device`` (no host copy per chunk) and
    the scores stay there."""
    dev = torch.device("cpu") if device is None else device

    def build_range(start: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        return build(torch.arange(start, end, device=dev))

    return score_chunks(model, total, build_range, target, score, batch_size)


def score_chunks(
    model: nn.Module,
    total: int,
    build: Callable[[int, int], tuple[torch.Tensor, torch.Tensor]],
    target: Target,
    score: str,
    batch_size: int | None,
) -> torch.Tensor:
    """Target scores of rows ``0..total-1``, ``build(start, end) -> (images, samples)`` per
    chunk of at most ``batch_size`` rows, written into one preallocated tensor on the
    model's output device. The target is validated on the first chunk and its indices are
    moved to the device once; later chunks only gather (no host copy, no sync)."""
    check_batch_size(batch_size)
    if total < 1:
        raise ValueError("nothing to compute: total must be >= 1")
    size = total if batch_size is None else min(batch_size, total)
    out: torch.Tensor | None = None
    idx, same = None, True
    for start in range(0, total, size):
        end = min(start + size, total)
        images, samples = build(start, end)
        with torch.no_grad():
            output = model(images)
            if idx is None or target.fn is not None:
                values = score_output(output, target, samples, score)  # validates the target
                if target.fn is None and target.indices is not None:
                    idx = target.indices.to(output.device)
                    same = idx.device == samples.device
            else:
                if score == "probability":
                    output = output.softmax(dim=1)
                rows_of = idx[samples] if same else idx[samples.to(idx.device)]
                values = output.gather(1, rows_of[:, None]).squeeze(1)
        values = values.detach()
        if out is None:
            out = values.new_empty(total)
        out[start:end] = values
    assert out is not None
    return out


def pixel_ranks(
    maps: torch.Tensor, order: str = "morf", tie_keys: torch.Tensor | None = None
) -> torch.Tensor:
    """N×(H·W) position of each pixel in the perturbation order (0 = perturbed first).

    MoRF sorts by decreasing attribution, LeRF by increasing. Ties: without ``tie_keys``
    by the row-major pixel index (lower index first) through a stable sort; with
    ``tie_keys`` (N×(H·W) values, e.g. :func:`tie_keys`) in increasing key order, the same
    for MoRF and LeRF, so a constant map has one order in both.
    """
    check_choice("order", order, ORDERS)
    flat = maps.flatten(1)
    pre = None
    if tie_keys is not None:
        pre = tie_keys.to(flat.device).argsort(dim=1, stable=True)
        flat = flat.gather(1, pre)
    perm = torch.sort(flat, dim=1, descending=order == "morf", stable=True).indices
    if pre is not None:
        perm = pre.gather(1, perm)
    ranks = torch.empty_like(perm)
    positions = torch.arange(flat.shape[1], device=flat.device).expand_as(perm)
    return ranks.scatter_(1, perm, positions)


def tie_keys(
    n: int, n_pixels: int, ties: str, seed: SeedLike, device: torch.device
) -> torch.Tensor | None:
    """Per-sample random tie-breaking keys (``ties="random"``), or ``None`` (``"index"``).

    Drawn on the CPU from ``(seed, sample)`` so they do not depend on the batch, its
    ``batch_size`` or the device. Ordering pixels of equal attribution at random gives a
    constant map (an all-zero map included) a random map's expected score, not the score of
    a raster scan (which ROAD, for one, rewards: ``docs/metrics/sanity.md``).
    """
    check_choice("ties", ties, TIES)
    if ties == "index":
        return None
    keys = [(i, _TIE_TAG) for i in range(n)]  # one generator per sample (core.seeding)
    return rand_rows(base_seed(seed), keys, (n_pixels,), torch.float32,
                     torch.device("cpu")).to(device)


def default_step(n_pixels: int) -> int:
    """``ceil(H·W / 224)`` pixels per step: 224 steps at 224×224, 196 at 28×28."""
    return max(1, math.ceil(n_pixels / 224))


def step_counts(n_pixels: int, step: int, device: torch.device) -> torch.Tensor:
    """Pixels perturbed after each step: ``0, step, 2·step, ..., H·W`` (T+1 values)."""
    check_positive_int("step", step)
    n_steps = math.ceil(n_pixels / step)
    return (torch.arange(n_steps + 1, device=device) * step).clamp_max(n_pixels)


def gaussian_blur(
    x: torch.Tensor, size: int = BLUR_SIZE, sigma: float = BLUR_SIGMA
) -> torch.Tensor:
    """Per-channel Gaussian blur with zero padding, as RISE's substrate (klen 11, σ 5)."""
    t = torch.arange(size, device=x.device, dtype=x.dtype) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :]).expand(x.shape[1], 1, size, size)
    return F.conv2d(x, kernel, padding=size // 2, groups=x.shape[1])


def make_substrate(x: torch.Tensor, baseline: str | float) -> torch.Tensor:
    """The N×C×H×W substrate image that replaces removed pixels, from ``baseline``: zeros,
    blur, per-channel mean, or a value."""
    if isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
        return torch.full_like(x, float(baseline))
    check_choice("baseline", baseline, BASELINES)
    if baseline == "zeros":
        return torch.zeros_like(x)
    if baseline == "mean":
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x)
    return gaussian_blur(x)


def curve_scores(
    model: nn.Module,
    x: torch.Tensor,
    ranks: torch.Tensor,
    step: int,
    substrate: torch.Tensor,
    target: Target,
    *,
    insert: bool,
    score: str,
    batch_size: int | None,
) -> torch.Tensor:
    """N×(T+1) target scores: at point k the ``min(k·step, H·W)`` first-ranked pixels are
    removed (replaced by ``substrate``) or, with ``insert``, are the only original pixels.

    The N·(T+1) perturbed images are built on x's device, chunk by chunk, into one
    preallocated batch of at most ``batch_size`` rows: a chunk's rows are runs of
    consecutive points of one sample; each run is one broadcast comparison of the sample's
    ordering (computed once) with its points, giving 0/1 masks, and ``x·keep + s·drop``
    written in place (exactly x or s per pixel; the zero substrate skips the second term).
    No gather of images, no host copy and no sync happen per step."""
    n, c, h, w = x.shape
    n_points = math.ceil(h * w / step) + 1
    total = n * n_points
    # masks in x's dtype where it holds the point indices exactly, else in float32
    exact = x.dtype in (torch.float32, torch.float64)
    mdt = x.dtype if exact else torch.float32
    # pixel p is perturbed from point `when[p] + 1` on
    when = (ranks // step).to(mdt).view(n, 1, 1, h, w)
    points = torch.arange(n_points, device=x.device, dtype=mdt).view(-1, 1, 1, 1)
    row_sample = torch.arange(n, device=x.device).repeat_interleave(n_points)
    zero = not bool(substrate.any())
    size = total if batch_size is None else min(batch_size, total)
    buffer = torch.empty((size, c, h, w), dtype=x.dtype, device=x.device)
    keep_buf = torch.empty((size, 1, h, w), dtype=mdt, device=x.device)
    drop_buf = None if zero else torch.empty_like(keep_buf)
    # original where already inserted (insertion) or not yet removed (deletion)
    keep_op, drop_op = (torch.lt, torch.ge) if insert else (torch.ge, torch.lt)

    def build(start: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        for sample in range(start // n_points, (end - 1) // n_points + 1):
            lo, hi = max(start, sample * n_points), min(end, (sample + 1) * n_points)
            k = points[lo - sample * n_points:hi - sample * n_points]
            rows = slice(lo - start, hi - start)
            keep = keep_op(when[sample], k, out=keep_buf[rows])
            image = buffer[rows]
            torch.mul(x[sample:sample + 1], keep if exact else keep.to(x.dtype), out=image)
            if drop_buf is not None:
                drop = drop_op(when[sample], k, out=drop_buf[rows])
                image.addcmul_(substrate[sample:sample + 1], drop if exact else drop.to(x.dtype))
        return buffer[:end - start], row_sample[start:end]

    return score_chunks(model, total, build, target, score, batch_size).view(n, n_points)


def auc(fractions: torch.Tensor, curves: torch.Tensor) -> torch.Tensor:
    """Trapezoid area under each curve over the x-axis ``fractions`` (in [0, 1])."""
    return torch.trapezoid(curves, fractions.to(curves.dtype), dim=1)


def ranked_curve(
    model: nn.Module,
    x: torch.Tensor,
    attributions: torch.Tensor,
    target: Target,
    *,
    insert: bool,
    order: str,
    step: int | None,
    baseline: str | float,
    score: str,
    reduce: str,
    batch_size: int | None,
    ties: str = "random",
    seed: SeedLike = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(fractions[T+1], curves[N, T+1])`` for deletion/insertion/pixel flipping, from the
    prepared inputs ``x`` and target (:func:`~faithmap.core.prelude.guarded_call`); equal
    attributions ordered by ``ties`` (:func:`tie_keys`)."""
    a = check_maps(x, attributions, batch_size)
    check_choice("score", score, SCORES)
    n_pixels = x.shape[2] * x.shape[3]
    step = default_step(n_pixels) if step is None else step
    counts = step_counts(n_pixels, step, x.device)  # also validates `step`
    keys = tie_keys(x.shape[0], n_pixels, ties, seed, x.device)
    maps = as_maps(a, reduce)
    store = active_store()
    if store is None:
        ranks = pixel_ranks(maps, order, keys)
    else:  # one ordering per map, tie order and direction
        ranks = store.rows(("ranks", order, keys is None),
                           (maps,) if keys is None else (maps, keys),
                           lambda sel: pixel_ranks(maps[sel], order,
                                                   None if keys is None else keys[sel]),
                           counted=False)
    target = resolve_target(model, x, target, batch_size)
    if store is None:
        curves = curve_scores(model, x, ranks, step, make_substrate(x, baseline), target,
                              insert=insert, score=score, batch_size=batch_size)
    else:  # one curve per sample and setting, reused by every metric (curve_store)
        key = ("curve", model, insert, step, baseline_key(baseline), score, target.fn)
        tensors = (x, ranks) if target.fn is not None else (x, ranks, target.indices)
        curves = store.rows(key, tensors, lambda sel: curve_scores(
            model, x[sel], ranks[sel], step, make_substrate(x, baseline)[sel],
            subset_target(target, sel), insert=insert, score=score, batch_size=batch_size))
    return counts.to(x.dtype) / n_pixels, curves


def baseline_key(baseline: str | float) -> str | float:
    """One key per substrate: ``"zeros"`` and ``0``/``0.0`` are the same image."""
    if isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
        return float(baseline)
    return 0.0 if baseline == "zeros" else baseline


def subset_target(target: Target, rows: torch.Tensor) -> Target:
    """The (resolved) target of ``rows`` of the batch."""
    if target.fn is not None:
        return Target(target.fn, len(rows))
    assert target.indices is not None
    return Target(target.indices[rows.cpu()], len(rows))


# ---------------------------------------------------------------------------------------------
# ROAD's noisy linear imputation (Rong et al. 2022)

NEIGHBOUR_WEIGHTS = ((1 / 12, 1 / 6, 1 / 12), (1 / 6, 0.0, 1 / 6), (1 / 12, 1 / 6, 1 / 12))


def _neighbour_sum(v: torch.Tensor) -> torch.Tensor:
    """Σ_q w_pq v_q over the 8-neighbourhood (ROAD weights), zero outside the image."""
    r, c, h, w = v.shape
    kernel = torch.tensor(NEIGHBOUR_WEIGHTS, dtype=v.dtype, device=v.device).view(1, 1, 3, 3)
    return F.conv2d(v.reshape(r * c, 1, h, w), kernel, padding=1).view(r, c, h, w)


def linear_impute(
    x: torch.Tensor, removed: torch.Tensor, tol: float = 1e-6, max_iter: int | None = None
) -> torch.Tensor:
    """Replace removed pixels by the weighted mean of their neighbours, solved jointly.

    For every removed pixel p: ``x_p · Σ_q w_pq = Σ_q w_pq x_q`` (q in the image's
    8-neighbourhood, w = 1/6 direct, 1/12 diagonal). Known pixels are constants, so this
    is the graph-Laplacian system restricted to removed pixels — symmetric positive definite
    while at least one pixel is kept — solved by conjugate gradients for every (row,
    channel) at once; a system stops updating when its residual is below ``tol`` × ‖b‖.
    ``x``: R×C×H×W, ``removed``: R×1×H×W bool.
    """
    mask = removed.to(x.dtype).expand_as(x)
    degree = _neighbour_sum(torch.ones_like(x[:1, :1]))

    def apply(v: torch.Tensor) -> torch.Tensor:
        return mask * (degree * v - _neighbour_sum(mask * v))

    def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a * b).sum(dim=(2, 3), keepdim=True)

    b = mask * _neighbour_sum((1 - mask) * x)
    v = torch.zeros_like(x)
    res, direction = b.clone(), b.clone()
    rr = dot(res, res)
    stop = (tol**2) * rr.clamp_min(torch.finfo(x.dtype).tiny)
    for it in range(max_iter or 10 * (x.shape[2] + x.shape[3])):
        active = rr > stop
        # converged rows are frozen (alpha = beta = 0), so polling the host every 8 steps
        # gives the same result with 8× fewer device→host syncs on a GPU
        if it % 8 == 0 and not bool(active.any()):
            break
        ad = apply(direction)
        alpha = torch.where(active, rr / dot(direction, ad).clamp_min(torch.finfo(x.dtype).tiny),
                            torch.zeros_like(rr))
        v = v + alpha * direction
        res = res - alpha * ad
        rr_new = dot(res, res)
        beta = torch.where(active, rr_new / rr.clamp_min(torch.finfo(x.dtype).tiny),
                           torch.zeros_like(rr))
        direction = torch.where(active, res + beta * direction, direction)
        rr = torch.where(active, rr_new, rr)
    return torch.where(removed.expand_as(x), v, x)
