"""Localisation metrics: does the attribution fall on a ground-truth region?

All four metrics take ``attributions`` (N×C×H×W, N×1×H×W or N×H×W) and binary ``masks``
(N×H×W or N×1×H×W; bool or 0/1 values; per-cell N×K×H×W for the grid pointing game) and
return one score per sample. Channels are reduced to one map per sample by ``reduce``
(:func:`~faithmap.metrics.base.as_maps`; sum over channels by default).

Degenerate maps (issue 15): a *constant* map (an all-zero map included) points nowhere. It
is never a pointing-game hit (score 0), it has no ranking for PxAP (score 0), and its
positive mass share (energy / grid pointing game) is the mask's area fraction, the chance
level, or 0 when it has no positive mass. :func:`~faithmap.metrics.base.constant_maps` is the
per-sample flag. The outcomes of every metric on such maps are in ``metrics/sanity.py``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core.errors import InvalidInputError
from .base import as_maps, constant_maps, metric

__all__ = ["energy_pointing_game", "grid_pointing_game", "pointing_game", "pxap"]


def check_masks(masks: object, maps: torch.Tensor, *, allow_cells: bool = False) -> torch.Tensor:
    """Boolean N×H×W masks (or N×K×H×W with ``allow_cells``) matching N×H×W ``maps``."""
    if not isinstance(masks, torch.Tensor):
        raise InvalidInputError(f"masks must be a tensor, got {type(masks).__name__}")
    m = masks.detach()
    if m.dim() == 3:
        m = m[:, None]
    if m.dim() != 4 or (m.shape[1] != 1 and not allow_cells):
        raise InvalidInputError(
            f"masks must be N×H×W or N×1×H×W{' (or N×K×H×W)' if allow_cells else ''}, "
            f"got {tuple(masks.shape)}"
        )
    if m.shape[0] != maps.shape[0] or m.shape[-2:] != maps.shape[-2:]:
        raise InvalidInputError(
            f"masks of shape {tuple(masks.shape)} do not match attribution maps "
            f"{tuple(maps.shape)}"
        )
    if m.dtype != torch.bool:
        if not bool(((m == 0) | (m == 1)).all()):
            raise InvalidInputError("masks must be boolean or hold only the values 0 and 1")
        m = m == 1
    m = m.to(maps.device)
    empty = ~m.flatten(2).any(2)
    if bool(empty.any()):
        bad = torch.nonzero(empty.any(1)).flatten().tolist()
        raise InvalidInputError(f"masks are empty (no True pixel) for sample(s) {bad[:10]}")
    return m if allow_cells else m[:, 0]


def _disk(radius: int, device: torch.device) -> torch.Tensor:
    r = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    return ((r[:, None] ** 2 + r[None, :] ** 2) <= radius**2).float()[None, None]


TIES = ("all", "any")


@metric("pointing_game", higher_is_better=True, category="localisation", kind="mask")
def pointing_game(
    attributions: torch.Tensor,
    masks: torch.Tensor,
    *,
    tolerance: int = 0,
    ties: str = "all",
    reduce: str = "sum",
) -> torch.Tensor:
    """Pointing game (Zhang et al., ECCV 2016 / IJCV 2018): 1 if the map's maximum hits the mask.

    hit = 1[a is not constant and ∀ p ∈ argmax_p a_p : dist(p, M) ≤ tolerance]
    (``ties="all"``, default: the map must point unambiguously into the mask), or ∃ p
    (``ties="any"``, Quantus' rule: a tie counts as a hit when any maximal pixel hits).
    A constant map (an all-zero map included) has no maximum and is a miss under both rules.
    ``tolerance`` is a radius in pixels (Zhang et al.: 15); the mask is dilated by a disk of
    that radius. Default 0 (Quantus' rule).
    """
    maps = as_maps(attributions, reduce)
    m = check_masks(masks, maps)
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 0:
        raise ValueError(f"tolerance must be a non-negative int (pixels), got {tolerance!r}")
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    if tolerance > 0:
        grown = F.conv2d(m[:, None].float(), _disk(tolerance, m.device), padding=tolerance)
        m = grown[:, 0] > 0.5
    flat, inside = maps.flatten(1), m.flatten(1)
    peak = flat == flat.amax(1, keepdim=True)
    hit = (peak & inside).any(1) if ties == "any" else ~(peak & ~inside).any(1)
    return (hit & ~constant_maps(maps)).to(maps.dtype)


@metric("energy_pointing_game", higher_is_better=True, category="localisation", kind="mask")
def energy_pointing_game(
    attributions: torch.Tensor, masks: torch.Tensor, *, reduce: str = "sum"
) -> torch.Tensor:
    """Energy pointing game (Wang et al., CVPRW 2020, Score-CAM) = relevance mass accuracy
    (Arras et al., Information Fusion 2022).

    score = Σ_{p∈M} max(a_p, 0) / Σ_p max(a_p, 0), on the channel-reduced map a
    (``reduce="sum"``: the positive part is taken *after* summing channels). A map with no
    positive attribution (an all-zero map included) scores 0; a positive constant map scores
    the mask's area fraction |M|/HW, the chance level. Quantus' RelevanceMassAccuracy uses
    raw values (Σ_M a / Σ a); the two agree for non-negative maps.
    """
    maps = as_maps(attributions, reduce)
    m = check_masks(masks, maps)
    return _mass_share(maps, m)


def _mass_share(maps: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    pos = maps.clamp_min(0).flatten(1)
    total = pos.sum(1)
    inside = (pos * m.flatten(1)).sum(1)
    return torch.where(total > 0, inside / total.clamp_min(torch.finfo(maps.dtype).tiny), 0.0)


@metric("grid_pointing_game", higher_is_better=True, category="localisation", kind="mask")
def grid_pointing_game(
    attributions: torch.Tensor,
    masks: torch.Tensor,
    *,
    cell: torch.Tensor | None = None,
    reduce: str = "sum",
) -> torch.Tensor:
    """Grid pointing game (Böhle et al., CVPR 2022; Rao et al., ECCV 2022).

    On an n×n grid of images, explain the class of one cell c:
    score = Σ_{p∈cell c} max(a_p, 0) / Σ_p max(a_p, 0)  (0 if there is no positive mass; a
    positive constant map scores the cell's area fraction, 1/4 on a 2×2 grid: chance).
    ``masks``: the N×1×H×W (or N×H×W) mask of the explained cell, or N×K×H×W masks of all
    cells together with ``cell`` (LongTensor N: index of the explained cell).
    """
    maps = as_maps(attributions, reduce)
    m = check_masks(masks, maps, allow_cells=True)
    if m.shape[1] > 1 or cell is not None:
        if cell is None:
            raise InvalidInputError(
                f"masks have {m.shape[1]} cells per sample: pass cell= (LongTensor N) to say "
                "which cell is explained"
            )
        c = torch.as_tensor(cell).to(m.device).long().flatten()
        if c.numel() != m.shape[0] or bool((c < 0).any() | (c >= m.shape[1]).any()):
            raise InvalidInputError(
                f"cell must hold {m.shape[0]} indices in 0..{m.shape[1] - 1}, got {cell!r}"
            )
        m = m[torch.arange(m.shape[0], device=m.device), c][:, None]
    return _mass_share(maps, m[:, 0])


@metric("pxap", higher_is_better=True, category="localisation", kind="mask")
def pxap(attributions: torch.Tensor, masks: torch.Tensor, *, reduce: str = "sum") -> torch.Tensor:
    """Pixel-wise average precision (Choe et al., CVPR 2020, WSOL evaluation; used by COMET).

    The min-max normalised map scores each pixel as "in the mask";
    AP = Σ_t (R_t − R_{t−1}) P_t over the distinct score thresholds t (ties form one
    threshold, as ``sklearn.metrics.average_precision_score``). Computed per sample
    (Choe et al. pool all pixels of a data set; average these scores for a per-image mean).
    A constant map (an all-zero map included) has no min-max normalisation and no ranking:
    it scores 0, not the area fraction that sklearn's one-threshold rule would give it.
    """
    maps = as_maps(attributions, reduce)
    m = check_masks(masks, maps)
    flat = maps.flatten(1)
    lo, hi = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
    scores = (flat - lo) / (hi - lo).clamp_min(torch.finfo(flat.dtype).tiny)
    order = scores.argsort(dim=1, descending=True, stable=True)
    s = scores.gather(1, order)
    labels = m.flatten(1).gather(1, order).to(flat.dtype)
    tps = labels.cumsum(1)
    rank = torch.arange(1, s.shape[1] + 1, device=s.device, dtype=s.dtype)
    end = torch.ones_like(labels, dtype=torch.bool)
    end[:, :-1] = s[:, 1:] != s[:, :-1]  # last position of each tie group
    at_end = torch.where(end, tps, torch.zeros_like(tps)).cummax(1).values
    prev = torch.cat([torch.zeros_like(tps[:, :1]), at_end[:, :-1]], 1)
    gain = torch.where(end, (tps - prev) * tps / rank, torch.zeros_like(tps))
    ap = gain.sum(1) / tps[:, -1]
    return torch.where(constant_maps(maps), torch.zeros_like(ap), ap)

