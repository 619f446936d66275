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
from .boundary import BoundaryIntegratedGradients, BoundarySaliency, BoundarySmoothGrad
from .neflag import NeFLAG
from .dance import DANCE, dance_display
from .comet import COMETExplainer, ModelMismatchError
from .captum_adapter import CaptumExplainer, from_captum
from .zennit_adapter import ZennitExplainer, from_zennit

__all__ = [
    "BoundaryIntegratedGradients",
    "BoundarySaliency",
    "BoundarySmoothGrad",
    "COMETExplainer",
    "CaptumExplainer",
    "DANCE",
    "GradCAM",
    "InputXGradient",
    "ModelMismatchError",
    "IntegratedGradients",
    "NeFLAG",
    "SRD",
    "Saliency",
    "SmoothGrad",
    "VarGrad",
    "apop_predict",
    "dance_display",
    "from_captum",
    "from_zennit",
    "ZennitExplainer",
]
