"""SRD's named errors (each also a ``ValueError``)."""

from __future__ import annotations

from ...core.errors import FaithmapError


class CutError(FaithmapError, ValueError):
    """``start="cam"`` or ``contrastive=True`` restart the recursion from one map at the last
    spatial ReLU; raised when that ReLU is not a cut of the graph (a path from the input to
    the output bypasses it) or when there is none — the map would silently miss a path."""


class LayerError(FaithmapError, ValueError):
    """A layer or position that :meth:`SRD.erf` cannot seed (a fully connected ReLU, a
    position outside the map)."""
