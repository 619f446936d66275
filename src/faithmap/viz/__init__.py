"""Visualisation: heatmaps, overlays, colour bars and report figures."""

from .figures import method_styles
from .heatmap import (
    CONVENTION_TEXT,
    colorbar,
    heatmap,
    overlay,
    side_by_side,
    sign_convention,
    to_map,
)

__all__ = ["CONVENTION_TEXT", "colorbar", "heatmap", "method_styles", "overlay", "side_by_side",
           "sign_convention", "to_map"]
