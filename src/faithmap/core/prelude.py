"""The one prelude of every public entry point that runs a model on inputs.

Explainers, ``SRD.erf``, ``apop_predict``, ``DANCE.decoys``, ``find_boundary`` and the
metrics all start the same way: validate the inputs (a finite N×C×H×W float tensor), check
that model and inputs share a device, validate the target for N samples, cast the inputs
to the model's dtype (detached), and run the model inside
:func:`~faithmap.core.safety.model_guard` so it is left exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from .safety import model_guard
from .targets import Target, TargetLike
from .validation import check_input, check_same_device, model_dtype


def prepare(model: nn.Module, x: object, target: TargetLike = None,
            name: str = "inputs") -> tuple[torch.Tensor, Target]:
    """Validated, detached inputs in the model's dtype and the validated target."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_input(x, name)
    assert isinstance(x, torch.Tensor)
    check_same_device(model, x)
    resolved = Target(target, x.shape[0])
    return x.detach().to(model_dtype(model, x.dtype)), resolved


@contextmanager
def guarded_call(model: nn.Module, x: object, target: TargetLike = None,
                 name: str = "inputs") -> Iterator[tuple[torch.Tensor, Target]]:
    """``with guarded_call(model, x, target) as (inputs, target):`` — :func:`prepare`, then
    the body runs inside :func:`~faithmap.core.safety.model_guard`."""
    inputs, resolved = prepare(model, x, target, name)
    with model_guard(model):
        yield inputs, resolved
