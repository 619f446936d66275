"""Old option names keep working for one release, with a ``DeprecationWarning``.

>>> @renamed_options(eps="radius", input_range="bounds")
... def find_boundary(model, x, *, radius=None, bounds=(0.0, 1.0)): ...

The table of renames is in ``CHANGELOG.md``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def renamed(options: dict[str, Any], renames: Mapping[str, str], where: str,
            stacklevel: int = 3) -> dict[str, Any]:
    """``options`` with each old key of ``renames`` moved to its new name (and a
    ``DeprecationWarning``); both names at once is a ``TypeError``."""
    out = dict(options)
    for old, new in renames.items():
        if old not in out:
            continue
        if new in out:
            raise TypeError(f"{where}: pass {new!r} only ({old!r} is its deprecated name)")
        warnings.warn(f"{where}: {old!r} is deprecated, use {new!r}", DeprecationWarning,
                      stacklevel=stacklevel)
        out[new] = out.pop(old)
    return out


def renamed_options(**renames: str) -> Callable[[F], F]:
    """Decorator: keyword ``old=value`` is passed on as ``new=value`` with a
    ``DeprecationWarning`` (``renamed_options(eps="radius")``). Works on functions and on
    ``__init__``; the signature seen by :func:`inspect.signature` is the new one."""

    def decorate(fn: F) -> F:
        where = fn.__qualname__.removesuffix(".__init__")

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if any(old in kwargs for old in renames):
                kwargs = renamed(kwargs, renames, where, stacklevel=4)
            return fn(*args, **kwargs)

        wrapper.renamed_options = dict(renames)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def with_new_names(fn: Callable[..., Any], options: dict[str, Any],
                   where: str | None = None) -> dict[str, Any]:
    """``options`` meant for ``fn`` with the old names its :func:`renamed_options` declares
    moved to the new ones (and a warning), so they can be merged with new-name defaults."""
    renames = getattr(fn, "renamed_options", {})
    return renamed(options, renames, where or fn.__name__) if renames else dict(options)


def renamed_attribute(old: str, new: str) -> property:
    """A read-only class attribute ``old`` that warns and returns ``self.<new>``:
    ``method = renamed_attribute("method", "integration")``."""

    def get(self: Any) -> Any:
        warnings.warn(f"{type(self).__name__}.{old} is deprecated, use .{new}",
                      DeprecationWarning, stacklevel=2)
        return getattr(self, new)

    return property(get, doc=f"Deprecated name of :attr:`{new}`.")


def warn_renamed(old: str, new: str, stacklevel: int = 3) -> None:
    """Warn that ``old`` (a function or value name) is deprecated in favour of ``new``."""
    warnings.warn(f"{old} is deprecated, use {new}", DeprecationWarning, stacklevel=stacklevel)
