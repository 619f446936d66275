"""The explainer base class: one ``__call__(x, target)`` contract for every method."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from .batching import DEFAULT_BATCH_SIZE, check_batch_size, map_rows
from .safety import model_guard
from .targets import Target, TargetLike
from .validation import check_input, check_same_device, model_dtype


class Explainer:
    """Base class of all explainers.

    Subclasses set ``name`` (the registry name) and ``spatial`` (True for methods that
    return one map per sample, N×1×H×W) and implement :meth:`attribute`. Calling an
    explainer validates the input and the target, runs :meth:`attribute` inside
    :func:`~faithmap.core.safety.model_guard`, and returns a detached tensor on the
    input's device and dtype. Per-call facts (resolved targets, convergence deltas,
    ...) are left in :attr:`metadata`.
    """

    name: ClassVar[str] = ""
    spatial: ClassVar[bool] = False

    def __init__(self, model: nn.Module, *, batch_size: int | None = DEFAULT_BATCH_SIZE) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.batch_size = check_batch_size(batch_size)
        self.metadata: dict[str, Any] = {}

    def __call__(self, x: torch.Tensor, target: TargetLike = None) -> torch.Tensor:
        check_input(x)
        check_same_device(self.model, x)
        resolved = Target(target, x.shape[0])
        inputs = x.detach().to(model_dtype(self.model, x.dtype))
        self.metadata = {}
        with model_guard(self.model):
            attr = self.attribute(inputs, resolved)
        self.metadata["target"] = resolved.index_list()
        return self._finish(attr, x)

    def attribute(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        """Compute the attribution of ``x`` (validated, detached) for ``target``."""
        raise NotImplementedError

    def map_samples(
        self,
        x: torch.Tensor,
        target: Target,
        fn: Callable[[torch.Tensor, Target, torch.Tensor | None], torch.Tensor],
    ) -> torch.Tensor:
        """``fn(x_chunk, target, rows)`` over the samples in chunks of ``batch_size``.

        In one chunk (``rows=None``) a ``None`` target is resolved from ``fn``'s own forward
        pass; across several chunks it costs one extra gradient-free forward pass first.
        """
        n = x.shape[0]
        if self.batch_size is None or self.batch_size >= n:
            return fn(x, target, None)
        target.resolve_with(self.model, x)
        return map_rows(n, self.batch_size, lambda rows: fn(x[rows.to(x.device)], target, rows))

    def _finish(self, attr: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        expected = (x.shape[0], 1, *x.shape[2:]) if self.spatial else tuple(x.shape)
        if tuple(attr.shape) != expected:
            raise RuntimeError(
                f"{type(self).__name__} produced shape {tuple(attr.shape)}, expected {expected}"
            )
        attr = attr.detach().to(device=x.device, dtype=x.dtype)
        finite = torch.isfinite(attr).flatten(1).all(dim=1)
        if not bool(finite.all()):
            bad = torch.nonzero(~finite).flatten().tolist()
            warnings.warn(
                f"{type(self).__name__}: attribution has NaN/Inf values for samples {bad[:10]} "
                "(the model's scores or gradients are not finite there)",
                RuntimeWarning,
                stacklevel=3,
            )
        return attr

    def __repr__(self) -> str:
        model = type(self.model).__name__
        return f"{type(self).__name__}(model={model}, batch_size={self.batch_size})"
