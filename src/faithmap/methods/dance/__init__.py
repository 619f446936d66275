"""DANCE: decoy-enhanced saliency (explainer, decoy solver, default layer)."""

from .explainer import DANCE, dance_display
from .layers import default_layer, traced_layer

__all__ = ["DANCE", "dance_display", "default_layer", "traced_layer"]
