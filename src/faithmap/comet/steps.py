"""One training step of each COMET variant: the losses and exactly routed gradients.

Gradient routing (Zhang, Lee, Wang, ECCV 2024, reference code):

* predictor f_P: ∇ of L_P only — ``autograd.grad(L_P, θ_P)``;
* selector S: ∇ of the full selector loss L_sel (through f_P and f_D) — ``autograd.grad``;
* detector f_D: never — it runs in eval mode and is not among the differentiated inputs,
  so its ``.grad`` stays untouched and its BatchNorm statistics never move.

Variants: ``"comet"`` (a > 0), ``"no_detector"`` (a = 0, plain selector–predictor),
``"posthoc"`` (``player_num=1``: one frozen classifier is predictor and detector; only the
selector learns) and the REAL-X-style baseline (Jethani et al., AISTATS 2021):
``"realx_eval"`` trains the predictor on random Bernoulli(½) pixel masks,
``"realx"`` then trains the selector with KL(f_bb(x) ‖ f_P(x_s)) + λ·mean(m), f_P frozen.
Soft masks everywhere (REAL-X samples discrete masks with REINFORCE; we relax them).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..core.batching import check_batch_size, chunks
from ..core.deprecation import renamed_options
from .model import ComprehensiveAttributionModel
from .objective import Objective, complement, mask_area, select, selector_loss

VARIANTS = ("comet", "no_detector", "posthoc", "realx")


def _params(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def comet_losses(model: ComprehensiveAttributionModel, detector: nn.Module | None,
                 x: torch.Tensor, y: torch.Tensor, obj: Objective) -> dict[str, torch.Tensor]:
    """L_P, L_D (batch means; if a detector is given), hinge (per ``obj.hinge``), area
    penalty R, area and L_sel; ``complement_hits``: the fraction of complements the
    detector still classifies as y."""
    m = model.explain(x)
    loss_p = F.cross_entropy(model.predictor(select(x, m, model.fill)), y, reduction="none")
    loss_d = hits = None
    if detector is not None and obj.a != 0:
        out_d = detector(complement(x, m, model.fill))
        loss_d = F.cross_entropy(out_d, y, reduction="none")
        hits = (out_d.detach().argmax(1) == y).float().mean()
    terms = selector_loss(obj, loss_p, loss_d, m)
    zero = loss_p.new_zeros(())
    out = {"loss_p": loss_p.mean(), "loss_d": zero if loss_d is None else loss_d.mean(),
           "mask": m, "area": mask_area(m).mean(), **terms}
    if hits is not None:
        out["complement_hits"] = hits
    return out


def _assign(params: list[nn.Parameter], grads: tuple[torch.Tensor, ...]) -> None:
    for p, g in zip(params, grads):
        p.grad = g.detach()


def route_gradients(variant: str, model: ComprehensiveAttributionModel,
                    detector: nn.Module | None, x: torch.Tensor, y: torch.Tensor,
                    obj: Objective, *, realx_lambda: float = 0.2,
                    generator: torch.Generator | None = None) -> dict[str, float]:
    """Set ``.grad`` of the parameters that ``variant`` trains; return the logged terms."""
    sel, pred = _params(model.selector), _params(model.predictor)
    if variant in ("comet", "no_detector", "posthoc"):
        out = comet_losses(model, detector if variant != "no_detector" else None, x, y, obj)
        if variant != "posthoc":
            _assign(pred, torch.autograd.grad(out["loss_p"], pred, retain_graph=True))
        _assign(sel, torch.autograd.grad(out["loss"], sel))
    elif variant == "realx_eval":
        keep = (torch.rand(x.shape[0], 1, *x.shape[2:], generator=generator) < 0.5)
        r = keep.to(x.dtype)
        loss = F.cross_entropy(model.predictor(select(x, r, model.fill)), y)
        _assign(pred, torch.autograd.grad(loss, pred))
        out = {"loss_p": loss, "loss": loss, "area": r.mean()}
    elif variant == "realx":
        if detector is None:
            raise ValueError("the REAL-X-style selector needs the black box (detector=)")
        with torch.no_grad():
            target = F.log_softmax(detector(x), 1)
        m = model.explain(x)
        logp = F.log_softmax(model.predictor(select(x, m, model.fill)), 1)
        kl = F.kl_div(logp, target, log_target=True, reduction="batchmean")
        area = mask_area(m).mean()
        loss = kl + realx_lambda * area
        _assign(sel, torch.autograd.grad(loss, sel))
        out = {"loss_p": F.nll_loss(logp, y), "kl": kl, "loss": loss, "area": area}
    else:
        raise ValueError(f"unknown variant {variant!r}; use one of {VARIANTS}")
    return {k: float(v.detach()) for k, v in out.items() if k != "mask"}


@renamed_options(batch="batch_size")
@torch.no_grad()
def validate(model: ComprehensiveAttributionModel, detector: nn.Module | None,
             images: torch.Tensor, labels: torch.Tensor,
             batch_size: int | None = 256) -> dict[str, float]:
    """Validation accuracy of f_P(x_s), mean mask area and, with a detector, the detector's
    accuracy on the complement x_{1−s} (low = the selector left no class evidence);
    ``batch_size`` images per forward pass."""
    check_batch_size(batch_size)
    was = model.training
    model.eval()
    correct = comp = 0
    area = 0.0
    try:
        for rows in chunks(len(images), batch_size):
            x, y = images[rows], labels[rows]
            m = model.explain(x)
            correct += int((model.predictor(select(x, m, model.fill)).argmax(1) == y).sum())
            area += float(mask_area(m).sum())
            if detector is not None:
                comp += int((detector(complement(x, m, model.fill)).argmax(1) == y).sum())
    finally:
        model.train(was)
    n = max(len(images), 1)
    out = {"val_acc": correct / n, "val_area": area / n}
    if detector is not None:
        out["val_complement_acc"] = comp / n
    return out
