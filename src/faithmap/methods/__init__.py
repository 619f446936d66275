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
from .srd import SRD, apop_predict
from .captum_adapter import CaptumExplainer, from_captum

__all__ = [
    "CaptumExplainer",
    "GradCAM",
    "InputXGradient",
    "IntegratedGradients",
    "SRD",
    "Saliency",
    "SmoothGrad",
    "VarGrad",
    "apop_predict",
    "from_captum",
]
