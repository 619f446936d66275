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


class LogitsOnly(nn.Module):
    """``model(x).logits``: a classifier whose forward returns an output object (Hugging Face
    ``…ForImageClassification``'s ``ImageClassifierOutput``, a dict with a ``"logits"``
    entry) as the plain N×K tensor every method needs. Holds ``model`` as its only child
    (``LogitsOnly(model).model is model``), so layers are named ``model.<name>``; a
    ``feature_layer`` the model declares is forwarded with that prefix. Extra keyword
    arguments of the forward (e.g. ``interpolate_pos_encoding=True``) are fixed at
    construction."""

    def __init__(self, model: nn.Module, **forward_kwargs: object) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"LogitsOnly wraps an nn.Module, got {type(model).__name__}")
        self.model = model
        self.forward_kwargs = dict(forward_kwargs)
        inner = feature_layer(model)
        if inner is not None:
            self.feature_layer = f"model.{inner}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output = self.model(x, **self.forward_kwargs)
        logits = output_logits(output)
        if logits is None:
            raise TypeError(f"{type(self.model).__name__} returned {type(output).__name__} "
                            "with no tensor 'logits'")
        return logits


def output_logits(output: object) -> torch.Tensor | None:
    """The ``logits`` tensor of a model output object (attribute or mapping entry), if any."""
    if isinstance(output, torch.Tensor):
        return None
    logits = getattr(output, "logits", None)
    if logits is None and isinstance(output, dict):
        logits = output.get("logits")
    return logits if isinstance(logits, torch.Tensor) else None


def logits_hint(output: object) -> str:
    """A sentence telling the user to wrap a model whose output has ``.logits`` ('' if not)."""
    if output_logits(output) is None:
        return ""
    return (f"the model returns {type(output).__name__} with .logits, not an N×K tensor of "
            "scores (a Hugging Face classifier?): wrap it as fm.LogitsOnly(model)")
