"""Sanity checks: explanations must change when the model's parameters are randomised."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import torch
from torch import nn

from ..core.deprecation import renamed_options
from ..core.prelude import guarded_call
from ..core.registry import ExplainerLike, as_explain_fn
from ..core.seeding import SeedLike, base_seed, row_seed
from ..core.targets import TargetLike
from ._similarity import spearman, ssim
from .base import as_maps, check_attributions, metric

__all__ = ["mprt"]


def cascade_layers(model: nn.Module) -> list[str]:
    """Names of the layers MPRT re-initialises, output layer first (reverse registration order).

    A layer is a module with its own parameters or buffers and a ``reset_parameters`` method
    (Linear, Conv, BatchNorm, ...), as Quantus.
    """
    names = [
        name for name, m in model.named_modules()
        if callable(getattr(m, "reset_parameters", None))
        and (any(True for _ in m.parameters(recurse=False))
             or any(True for _ in m.buffers(recurse=False)))
    ]
    return names[::-1]


def _layer_seed(seed: int, step: int) -> int:
    """Seed for re-initialising the ``step``-th layer of the cascade."""
    return row_seed(seed, step)


def _cascade(model: nn.Module, names: list[str], seed: int) -> Iterator[nn.Module]:
    """A deep copy of ``model`` with layers ``names[:i+1]`` re-initialised, for each i."""
    rand = copy.deepcopy(model)
    modules = dict(rand.named_modules())
    param = next(iter(rand.parameters()), None)
    devices = [param.device] if param is not None and param.device.type == "cuda" else []
    for i, name in enumerate(names):
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.manual_seed(_layer_seed(seed, i))
            modules[name].reset_parameters()
        yield rand


@metric("mprt", higher_is_better=False, category="randomisation", kind="model")
@renamed_options(targets="target")
def mprt(
    model: nn.Module,
    inputs: torch.Tensor,
    attributions: torch.Tensor,
    target: TargetLike = None,
    *,
    explainer: ExplainerLike | None = None,
    similarity: str = "spearman",
    layers: int | None = None,
    abs: bool = True,
    seed: SeedLike = 0,
) -> torch.Tensor:
    """Model-parameter randomisation test, cascading top-down (Adebayo et al., NeurIPS 2018).

    score = (1/L) Σ_{l=1}^{L} sim(E_f(x), E_{f_l}(x)), where f_l is a deep copy of the model
    with its last l layers (:func:`cascade_layers`) re-initialised by their own
    ``reset_parameters`` under a seeded RNG, and ``layers`` = L limits the depth (default:
    all). ``sim``: ``"spearman"`` (rank correlation of all C·H·W values) or ``"ssim"`` (SSIM of
    the channel-summed maps, win 7). ``abs=True`` (as Quantus) compares |E|. Two identical
    maps have similarity 1 also where Spearman's ρ is undefined (constant maps): an
    explanation that does not change when the model is randomised (an all-zero or constant
    map, the input itself) fails the test with the worst score, 1. The target is resolved on
    the trained model and kept. Lower is better: a faithful explanation changes.
    """
    with guarded_call(model, inputs, target) as (x, tgt):
        a0 = check_attributions(attributions, x)
        if similarity not in ("spearman", "ssim"):
            raise ValueError(f"similarity must be 'spearman' or 'ssim', got {similarity!r}")
        names = cascade_layers(model)
        if not names:
            raise ValueError("the model has no layer with parameters and reset_parameters()")
        if layers is not None:
            if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
                raise ValueError(f"layers must be a positive int or None, got {layers!r}")
            names = names[:layers]
        as_explain_fn(explainer, model)  # validate the option before any work
        seed_ = base_seed(seed)

        def maps(a: torch.Tensor) -> torch.Tensor:
            a = a.abs() if abs else a
            return as_maps(a, "sum") if similarity == "ssim" else a

        def sim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            same = (a == b).flatten(1).all(1)
            s = spearman(a, b) if similarity == "spearman" else ssim(a, b)
            return torch.where(same, torch.ones_like(s), s)

        reference = maps(a0)
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        tgt.resolve_with(model, x)
        fixed = tgt.fn if tgt.fn is not None else tgt.indices
        for rand in _cascade(model, names, seed_):
            a = as_explain_fn(explainer, rand)(x, fixed).detach()
            total += sim(reference, maps(a.reshape(a0.shape)))
    return total / len(names)
