"""Core: explainer base and registry, targets, model safety, batching, hooks, validation."""

from .batching import DEFAULT_BATCH_SIZE, chunks, map_rows, sum_rows
from .errors import (
    FaithmapError,
    InvalidInputError,
    ModelModeError,
    TargetError,
    UnsupportedLayerError,
)
from .explainer import Explainer
from .registry import available_methods, explain, get_explainer, register
from .safety import check_eval_mode, model_guard
from .targets import Target
from .validation import check_input

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "Explainer",
    "FaithmapError",
    "InvalidInputError",
    "ModelModeError",
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
