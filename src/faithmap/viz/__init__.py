"""Visualisation: heatmaps, overlays, colour bars, report figures and notebook plots
(:func:`show`, :func:`compare`)."""

from .figures import method_styles
from .heatmap import (
    CONVENTION_TEXT,
    colorbar,
    heatmap,
    legend_strip,
    overlay,
    side_by_side,
    sign_convention,
    to_map,
)
from .notebook import compare, show

__all__ = ["CONVENTION_TEXT", "colorbar", "compare", "heatmap", "legend_strip", "method_styles",
           "overlay", "show", "side_by_side", "sign_convention", "to_map"]
