"""Modules and model declarations that methods may rely on (instead of class names).

- :class:`Normalize`: ``(x − mean) / std`` per channel inside a model. Methods special-case
  it (SRD folds it into the first layer; LRP passes relevance through it; the input box is
  pushed through it).
- :class:`ResidualBlock`: ``merge(shortcut(x) + residual(x))``. A block that subclasses it
  declares where its skip sum is, so LRP can route the sum through a conserving Sum rule.
- ``feature_layer``: a model attribute (class or instance) naming the module whose output is
  its last convolutional stage; methods that constrain or read a layer (DANCE) default to it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

FEATURE_LAYER = "feature_layer"


class Normalize(nn.Module):
    """``(x − mean) / std`` per channel, with the statistics stored as buffers."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class ResidualBlock(nn.Module):
    """A residual block ``merge(residual(x) + shortcut(x))``; subclasses implement
    :meth:`branches` (and :meth:`merge`, the activation after the sum)."""

    def branches(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(shortcut(x), residual(x))``, the two summands of the skip connection."""
        raise NotImplementedError

    def merge(self, total: torch.Tensor) -> torch.Tensor:
        """What follows the sum (identity by default)."""
        return total

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut, residual = self.branches(x)
        return self.merge(residual + shortcut)


def feature_layer(model: nn.Module) -> str | None:
    """The layer name the model declares as its last convolutional stage (``None`` if none)."""
    name = getattr(model, FEATURE_LAYER, None)
    return name if isinstance(name, str) else None
