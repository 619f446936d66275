"""Boundary attributions BSM / BIG / boundary SmoothGrad and their search cache."""

from ...attacks.boundary import BoundaryNotFoundError
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
    "BoundaryNotFoundError",
    "BoundarySaliency",
    "BoundarySmoothGrad",
]
