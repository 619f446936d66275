"""DANCE: decoy-enhanced saliency (explainer and decoy solver)."""

from .explainer import DANCE, dance_display, default_layer

__all__ = ["DANCE", "dance_display", "default_layer"]
