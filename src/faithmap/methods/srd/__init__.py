"""SRD: sharing-ratio decomposition (explainer, traced graph, per-layer rules)."""

from .explainer import SRD, apop_predict

__all__ = ["SRD", "apop_predict"]
