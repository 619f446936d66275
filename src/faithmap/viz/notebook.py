"""Notebook plots of attributions: :func:`show` (one method) and :func:`compare` (methods ×
images), on NCHW tensors of any device or numpy arrays, returning a matplotlib ``Figure``.

The idioms of Captum's ``visualize_image_attr`` and Zennit's ``imgify`` without the manual
transpose [ours]: the channels of a map are summed, then ``sign`` picks what is shown —
``"all"`` (signed, symmetric limits ``[−p, p]`` on a diverging map: red = positive, blue =
negative), ``"positive"`` (the positive part, red), ``"negative"`` (the magnitude of the
negative part, blue) or ``"absolute"`` (|a|, ``inferno``) — with ``p`` the ``percentile`` of
the shown magnitudes (outliers above it saturate). Figures are built on
``matplotlib.figure.Figure`` with the Agg canvas, not pyplot: safe without a display, nothing
left open, the global ``rcParams`` untouched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .heatmap import FLAG_RGB as FLAG_COLOUR

SIGNS = ("all", "positive", "negative", "absolute")
SCALES = ("sample", "method")
DEFAULT_CMAPS = {"all": "bwr", "positive": "Reds", "negative": "Blues", "absolute": "inferno"}
SIGN_TEXT = {"all": "red = positive, blue = negative",
             "positive": "positive part (negative set to 0)",
             "negative": "magnitude of the negative part (positive set to 0)",
             "absolute": "absolute value |a|"}


def _array(value: Any, what: str) -> torch.Tensor:
    """A detached float32 CPU tensor from a tensor (any device, layout, grad) or array."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor or numpy array, got "
                        f"{type(value).__name__}")
    if value.is_complex() or value.dtype == torch.bool:
        raise TypeError(f"{what} must be real numbers, got dtype {value.dtype}")
    return value.detach().to("cpu", torch.float32).contiguous()


def _batch(value: Any, what: str, allow_hwc: bool = False) -> torch.Tensor:
    """N×C×H×W from N×C×H×W, C×H×W, H×W (or, for images given as numpy, H×W×C)."""
    numpy_hwc = (allow_hwc and isinstance(value, np.ndarray) and value.ndim == 3
                 and value.shape[-1] in (1, 3) and value.shape[0] not in (1, 3))
    t = _array(value, what)
    if numpy_hwc:
        t = t.permute(2, 0, 1)
    if t.dim() == 2:
        t = t[None, None]
    elif t.dim() == 3:
        t = t[None]
    if t.dim() != 4 or t.shape[0] == 0 or min(t.shape[-2:]) == 0:
        raise ValueError(f"{what} must be N×C×H×W, C×H×W or H×W with N, H, W ≥ 1, got shape "
                         f"{tuple(value.shape)}")
    return t


def _image(x: Any, mean: Sequence[float] | None, std: Sequence[float] | None) -> torch.Tensor:
    """Images as N×3×H×W in [0, 1]: de-normalised (``x·std + mean``) when given; otherwise
    values outside [0, 1] (e.g. 0–255) are rescaled per image to [0, 1]."""
    img = _batch(x, "x", allow_hwc=True)
    c = img.shape[1]
    if c not in (1, 3):
        raise ValueError(f"x must have 1 (grey) or 3 (RGB) channels, got {c} "
                         f"(shape {tuple(img.shape)})")
    for name, v in (("std", std), ("mean", mean)):  # x·std + mean
        if v is not None:
            v = torch.as_tensor(v, dtype=torch.float32).flatten()
            if v.numel() not in (1, c):
                raise ValueError(f"{name} must have 1 or {c} values (one per channel of x), "
                                 f"got {v.numel()}")
            v = v.view(1, -1, 1, 1)
            img = img * v if name == "std" else img + v
    if mean is None and std is None:
        flat = img.flatten(1)
        lo, hi = flat.amin(1), flat.amax(1)
        out = (lo < -1e-3) | (hi > 1 + 1e-3)
        if bool(out.any()):
            span = (hi - lo).clamp_min(1e-12).view(-1, 1, 1, 1)
            rescaled = (img - lo.view(-1, 1, 1, 1)) / span
            img = torch.where(out.view(-1, 1, 1, 1), rescaled, img)
    img = img.clamp(0, 1)
    return img.expand(-1, 3, -1, -1) if c == 1 else img


