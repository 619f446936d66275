"""Which class each metric explains: the target policy of ``fm.evaluate(..., target=...)``.

Two targets exist for a labelled sample: ``"predicted"`` (the model's top class, what the
model decides) and ``"label"`` (the dataset's class: a grid cell's digit, the cluttered
canvas's digit). The default policy is per metric:

* ``"label"`` for ``grid_pointing_game`` (Böhle et al., CVPR 2022: it asks about the class
  of one cell by design) and for every metric scored against a ground-truth mask
  (``kind == "mask"``: pointing game, energy pointing game, PxAP): the mask is the label's
  object, so the map must explain the label;
* ``"predicted"`` for everything else (deletion, insertion, insertion − deletion, LeRF/MoRF,
  fidelity, pixel flipping, sensitivity, complexity, randomisation): a faithfulness score
  of a class the model does not predict measures how the model's confidence in a class it
  does not see falls, which is noise (issue 15).

``target="predicted"`` or ``"label"`` applies one policy to every metric; a mapping
``{metric: policy}`` overrides the default for the metrics it names. A dataset without
labels (an image folder) has only the predicted class; asking for ``"label"`` there raises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

PREDICTED = "predicted"
LABEL = "label"
POLICIES = (PREDICTED, LABEL)
LABEL_METRICS = frozenset({"grid_pointing_game"})

TargetPolicy = str | Mapping[str, str] | None


def default_policy(metric: str, info: Mapping[str, Any] | None = None) -> str:
    """The default target of ``metric`` (see module doc); ``info``: its metadata."""
    if metric in LABEL_METRICS or (info or {}).get("kind") == "mask":
        return LABEL
    return PREDICTED


def _check(value: object, where: str) -> str:
    if value not in POLICIES:
        raise ValueError(f"{where} must be 'predicted' or 'label', got {value!r}")
    return str(value)


def resolve_policy(target: TargetPolicy, metrics: Sequence[str],
                   metric_info: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """``{metric: "predicted" | "label"}`` for ``metrics`` under ``target`` (module doc)."""
    if target is None:
        overrides: dict[str, str] = {}
    elif isinstance(target, str):
        policy = _check(target, "target")
        overrides = dict.fromkeys(metrics, policy)
    elif isinstance(target, Mapping):
        unknown = [m for m in target if m not in metrics]
        if unknown:
            raise ValueError(f"target policy names metrics that are not run: {unknown}")
        overrides = {m: _check(p, f"target[{m!r}]") for m, p in target.items()}
    else:
        raise TypeError("target must be None, 'predicted', 'label' or a {metric: policy} "
                        f"mapping, got {type(target).__name__}")
    return {m: overrides.get(m, default_policy(m, metric_info.get(m))) for m in metrics}


def for_dataset(policy: Mapping[str, str], has_labels: bool, explicit: TargetPolicy,
                dataset: str) -> dict[str, str]:
    """The policy on one dataset: without labels every metric explains the prediction; an
    explicit ``"label"`` (not the default) on such a dataset raises."""
    if has_labels:
        return dict(policy)
    asked = ([m for m, p in explicit.items() if p == LABEL] if isinstance(explicit, Mapping)
             else list(policy) if explicit == LABEL else [])
    if asked:
        raise ValueError(f"{dataset}: target 'label' asked for {asked}, but the dataset has no "
                         "labels (only the predicted class can be explained)")
    return dict.fromkeys(policy, PREDICTED)


def metric_applies(metric: str, metric_kind: str | None, data_kind: str | None,
                   has_masks: bool) -> bool:
    """Whether ``metric`` is scored on a dataset: ``grid_pointing_game`` only on grid images
    (``data_kind == "grid"``), a mask metric (``metric_kind == "mask"``) only with masks."""
    return (not (metric == "grid_pointing_game" and data_kind != "grid")
            and not (metric_kind == "mask" and not has_masks))


def describe(policy: Mapping[str, str]) -> str:
    """``"predicted class: deletion, insertion; label: pointing_game"`` (first-seen order)."""
    parts = []
    for p in POLICIES:
        names = [m for m, q in policy.items() if q == p]
        if names:
            parts.append(f"{'predicted class' if p == PREDICTED else 'label'}: "
                         + ", ".join(names))
    return "; ".join(parts) or "—"
