"""Exceptions raised by faithmap.

Each subclasses the built-in exception a user would try first, so both
``except faithmap.InvalidInputError`` and ``except ValueError`` work.
"""

from __future__ import annotations


class FaithmapError(Exception):
    """Base class of every faithmap exception."""


class InvalidInputError(FaithmapError, ValueError, TypeError):
    """Input tensor of the wrong type, shape or dtype, or with NaN/Inf values."""


class TargetError(FaithmapError, ValueError):
    """Target out of range, of the wrong length, or of an unusable type."""


class ModelModeError(FaithmapError, ValueError, RuntimeError):
    """Model in training mode while it has dropout or batch-norm layers."""


class UnsupportedLayerError(FaithmapError, TypeError):
    """A method met a module it cannot handle; the message names its path and type."""

    def __init__(self, path: str, module: object, reason: str = "") -> None:
        self.path = path
        self.module_type = type(module).__name__
        detail = f": {reason}" if reason else ""
        super().__init__(
            f"unsupported layer {path or '<root>'!r} of type {self.module_type}{detail}"
        )
