"""Visualisation: heatmaps and overlays."""

from .heatmap import heatmap, overlay, side_by_side, to_map

__all__ = ["heatmap", "overlay", "side_by_side", "to_map"]
