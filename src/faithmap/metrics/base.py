"""Metric metadata, registry and the shared input checks.

Every metric is a plain function over torch tensors that returns one score per sample
(a float tensor of shape N on the inputs' device). :func:`metric` attaches Quantus-style
metadata — ``higher_is_better``, ``category`` and ``kind`` — and registers it by name.

Kinds and signatures:
- ``"model"``: ``fn(model, inputs, attributions, target, **options) -> Tensor[N]``
- ``"mask"``: ``fn(attributions, masks, **options) -> Tensor[N]``
- ``"attribution"``: ``fn(attributions, **options) -> Tensor[N]``
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypeVar

import torch

from ..core.errors import InvalidInputError
from ..core.registry import Registry

CATEGORIES = ("faithfulness", "localisation", "robustness", "complexity", "randomisation")
Kind = Literal["model", "mask", "attribution"]
F = TypeVar("F", bound=Callable[..., torch.Tensor])
METRICS: Registry[Callable[..., torch.Tensor]] = Registry("metric")


def metric(name: str, *, higher_is_better: bool, category: str, kind: Kind) -> Callable[[F], F]:
    """Decorator: attach metadata to a metric function and register it under ``name``."""
    if category not in CATEGORIES:
        raise ValueError(f"category must be one of {CATEGORIES}, got {category!r}")

    def decorate(fn: F) -> F:
        fn.metric_name = name  # type: ignore[attr-defined]
        fn.higher_is_better = higher_is_better  # type: ignore[attr-defined]
        fn.category = category  # type: ignore[attr-defined]
        fn.kind = kind  # type: ignore[attr-defined]
        METRICS.add(name, fn)
        return fn

    return decorate


def available_metrics() -> list[str]:
    """Registered metric names, in registration order."""
    return METRICS.names()


def get_metric(name: str) -> Callable[..., torch.Tensor]:
    """The metric function registered under ``name``."""
    return METRICS.get(name)


def as_maps(attributions: torch.Tensor, reduce: str = "sum") -> torch.Tensor:
    """N×H×W maps from N×C×H×W (or N×1×H×W, or N×H×W) attributions.

    ``reduce``: ``"sum"`` over channels (default), ``"abs"`` (sum of absolute values),
    ``"max_abs"`` (largest absolute value over channels).
    """
    a = check_attributions(attributions)
    if a.dim() == 3:
        return a
    if reduce == "sum":
        return a.sum(1)
    if reduce == "abs":
        return a.abs().sum(1)
    if reduce == "max_abs":
        return a.abs().amax(1)
    raise ValueError(f"reduce must be 'sum', 'abs' or 'max_abs', got {reduce!r}")


def constant_maps(attributions: torch.Tensor, reduce: str = "sum") -> torch.Tensor:
    """Per-sample flag (BoolTensor N): the channel-reduced map is constant (all zero included).

    Such a map carries no ranking and points nowhere; the sanity contract
    (``faithmap.metrics.sanity``) documents what every metric scores for it.
    """
    flat = as_maps(attributions, reduce).flatten(1)
    return flat.amax(1) == flat.amin(1)


def check_attributions(attributions: object, inputs: torch.Tensor | None = None) -> torch.Tensor:
    """Validate attributions: a finite float tensor, N×C×H×W / N×1×H×W / N×H×W.

    With ``inputs`` (N×C×H×W), also check that the batch size and spatial size match and
    that the channel count is 1 or C.
    """
    if not isinstance(attributions, torch.Tensor):
        raise InvalidInputError(f"attributions must be a tensor, got {type(attributions).__name__}")
    a = attributions.detach()
    if a.dim() not in (3, 4) or not a.is_floating_point() or a.shape[0] == 0:
        raise InvalidInputError(
            f"attributions must be a float N×C×H×W, N×1×H×W or N×H×W tensor, got "
            f"{tuple(a.shape)} {a.dtype}"
        )
    if not bool(torch.isfinite(a).all()):
        bad = torch.nonzero(~torch.isfinite(a).flatten(1).all(1)).flatten().tolist()
        raise InvalidInputError(f"attributions contain NaN or Inf in sample(s) {bad[:10]}")
    if inputs is not None:
        spatial = a.shape[-2:]
        channels = a.shape[1] if a.dim() == 4 else 1
        if (a.shape[0] != inputs.shape[0] or spatial != inputs.shape[-2:]
                or channels not in (1, inputs.shape[1])):
            raise InvalidInputError(
                f"attributions of shape {tuple(a.shape)} do not match inputs "
                f"{tuple(inputs.shape)}"
            )
    return a
