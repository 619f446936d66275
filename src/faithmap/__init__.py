"""faithmap: faithful, robust feature attribution for PyTorch image classifiers.

>>> import faithmap as fm
>>> attr = fm.explain(model, x, method="integrated_gradients", target=None)
"""

from . import data, metrics, zoo
from .core import (
    Explainer,
    FaithmapError,
    InvalidInputError,
    ModelModeError,
    TargetError,
    UnsupportedLayerError,
    available_methods,
    explain,
    get_explainer,
)
from .evaluation import evaluate
from .methods import (
    SRD,
    CaptumExplainer,
    GradCAM,
    InputXGradient,
    IntegratedGradients,
    Saliency,
    SmoothGrad,
    VarGrad,
    apop_predict,
    from_captum,
)

__version__ = "0.1.0"

__all__ = [
    "CaptumExplainer",
    "Explainer",
    "FaithmapError",
    "GradCAM",
    "InputXGradient",
    "IntegratedGradients",
    "InvalidInputError",
    "ModelModeError",
    "SRD",
    "Saliency",
    "SmoothGrad",
    "TargetError",
    "UnsupportedLayerError",
    "VarGrad",
    "__version__",
    "apop_predict",
    "available_methods",
    "data",
    "evaluate",
    "explain",
    "from_captum",
    "get_explainer",
    "metrics",
    "zoo",
]
