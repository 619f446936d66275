"""Method registry: ``available_methods``, ``get_explainer`` and ``explain``."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn

from .explainer import Explainer
from .targets import TargetLike

_REGISTRY: dict[str, type[Explainer]] = {}
ExplainerLike = str | Explainer | Callable[..., torch.Tensor]
ExplainFn = Callable[[torch.Tensor, TargetLike], torch.Tensor]
E = TypeVar("E", bound=type[Explainer])


def register(name: str) -> Callable[[E], E]:
    """Class decorator: register an :class:`Explainer` subclass under ``name``."""

    def decorate(cls: E) -> E:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"method name {name!r} is already registered")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def available_methods() -> list[str]:
    """Registered method names, in registration order."""
    return list(_REGISTRY)


def get_explainer(
    method: str | type[Explainer], /, model: nn.Module, **options: Any
) -> Explainer:
    """An explainer: a registry name, ``"captum:Class"``, ``"zennit:Composite"`` or a class.

    ``method`` is positional-only, so an explainer option may itself be called ``method``
    (e.g. Integrated Gradients' integration rule).
    """
    if isinstance(method, type) and issubclass(method, Explainer):
        return method(model, **options)
    if not isinstance(method, str):
        raise TypeError(f"method must be a registry name or an Explainer class, got {method!r}")
    if method.startswith("captum:"):
        from ..methods.captum_adapter import from_captum

        return from_captum(method.split(":", 1)[1], model, **options)
    if method.startswith("zennit:"):
        from ..methods.zennit_adapter import from_zennit

        return from_zennit(method.split(":", 1)[1], model, **options)
    key = method.strip().lower()
    if key not in _REGISTRY:
        raise ValueError(
            f"unknown method {method!r}; available: {', '.join(available_methods())} "
            "(or 'captum:ClassName' for any Captum attribution, 'zennit:CompositeName' for LRP)"
        )
    return _REGISTRY[key](model, **options)


def explain(
    model: nn.Module,
    x: torch.Tensor,
    method: str | type[Explainer] = "saliency",
    target: TargetLike = None,
    **options: Any,
) -> torch.Tensor:
    """Explain ``model`` at ``x`` with ``method`` in one call (options go to the explainer).

    Integrated Gradients' rule is passed here as ``integration=...`` (``method`` names
    the attribution method).
    """
    return get_explainer(method, model, **options)(x, target)


def as_explain_fn(explainer: ExplainerLike | None, model: nn.Module) -> ExplainFn:
    """``(x, target) -> attributions`` for ``model`` from a name, Explainer or callable.

    An Explainer built for another model is shallow-copied onto ``model`` (options kept).
    """
    if explainer is None:
        raise ValueError(
            "pass explainer= (a registry name such as 'saliency', an Explainer, or a callable "
            "(model, x, targets) -> attributions) that produced the attributions"
        )
    if isinstance(explainer, str):
        return get_explainer(explainer, model)
    if isinstance(explainer, Explainer):
        if explainer.model is model:
            return explainer
        moved = copy.copy(explainer)
        moved.model = model
        moved.metadata = {}
        return moved
    if callable(explainer):
        return lambda x, target: explainer(model, x, target)
    raise TypeError(f"explainer must be a name, an Explainer or a callable, got {explainer!r}")
