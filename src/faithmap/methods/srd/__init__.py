"""SRD: sharing-ratio decomposition (explainer, traced graph, per-layer rules)."""

from .errors import CutError, LayerError
from .explainer import SRD, apop_predict, zero_input

__all__ = ["SRD", "CutError", "LayerError", "apop_predict", "zero_input"]