def _signed_part(m: torch.Tensor, sign: str) -> torch.Tensor:
    if sign == "positive":
        return m.clamp_min(0)
    if sign == "negative":
        return (-m).clamp_min(0)
    return m.abs() if sign == "absolute" else m


def _limit(values: torch.Tensor, percentile: float | None) -> float:
    """The ``percentile`` of the finite magnitudes (their maximum for ``None``); 0 if none."""
    mags = values[torch.isfinite(values)].abs()
    if mags.numel() == 0:
        return 0.0
    if percentile is None:
        return float(mags.max())
    return float(np.percentile(mags.numpy(), percentile))  # any size (torch: ≤ 2²⁴)


def _check(sign: str, scale: str, percentile: float | None, alpha: float) -> None:
    if sign not in SIGNS:
        raise ValueError(f"sign must be one of {', '.join(SIGNS)}; got {sign!r}")
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}; got {scale!r}")
    if percentile is not None and not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100] or None, got {percentile}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")


def compare(x: Any, maps: Mapping[str, Any], *, sign: str = "all", cmap: str | None = None,
            overlay: bool = False, alpha: float = 0.5, percentile: float | None = 99.0,
            scale: str = "sample", mean: Sequence[float] | None = None,
            std: Sequence[float] | None = None, labels: Sequence[str] | None = None,
            title: str | None = None, colorbar: bool = True, size: float = 2.0):
    """A methods × images grid: one row per sample, the image first (when ``x`` is not
    ``None``), then one column per method of ``maps`` (name → attribution).

    ``x``: images N×C×H×W (C = 1 or 3), C×H×W or H×W (tensor on any device, or numpy, also
    H×W×C), de-normalised with ``mean``/``std`` when given. Each map: N×C×H×W (channels
    summed), N×1×H×W, C×H×W or H×W with the images' N, H and W. ``sign``: see the module
    doc; ``cmap`` replaces its default colour map. ``overlay``: draw each map with opacity
    ``alpha`` over the grey image instead of alone. ``percentile``: colour limit ``p`` =
    that percentile of the shown magnitudes (``None``: the maximum). ``scale="sample"``
    takes ``p`` per map (the colour bar in units of ``p``); ``"method"`` one ``p`` per
    column (the colour bar in the maps' units). A cell whose map is all zero says so; NaN/Inf
    pixels are drawn green and the cell says how many (a map that is all NaN is flagged,
    never shown as zero). Returns the ``matplotlib.figure.Figure``.
    """
    from matplotlib import colormaps, rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    _check(sign, scale, percentile, alpha)
    if not isinstance(maps, Mapping) or not maps:
        raise ValueError("maps must be a non-empty dict: method name → attribution")
    images = None if x is None else _image(x, mean, std)
    batches = {str(k): _batch(v, f"maps[{k!r}]").sum(1) for k, v in maps.items()}
    n, hw = (images.shape[0], tuple(images.shape[-2:])) if images is not None else (None, None)
    for name, m in batches.items():
        n = m.shape[0] if n is None else n
        hw = tuple(m.shape[-2:]) if hw is None else hw
        if m.shape[0] != n or tuple(m.shape[-2:]) != hw:
            raise ValueError(f"maps[{name!r}] has {m.shape[0]} map(s) of {tuple(m.shape[-2:])} "
                             f"but the images/maps before it have {n} of {hw}; give one map "
                             "per image at the image's size")
    if labels is not None and len(labels) != n:
        raise ValueError(f"labels has {len(labels)} entries for {n} rows")
    base = colormaps[cmap or DEFAULT_CMAPS[sign]].with_extremes(bad=FLAG_COLOUR)
    cols = len(batches) + (images is not None)
    with rc_context({"font.size": 8, "axes.titlesize": 8}):
        fig = Figure(figsize=(size * cols, size * n + (0.9 if colorbar else 0.4)),
                     layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(n, cols, squeeze=False)
        if images is not None:
            axes[0][0].set_title("image")
            for r in range(n):
                axes[r][0].imshow(images[r].permute(1, 2, 0).numpy(), vmin=0, vmax=1)
        for c, (name, batch) in enumerate(batches.items(), start=int(images is not None)):
            shown = _signed_part(batch, sign)
            column_limit = _limit(shown, percentile)
            for r in range(n):
                ax, values = axes[r][c], shown[r]
                limit = column_limit if scale == "method" else _limit(values, percentile)
                if scale == "sample":
                    values = values / (limit or 1.0)
                    limit = 1.0 if limit else 0.0
                low = -(limit or 1.0) if sign == "all" else 0.0
                norm = Normalize(low, limit or 1.0)
                bad = ~torch.isfinite(values)
                data = np.ma.masked_array(values.numpy(), mask=bad.numpy())
                if overlay and images is not None:  # opacity ∝ alpha · |a| / p over grey
                    rgba = base(norm(data))
                    strength = np.abs(np.nan_to_num(values.numpy())) / (limit or 1.0)
                    rgba[..., 3] = np.where(bad.numpy(), 1.0, alpha * np.clip(strength, 0, 1))
                    ax.imshow(images[r].mean(0).numpy(), cmap="gray", vmin=0, vmax=1)
                    ax.imshow(rgba)
                else:
                    ax.imshow(data, cmap=base, norm=norm)
                note = []
                if int(bad.sum()) == bad.numel():
                    note.append("NaN map")
                elif bool(bad.any()):
                    note.append(f"{int(bad.sum())} NaN/Inf px (green)")
                elif not bool((values != 0).any()):
                    note.append("all 0")
                if note:
                    ax.text(0.5, 0.5, "\n".join(note), transform=ax.transAxes, ha="center",
                            va="center", fontsize=7, bbox={"facecolor": "white", "alpha": 0.85,
                                                           "pad": 1.5, "edgecolor": "none"})
            axes[0][c].set_title(f"{name}\n{sign}")
            if colorbar:
                limit = column_limit if scale == "method" else 1.0
                limit = limit or 1.0
                low = -limit if sign == "all" else 0.0
                bar = fig.colorbar(ScalarMappable(Normalize(low, limit), base),
                                   ax=[axes[r][c] for r in range(n)], orientation="horizontal",
                                   fraction=0.05, pad=0.02, aspect=15)
                ticks = [low, limit] if sign != "all" else [low, 0.0, limit]
                bar.set_ticks(ticks)
                flip = -1.0 if sign == "negative" else 1.0  # shown: −a, labelled: a
                if scale == "sample":
                    p = "max" if percentile is None else f"p{percentile:g}"
                    bar.set_ticklabels([("−" if flip * t < 0 else "+" if t else "")
                                        + (p if t else "0") for t in ticks])
                    bar.set_label(f"{sign}: a / {p} of each map", fontsize=6)
                else:
                    bar.set_ticklabels([f"{flip * t:.3g}" if t else "0" for t in ticks])
                    bar.set_label(f"{sign}, in the maps' units", fontsize=6)
                bar.ax.tick_params(labelsize=6)
        for r in range(n):
            if labels is not None:
                axes[r][0].set_ylabel(str(labels[r]))
            for ax in axes[r]:
                ax.set_xticks([])
                ax.set_yticks([])
        fig.suptitle((title + "\n" if title else "") + SIGN_TEXT[sign] + "\n"
                     + ("colour limit: max |a|" if percentile is None else
                        f"colour limit: p{percentile:g} of the shown magnitudes"),
                     fontsize=8)
    return fig


def show(x: Any, attr: Any, *, sign: str = "all", cmap: str | None = None,
         overlay: bool = False, alpha: float = 0.5, percentile: float | None = 99.0,
         scale: str = "sample", mean: Sequence[float] | None = None,
         std: Sequence[float] | None = None, labels: Sequence[str] | None = None,
         title: str | None = None, name: str = "attribution", colorbar: bool = True,
         size: float = 2.0):
    """One attribution (a batch of maps) beside its images: :func:`compare` with the single
    method ``name``. ``x`` may be ``None`` (the maps alone). Returns the matplotlib
    ``Figure`` (in a notebook it displays itself; ``fig.savefig(path)`` writes it)."""
    return compare(x, {name: attr}, sign=sign, cmap=cmap, overlay=overlay, alpha=alpha,
                   percentile=percentile, scale=scale, mean=mean, std=std, labels=labels,
                   title=title, colorbar=colorbar, size=size)
