"""Boundary attributions BSM / BIG / boundary SmoothGrad and their search cache."""

from .cache import DEFAULT_CACHE, BoundaryCache
from .explainers import (
    BoundaryExplainer,
    BoundaryIntegratedGradients,
    BoundarySaliency,
    BoundarySmoothGrad,
)

__all__ = [
    "DEFAULT_CACHE",
    "BoundaryCache",
    "BoundaryExplainer",
    "BoundaryIntegratedGradients",
    "BoundarySaliency",
    "BoundarySmoothGrad",
]
