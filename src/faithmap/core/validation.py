"""Input validation shared by every explainer and metric."""

from __future__ import annotations

import torch
from torch import nn

from .errors import InvalidInputError


def check_input(x: object, name: str = "inputs") -> torch.Tensor:
    """Check that ``x`` is a finite N×C×H×W floating-point tensor with N ≥ 1.

    Returns ``x`` unchanged; raises :class:`InvalidInputError` naming what is wrong
    (for NaN/Inf, the offending sample indices).
    """
    if not isinstance(x, torch.Tensor):
        raise InvalidInputError(
            f"{name} must be a torch.Tensor of shape N×C×H×W, got {type(x).__name__}"
        )
    if x.dim() != 4:
        raise InvalidInputError(
            f"{name} must be 4-D (N×C×H×W, batch first), got shape {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise InvalidInputError(f"{name} must have a floating-point dtype, got {x.dtype}")
    if any(s == 0 for s in x.shape):
        raise InvalidInputError(f"{name} has an empty dimension: shape {tuple(x.shape)}")
    finite = torch.isfinite(x.detach()).flatten(1).all(dim=1)
    if not bool(finite.all()):
        bad = torch.nonzero(~finite).flatten().tolist()
        shown = ", ".join(str(i) for i in bad[:10]) + (", ..." if len(bad) > 10 else "")
        raise InvalidInputError(f"{name} contain NaN or Inf values in sample(s) {shown}")
    return x


def check_same_device(model: nn.Module, x: torch.Tensor) -> None:
    """Raise a clear error when the model's parameters and ``x`` are on different devices."""
    param = next(iter(model.parameters()), None)
    if param is not None and param.device != x.device:
        raise InvalidInputError(
            f"inputs are on {x.device} but the model's parameters are on {param.device}; "
            "move one of them (e.g. x.to(next(model.parameters()).device))"
        )


def model_dtype(model: nn.Module, default: torch.dtype) -> torch.dtype:
    """The floating-point dtype of the model's parameters (``default`` when it has none)."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return default


def check_positive_int(name: str, value: object) -> int:
    """``value`` if it is a positive int (not a bool), else a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def check_non_negative_int(name: str, value: object) -> int:
    """``value`` if it is an int >= 0 (not a bool), else a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return value
