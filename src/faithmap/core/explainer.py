"""The explainer base class: one ``__call__(x, target)`` contract for every method."""

from __future__ import annotations

import copy
import dataclasses
import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from .batching import DEFAULT_BATCH_SIZE, check_batch_size, map_rows
from .cost import Cost, check_shape, predicted
from .prelude import guarded_call
from .targets import Target, TargetLike


def plain_metadata(value: Any) -> Any:
    """The one rule for metadata values: Python scalars, lists, dicts of those, or detached
    CPU tensors (numpy arrays and scalars become lists and Python numbers, dataclass records
    such as a :class:`~faithmap.attacks.Boundary` become dicts of their fields)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain_metadata(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: plain_metadata(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_metadata(v) for v in value]
    if hasattr(value, "tolist") and type(value).__module__ == "numpy":
        return value.tolist()
    return value


class Explainer:
    """Base class of all explainers.

    Subclasses set ``name`` (the registry name) and ``spatial`` (True for methods that
    return one map per sample, N×1×H×W) and implement :meth:`attribute`. Calling an
    explainer validates the input and the target, runs :meth:`attribute` inside
    :func:`~faithmap.core.safety.model_guard`, and returns a detached tensor on the
    input's device and dtype. Per-call facts (resolved targets, convergence deltas,
    ...) are left in :attr:`metadata` (values: Python scalars, lists or CPU tensors,
    :func:`plain_metadata`); ``fm.explain(..., return_metadata=True)`` returns them.
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
        self.metadata = {}
        with guarded_call(self.model, x, target) as (inputs, resolved):
            attr = self.attribute(inputs, resolved)
        self.metadata["target"] = resolved.index_list()
        self.metadata = plain_metadata(self.metadata)
        return self._finish(attr, x)

    def attribute(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        """Compute the attribution of ``x`` (validated, detached) for ``target``."""
        raise NotImplementedError

    def attribute_differentiable(
        self, x: torch.Tensor, target: Target, model: nn.Module
    ) -> torch.Tensor:
        """E(x) computed on ``model`` (e.g. a smooth surrogate of ``self.model``) with the
        graph kept, so it can be differentiated in ``x`` (double backpropagation). Only the
        explainers with a closed differentiable form implement it (:attr:`differentiable`)."""
        raise NotImplementedError(f"{type(self).__name__} has no differentiable form")

    @property
    def differentiable(self) -> bool:
        """True when :meth:`attribute_differentiable` is implemented."""
        return type(self).attribute_differentiable is not Explainer.attribute_differentiable

    def for_model(self, model: nn.Module) -> Explainer:
        """This explainer with its options on ``model``: itself when it already explains
        ``model``, else a shallow copy with fresh metadata."""
        if model is self.model:
            return self
        moved = copy.copy(self)
        moved.model, moved.metadata = model, {}
        return moved

    def rows_per_sample(self) -> int:
        """Rows through the model per sample of one call (quadrature points, noise draws)."""
        return 1

    def cost(self, x_shape: tuple[int, ...], target: TargetLike = None) -> Cost | None:
        """Passes per sample that one call on inputs of ``x_shape`` (N×C×H×W) for
        ``target`` will run, declared before it runs (:class:`~faithmap.core.cost.Cost`:
        forward and backward rows through the model, exact or an upper bound); None where
        the method cannot know it beforehand.

        Default, from :meth:`rows_per_sample`: one forward + one backward pass per row, plus
        the gradient-free forward pass :meth:`map_samples` spends on a ``None`` target when
        the samples span several chunks. Methods whose cost differs override it.
        """
        n = check_shape(x_shape)[0]
        rows = int(self.rows_per_sample())
        resolve = predicted(target) and self.batch_size is not None and self.batch_size < n
        return Cost(rows + int(resolve), rows, basis="rows_per_sample")

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
                "(the model's scores or gradients are not finite there, or the method has no "
                "answer for them: see metadata['fallback_samples'])",
                RuntimeWarning,
                stacklevel=3,
            )
        return attr

    def __repr__(self) -> str:
        model = type(self.model).__name__
        return f"{type(self).__name__}(model={model}, batch_size={self.batch_size})"
