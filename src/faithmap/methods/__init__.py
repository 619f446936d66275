"""Attribution methods, one module per family; importing registers them."""

# Import order is registration order (fm.available_methods()).
from .gradients import (  # noqa: I001
    InputXGradient,
    IntegratedGradients,
    Saliency,
    SmoothGrad,
    VarGrad,
)
from .gradcam import GradCAM
from .captum_adapter import CaptumExplainer, from_captum

__all__ = [
    "CaptumExplainer",
    "GradCAM",
    "InputXGradient",
    "IntegratedGradients",
    "Saliency",
    "SmoothGrad",
    "VarGrad",
    "from_captum",
]
