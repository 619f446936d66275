"""The one :class:`Registry` (methods and metrics) and the method entry points:
``available_methods``, ``get_explainer`` and ``explain``.

Adapters register name prefixes (``"captum:"``, ``"zennit:"``) with
:meth:`Registry.register_prefix`, so the contract knows no method. Tests and plugins
register temporarily with :meth:`Registry.scoped`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import torch
from torch import nn

from .explainer import Explainer
from .presets import preset_options
from .targets import TargetLike

T = TypeVar("T")

#: Passes per sample (through the model and outside it, :class:`~faithmap.core.cost.Cost`)
#: above which :func:`explain` warns before it runs: at ~0.3 s per resnet50 pass on 2 CPU
#: cores, 100,000 passes are hours per image (DANCE at its defaults on a 224² photo).
EXPENSIVE_PASSES = 100_000
ExplainerLike = str | Explainer | Callable[..., torch.Tensor]
ExplainFn = Callable[[torch.Tensor, TargetLike], torch.Tensor]
E = TypeVar("E", bound=type[Explainer])


class Registry(Generic[T]):
    """Names → objects (explainer classes, metric functions), in registration order, plus
    name prefixes handled by a factory (``"captum:Saliency"`` → ``factory("Saliency")``)."""

    def __init__(self, kind: str, on_add: Callable[[str, T], None] | None = None) -> None:
        self.kind = kind
        self._on_add = on_add
        self._items: dict[str, T] = {}
        self._prefixes: dict[str, Callable[..., Any]] = {}

    def add(self, name: str, obj: T) -> T:
        """Register ``obj`` under ``name`` (an error if another object holds the name)."""
        if not isinstance(name, str) or not name or name != name.strip().lower():
            raise ValueError(f"{self.kind} names are non-empty lower-case strings, got {name!r}")
        if name in self._items and self._items[name] is not obj:
            raise ValueError(f"{self.kind} name {name!r} is already registered")
        if self._on_add is not None:
            self._on_add(name, obj)
        self._items[name] = obj
        return obj

    def register_prefix(self, prefix: str, factory: Callable[..., Any]) -> None:
        """Route names ``prefix + rest`` to ``factory(rest, ...)``."""
        if not prefix.endswith(":"):
            raise ValueError(f"a prefix ends with ':', got {prefix!r}")
        self._prefixes[prefix] = factory

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._items)

    def prefixes(self) -> list[str]:
        """Registered name prefixes (e.g. ``["captum:", "zennit:"]``)."""
        return list(self._prefixes)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.strip().lower() in self._items

    def prefix_factory(self, name: str) -> tuple[Callable[..., Any], str] | None:
        """``(factory, rest)`` when ``name`` starts with a registered prefix."""
        for prefix, factory in self._prefixes.items():
            if name.startswith(prefix):
                return factory, name[len(prefix):]
        return None

    def get(self, name: str) -> T:
        """The object registered under ``name`` (case and surrounding space ignored)."""
        key = name.strip().lower() if isinstance(name, str) else name
        if key not in self._items:
            extra = "".join(f", '{p}…'" for p in self._prefixes)
            raise ValueError(f"unknown {self.kind} {name!r}; available: "
                             f"{', '.join(self._items)}{extra}")
        return self._items[key]

    @contextmanager
    def scoped(self, name: str, obj: T) -> Iterator[T]:
        """Register ``obj`` under ``name`` for the duration of a ``with`` block."""
        previous = self._items.get(name)
        self._items.pop(name, None)
        self.add(name, obj)
        try:
            yield obj
        finally:
            self._items.pop(name, None)
            if previous is not None:
                self.add(name, previous)

    @contextmanager
    def scoped_prefix(self, prefix: str, factory: Callable[..., Any]) -> Iterator[None]:
        """Route ``prefix`` names to ``factory`` for the duration of a ``with`` block."""
        previous = self._prefixes.get(prefix)
        self.register_prefix(prefix, factory)
        try:
            yield
        finally:
            self._prefixes.pop(prefix, None)
            if previous is not None:
                self._prefixes[prefix] = previous


def _name_explainer(name: str, cls: type[Explainer]) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Explainer)):
        raise TypeError(f"only Explainer subclasses can be registered as methods, got {cls!r}")
    cls.name = name


METHODS: Registry[type[Explainer]] = Registry("method", _name_explainer)


def register(name: str) -> Callable[[E], E]:
    """Class decorator: register an :class:`Explainer` subclass under ``name``."""

    def decorate(cls: E) -> E:
        METHODS.add(name, cls)
        return cls

    return decorate


def available_methods() -> list[str]:
    """Registered method names, in registration order."""
    return METHODS.names()


_MISSING: Any = object()


def get_explainer(
    model: nn.Module = _MISSING, method: str | type[Explainer] = _MISSING, /, *,
    preset: str | None = None, **options: Any
) -> Explainer:
    """An explainer of ``model``: ``method`` is a registry name, ``"captum:Class"``,
    ``"zennit:Composite"`` or an :class:`Explainer` class (same order as :func:`explain`).

    ``preset``: ``"fast"``, ``"default"`` or ``"paper"`` (:mod:`faithmap.core.presets`),
    the method's documented settings; ``options`` override them.

    The old order ``get_explainer(method, model)`` still works for one release, with a
    ``DeprecationWarning``.
    """
    if method is _MISSING and "model" in options:
        method = options.pop("model")
    if isinstance(method, nn.Module) and not isinstance(model, nn.Module):
        warnings.warn("get_explainer(method, model) is deprecated: use "
                      "get_explainer(model, method), the order of fm.explain",
                      DeprecationWarning, stacklevel=2)
        model, method = method, model
    if model is _MISSING or method is _MISSING:
        raise TypeError("get_explainer(model, method, **options) needs a model and a method")
    if preset is not None:
        options = preset_options(method, preset, options)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(method, type) and issubclass(method, Explainer):
        return method(model, **options)
    if not isinstance(method, str):
        raise TypeError(f"method must be a registry name or an Explainer class, got {method!r}")
    routed = METHODS.prefix_factory(method)
    if routed is not None:
        factory, rest = routed
        return factory(rest, model, **options)
    return METHODS.get(method)(model, **options)


def explain(
    model: nn.Module,
    x: torch.Tensor,
    method: str | type[Explainer] = "saliency",
    target: TargetLike = None,
    *,
    return_metadata: bool = False,
    preset: str | None = None,
    **options: Any,
) -> torch.Tensor | tuple[torch.Tensor, dict[str, Any]]:
    """Explain ``model`` at ``x`` with ``method`` in one call (options go to the explainer;
    ``preset="fast" | "default" | "paper"`` picks documented settings that they override,
    :mod:`faithmap.core.presets`).

    ``return_metadata=True`` returns ``(attributions, metadata)``: the explainer's per-call
    facts (resolved targets, convergence deltas, per-sample flags such as BSM/BIG's
    ``fallback_samples``) as Python scalars, lists or CPU tensors.
    """
    explainer = get_explainer(model, method, preset=preset, **options)
    _warn_if_expensive(explainer, x, target, preset)
    attr = explainer(x, target)
    return (attr, explainer.metadata) if return_metadata else attr


def _warn_if_expensive(explainer: Explainer, x: object, target: TargetLike,
                       preset: str | None) -> None:
    """A ``UserWarning`` before a call whose declared cost exceeds :data:`EXPENSIVE_PASSES`
    per sample (the command line prints every cost; a library call would run silently)."""
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) != 4:
        return  # the explainer's own input check will say what is wrong
    try:
        cost = explainer.cost(tuple(shape), target)
    except Exception:  # noqa: BLE001 - a cost that cannot be declared is not a warning
        return
    if cost is None:
        return
    total = cost.passes + sum(cost.other.values())
    if total > EXPENSIVE_PASSES:
        name = type(explainer).__name__
        hint = "" if preset == "fast" else "; preset='fast' is cheaper"
        warnings.warn(f"{name} on inputs of shape {tuple(shape)}: {cost.text(' per sample')}"
                      f" (see `faithmap methods --options`{hint})", UserWarning, stacklevel=3)


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
        return get_explainer(model, explainer)
    if isinstance(explainer, Explainer):
        return explainer.for_model(model)
    if callable(explainer):
        return lambda x, target: explainer(model, x, target)
    raise TypeError(f"explainer must be a name, an Explainer or a callable, got {explainer!r}")
