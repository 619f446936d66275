"""``faithmap explain --ray``: batches of images explained on Ray actors, in order.

Uses the evaluation's Ray plumbing (:mod:`faithmap.evaluation.ray_backend`): one model copy
per actor, dead workers restarted and their batch retried.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

from ..core.registry import get_explainer
from ..evaluation.ray_backend import (
    IN_FLIGHT,
    connect,
    require_ray,
    start_actors,
    worker_device,
)


class _ExplainWorker:
    """A Ray actor for ``faithmap explain``: one model copy and one explainer."""

    def __init__(self, model: nn.Module, method: str, options: dict[str, Any],
                 device: str | None) -> None:
        self.device = worker_device(device)
        self.model = model.to(self.device)
        self.explainer = get_explainer(self.model, method, **options)

    def run(self, x: torch.Tensor, target: int | None) -> tuple:
        """(attributions, class probabilities, resolved targets) of one batch, on the CPU."""
        x = x.to(self.device)
        attr = self.explainer(x, target)
        with torch.no_grad():
            probs = self.model(x).softmax(dim=1)
        return attr.cpu(), probs.cpu(), self.explainer.metadata.get("target")


def explain_on_ray(model: nn.Module, method: str, options: dict[str, Any],
                   batches: Iterable[tuple[Any, torch.Tensor]], target: int | None,
                   device: str | None, address: str | None = None,
                   workers: int | None = None) -> Iterator[tuple[Any, tuple | Exception]]:
    """``(key, x)`` batches → ``(key, (attr, probs, targets))`` in order, or ``(key, error)``;
    computed on Ray actors (dead workers restarted, the batch retried)."""
    ray = require_ray()
    started = connect(address, workers)
    try:
        actors, _model_ref = start_actors(ray, _ExplainWorker, model, device, workers,
                                           method, options)
        pending: deque = deque()
        for i, (key, x) in enumerate(batches):
            pending.append((key, actors[i % len(actors)].run.remote(x, target)))
            if len(pending) >= IN_FLIGHT * len(actors):
                yield _explain_result(ray, *pending.popleft())
        while pending:
            yield _explain_result(ray, *pending.popleft())
        for a in actors:
            ray.kill(a)
    finally:
        if started:
            ray.shutdown()


def _explain_result(ray: Any, key: Any, ref: Any) -> tuple[Any, tuple | Exception]:
    try:
        return key, ray.get(ref)
    except ray.exceptions.RayTaskError as exc:  # the explainer raised: its own exception
        cause = exc.as_instanceof_cause()
        return key, cause if isinstance(cause, Exception) else exc
    except ray.exceptions.RayError as exc:
        return key, exc
