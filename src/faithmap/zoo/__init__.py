"""Small models trained on the bundled data, with shipped float16 weights and model cards.

Every zoo model takes images in [0, 1] and carries its input normalisation as its first
module. ``train(name)`` reproduces a shipped checkpoint deterministically on the CPU.
"""

from ..core.modules import Normalize
from .registry import SPECS, ModelSpec, info, load, names, torchvision
from .training import accuracy, robust_accuracy, train

__all__ = [
    "SPECS",
    "ModelSpec",
    "Normalize",
    "accuracy",
    "info",
    "load",
    "names",
    "robust_accuracy",
    "torchvision",
    "train",
]
