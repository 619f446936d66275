"""Core: explainer contract, registry, targets, model safety, batching, seeding, validation,
modules that methods may special-case (Normalize, ResidualBlock)."""

from .batching import DEFAULT_BATCH_SIZE, chunks, map_rows, sum_rows
from .errors import (
    FaithmapError,
    InvalidInputError,
    ModelModeError,
    TargetError,
    UnsupportedLayerError,
)
from .explainer import Explainer
from .modules import LogitsOnly, Normalize, ResidualBlock
from .registry import METHODS, Registry, available_methods, explain, get_explainer, register
from .safety import check_eval_mode, model_guard
from .targets import Target
from .validation import check_input

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "Explainer",
    "FaithmapError",
    "InvalidInputError",
    "METHODS",
    "ModelModeError",
    "LogitsOnly",
    "Normalize",
    "Registry",
    "ResidualBlock",
    "Target",
    "TargetError",
    "UnsupportedLayerError",
    "available_methods",
    "check_eval_mode",
    "check_input",
    "chunks",
    "explain",
    "get_explainer",
    "map_rows",
    "model_guard",
    "register",
    "sum_rows",
]
