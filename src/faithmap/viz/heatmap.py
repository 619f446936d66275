"""Heatmaps and overlays of attributions on images (numpy only at this edge)."""

from __future__ import annotations

import numpy as np
import torch


def to_map(attr: torch.Tensor) -> torch.Tensor:
    """Reduce a C×H×W (or H×W) attribution to H×W by summing over channels."""
    attr = attr.detach().float().cpu()
    return attr.sum(0) if attr.dim() == 3 else attr


def heatmap(attr: torch.Tensor, percentile: float = 99.0) -> np.ndarray:
    """An H×W×3 float RGB heatmap in [0, 1].

    Non-negative maps use ``inferno`` scaled to their ``percentile``; signed maps use a
    symmetric diverging ``bwr`` scale (blue negative, red positive).
    """
    from matplotlib import colormaps

    m = to_map(attr)
    signed = bool((m < 0).any())
    scale = float(torch.quantile(m.abs().flatten(), percentile / 100.0)) or 1.0
    if signed:
        values, cmap = (m / scale).clamp(-1, 1) * 0.5 + 0.5, colormaps["bwr"]
    else:
        values, cmap = (m / scale).clamp(0, 1), colormaps["inferno"]
    return cmap(values.numpy())[..., :3]


def overlay(image: torch.Tensor, attr: torch.Tensor, alpha: float = 0.55) -> np.ndarray:
    """Image (C×H×W in [0, 1]) blended with the attribution heatmap, as H×W×3 uint8."""
    img = image.detach().float().cpu().clamp(0, 1)
    rgb = img.expand(3, *img.shape[1:]) if img.shape[0] == 1 else img[:3]
    base = rgb.permute(1, 2, 0).numpy()
    blended = (1 - alpha) * base + alpha * heatmap(attr)
    return (np.clip(blended, 0, 1) * 255).round().astype(np.uint8)


def side_by_side(image: torch.Tensor, attr: torch.Tensor) -> np.ndarray:
    """The image, the heatmap and the overlay next to each other (H×3W×3 uint8)."""
    img = image.detach().float().cpu().clamp(0, 1)
    rgb = img.expand(3, *img.shape[1:]) if img.shape[0] == 1 else img[:3]
    base = (rgb.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    heat = (heatmap(attr) * 255).round().astype(np.uint8)
    return np.concatenate([base, heat, overlay(image, attr)], axis=1)
