"""Adversarial attacks used for robust training, boundary search and robustness metrics."""

from .boundary import Boundary, find_boundary
from .manipulation import manipulate, softplus_copy, topk_intersection
from .pgd import pgd_l2, project_l2

__all__ = [
    "Boundary",
    "find_boundary",
    "manipulate",
    "pgd_l2",
    "project_l2",
    "softplus_copy",
    "topk_intersection",
]
