"""faithmap: faithful, robust feature attribution for PyTorch image classifiers.

>>> import faithmap as fm
>>> attr = fm.explain(model, x, method="integrated_gradients", target=None)
"""

from . import attacks, comet, data, metrics, viz, zoo
from .core import (
    METHODS,
    Explainer,
    FaithmapError,
    InvalidInputError,
    LogitsOnly,
    ModelModeError,
    TargetError,
    UnsupportedLayerError,
    available_methods,
    explain,
    get_explainer,
)
from .evaluation import evaluate
from .methods import (
    DANCE,
    SRD,
    BoundaryIntegratedGradients,
    BoundarySaliency,
    BoundarySmoothGrad,
    CaptumExplainer,
    COMETExplainer,
    GradCAM,
    InputXGradient,
    IntegratedGradients,
    NeFLAG,
    Saliency,
    SmoothGrad,
    VarGrad,
    ZennitExplainer,
    apop_predict,
    dance_display,
    from_captum,
    from_zennit,
)
from .metrics import METRICS, available_metrics

__version__ = "0.1.0"

__all__ = [
    "BoundaryIntegratedGradients",
    "BoundarySaliency",
    "BoundarySmoothGrad",
    "COMETExplainer",
    "CaptumExplainer",
    "DANCE",
    "Explainer",
    "FaithmapError",
    "GradCAM",
    "InputXGradient",
    "IntegratedGradients",
    "InvalidInputError",
    "LogitsOnly",
    "METHODS",
    "METRICS",
    "ModelModeError",
    "NeFLAG",
    "SRD",
    "Saliency",
    "SmoothGrad",
    "TargetError",
    "UnsupportedLayerError",
    "VarGrad",
    "__version__",
    "apop_predict",
    "attacks",
    "available_methods",
    "available_metrics",
    "comet",
    "dance_display",
    "data",
    "evaluate",
    "explain",
    "from_captum",
    "from_zennit",
    "ZennitExplainer",
    "get_explainer",
    "metrics",
    "viz",
    "zoo",
]
