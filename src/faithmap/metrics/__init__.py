"""Evaluation metrics: one score per sample, with ``higher_is_better`` and ``category``.

Model-based: ``NAME(model, inputs, attributions, target, **options)``; mask-based:
``NAME(attributions, masks, **options)``; ``sparseness(attributions)``. Importing the
category modules registers the metrics (``available_metrics()``, ``get_metric(name)``).
"""

from .base import (
    CATEGORIES,
    METRICS,
    as_maps,
    available_metrics,
    check_attributions,
    constant_maps,
    get_metric,
    metric,
)
from .complexity import *  # noqa: F403
from .complexity import __all__ as _complexity
from .faithfulness import *  # noqa: F403
from .faithfulness import __all__ as _faithfulness
from .localisation import *  # noqa: F403
from .localisation import __all__ as _localisation
from .randomisation import *  # noqa: F403
from .randomisation import __all__ as _randomisation
from .robustness import *  # noqa: F403
from .robustness import __all__ as _robustness

__all__ = ["CATEGORIES", "METRICS", "as_maps", "available_metrics", "check_attributions",
           "constant_maps", "get_metric", "metric", *_faithfulness, *_localisation,
           *_robustness, *_complexity, *_randomisation]
