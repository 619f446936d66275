"""Adversarial attacks on tensors: boundary search and PGD (robust training)."""

from .boundary import Boundary, BoundaryNotFoundError, find_boundary
from .pgd import pgd_l2, project_l2

__all__ = [
    "Boundary",
    "BoundaryNotFoundError",
    "find_boundary",
    "pgd_l2",
    "project_l2",
]
