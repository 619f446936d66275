"""Heatmaps and overlays of attributions on images (numpy only at this edge)."""

from __future__ import annotations

import functools

import numpy as np
import torch


def to_map(attr: torch.Tensor) -> torch.Tensor:
    """Reduce a C×H×W (or H×W) attribution to H×W by summing over channels."""
    attr = attr.detach().float().cpu()
    return attr.sum(0) if attr.dim() == 3 else attr


FLAG_RGB = (0.2, 0.8, 0.2)  # NaN/Inf pixels (green: neither colour map uses it)
SIGNED, NON_NEGATIVE, NON_POSITIVE, EMPTY = "signed", "non-negative", "non-positive", "empty"
CONVENTION_TEXT = {
    SIGNED: "signed: red = positive, blue = negative (bwr, symmetric)",
    NON_NEGATIVE: "non-negative (absolute values or positive part; inferno)",
    NON_POSITIVE: "non-positive: blue = negative (bwr)",
    EMPTY: "all zero",
}


def sign_convention(attr: torch.Tensor) -> str:
    """How a map (or a stack of maps) reads: :data:`SIGNED` (both signs), :data:`NON_NEGATIVE`
    (≥ 0, e.g. absolute gradients), :data:`NON_POSITIVE` or :data:`EMPTY` (all zero)."""
    m = attr.detach().float()
    neg, pos = bool((m < 0).any()), bool((m > 0).any())
    if neg and pos:
        return SIGNED
    if neg:
        return NON_POSITIVE
    return NON_NEGATIVE if pos else EMPTY


def heatmap(attr: torch.Tensor, percentile: float = 99.0,
            signed: bool | None = None) -> np.ndarray:
    """An H×W×3 float RGB heatmap in [0, 1].

    Non-negative maps use ``inferno`` over [0, p] with p the map's ``percentile`` of |a|;
    signed maps use the symmetric diverging ``bwr`` scale over [−p, p] (blue negative, red
    positive); NaN/Inf pixels are :data:`FLAG_RGB` (green). ``signed`` forces the scale
    (e.g. one scale for every map of a method, so a column of a figure reads the same way);
    ``None`` picks it from the map.
    :func:`colorbar` draws the matching colour bar.
    """
    from matplotlib import colormaps

    m = to_map(attr)
    finite = torch.isfinite(m)
    if signed is None:
        signed = bool((m < 0).any())
    mags = m.abs()[finite]
    scale = (float(torch.quantile(mags, percentile / 100.0)) if mags.numel() else 0.0) or 1.0
    m = m.nan_to_num(0.0, 0.0, 0.0)
    if signed:
        values, cmap = (m / scale).clamp(-1, 1) * 0.5 + 0.5, colormaps["bwr"]
    else:
        values, cmap = (m / scale).clamp(0, 1), colormaps["inferno"]
    rgb = cmap(values.numpy())[..., :3]
    rgb[~finite.numpy()] = FLAG_RGB  # NaN/Inf pixels: flagged, never drawn as a value
    return rgb


def colorbar(fig, ax, signed: bool, percentile: float = 99.0, label: str | None = None,
             orientation: str = "horizontal"):
    """The colour bar of :func:`heatmap`'s scale beside ``ax`` (an axes or a list of axes
    that share the room it takes) of ``fig`` (matplotlib): ``bwr``
    from −1 to 1 (blue negative, red positive) for signed maps, ``inferno`` from 0 to 1
    otherwise, in units of the map's ``percentile`` of |a|. Returns the colour bar."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    low = -1.0 if signed else 0.0
    mappable = ScalarMappable(Normalize(low, 1.0), colormaps["bwr" if signed else "inferno"])
    bar = fig.colorbar(mappable, ax=ax, orientation=orientation, fraction=0.04, pad=0.02)
    bar.set_ticks([-1.0, 0.0, 1.0] if signed else [0.0, 1.0])
    bar.set_ticklabels(["−", "0", "+"] if signed else ["0", "+"])
    bar.set_label(label if label is not None else
                  f"a / p{percentile:g}(|a|), " + ("signed" if signed else "≥ 0"), fontsize=6)
    bar.ax.tick_params(labelsize=6)
    return bar


def overlay(image: torch.Tensor, attr: torch.Tensor, alpha: float = 0.55) -> np.ndarray:
    """Image (C×H×W in [0, 1]) blended with the attribution heatmap, as H×W×3 uint8."""
    img = image.detach().float().cpu().clamp(0, 1)
    rgb = img.expand(3, *img.shape[1:]) if img.shape[0] == 1 else img[:3]
    base = rgb.permute(1, 2, 0).numpy()
    blended = (1 - alpha) * base + alpha * heatmap(attr)
    return (np.clip(blended, 0, 1) * 255).round().astype(np.uint8)


def side_by_side(image: torch.Tensor, attr: torch.Tensor, legend: bool = False) -> np.ndarray:
    """The image, the heatmap and the overlay next to each other (H×3W×3 uint8).

    ``legend=True`` adds a strip under the panels (:func:`legend_strip`: the colour bar and
    the sign convention of the map), at least 360 px wide (narrower panels are padded white
    on the right)."""
    img = image.detach().float().cpu().clamp(0, 1)
    rgb = img.expand(3, *img.shape[1:]) if img.shape[0] == 1 else img[:3]
    base = (rgb.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    heat = (heatmap(attr) * 255).round().astype(np.uint8)
    panels = np.concatenate([base, heat, overlay(image, attr)], axis=1)
    if not legend:
        return panels
    strip = legend_strip(max(panels.shape[1], 360), sign_convention(to_map(attr)))
    pad = np.full((panels.shape[0], strip.shape[1] - panels.shape[1], 3), 255, np.uint8)
    return np.concatenate([np.concatenate([panels, pad], axis=1), strip], axis=0)


def legend_strip(width: int, convention: str, percentile: float = 99.0) -> np.ndarray:
    """A 44 px × ``width`` uint8 RGB strip: :func:`heatmap`'s colour bar for a map of sign
    ``convention`` (:func:`sign_convention`; signed → ``bwr`` from −p to +p, else
    ``inferno`` from 0 to p, p = the map's ``percentile`` of |a|) and its text (drawn once
    per width and convention, then reused: a folder of photos pays for it once)."""
    return _legend_strip(int(width), convention, float(percentile)).copy()


@functools.lru_cache(maxsize=16)
def _legend_strip(width: int, convention: str, percentile: float) -> np.ndarray:
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    signed = convention not in (NON_NEGATIVE, EMPTY)
    fig = Figure(figsize=(width / 100, 0.44), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0.03, 0.62, 0.94, 0.22))
    bar = fig.colorbar(ScalarMappable(Normalize(-1.0 if signed else 0.0, 1.0),
                                      colormaps["bwr" if signed else "inferno"]),
                       cax=ax, orientation="horizontal")
    ticks = [-1.0, 0.0, 1.0] if signed else [0.0, 1.0]
    bar.set_ticks(ticks)
    bar.set_ticklabels([{-1.0: f"−p{percentile:g}", 0.0: "0", 1.0: f"+p{percentile:g}"}[t]
                        for t in ticks])
    bar.ax.tick_params(labelsize=6, pad=1, length=2)
    fig.text(0.5, 0.02, CONVENTION_TEXT[convention] + f"; p = p{percentile:g}(|a|)",
             ha="center", va="bottom", fontsize=6)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
