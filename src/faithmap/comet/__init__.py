"""COMET — Comprehensive Attribution (Zhang, Lee, Wang, ECCV 2024, arXiv 2407.19308).

An inherently explainable classifier: a selector S draws a soft mask m = σ(S(x)), a
predictor f_P classifies the selected input m⊙x + (1−m)⊙q, and a frozen detector f_D
(a black box trained on full images) penalises, per sample, class evidence left in the
complement (1−m)⊙x + m⊙q.
See docs/methods/comet.md.

>>> import faithmap as fm
>>> model = fm.comet.ComprehensiveAttributionModel.load("cluttered_comet")
>>> logits, mask = model(x), model.explain(x)

Its registered explainer (``"comet"``) is :class:`faithmap.methods.comet.COMETExplainer`; the
predictor/detector architecture and the checkpoint files live in the zoo
(:mod:`faithmap.zoo.small_cnn`, :mod:`faithmap.zoo.checkpoints`).
"""

from ..zoo.checkpoints import load_classifier, save_classifier, shipped
from ..zoo.small_cnn import SmallCNN
from .blackbox import accuracy, train_classifier
from .data import splits, test_set
from .model import ComprehensiveAttributionModel
from .objective import (
    Objective,
    area_penalty,
    complement,
    hinge,
    hinge_term,
    mask_area,
    select,
    selector_loss,
)
from .selector import LRASPPSelector, UNetSelector, build_selector
from .steps import VARIANTS, comet_losses, route_gradients, validate
from .training import TrainResult, train

__all__ = [
    "ComprehensiveAttributionModel",
    "LRASPPSelector",
    "Objective",
    "SmallCNN",
    "TrainResult",
    "UNetSelector",
    "VARIANTS",
    "accuracy",
    "area_penalty",
    "build_selector",
    "comet_losses",
    "complement",
    "hinge",
    "hinge_term",
    "load_classifier",
    "mask_area",
    "route_gradients",
    "save_classifier",
    "select",
    "selector_loss",
    "shipped",
    "splits",
    "test_set",
    "train",
    "train_classifier",
    "validate",
]
