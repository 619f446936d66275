"""Explanation-manipulation attacks (Ghorbani, Abid & Zou, AAAI 2019).

Small input perturbations that keep the predicted label and push an explanation away:
gradient attacks through a Softplus copy of the model (double backward) for explainers with a
differentiable form (:meth:`~faithmap.core.explainer.Explainer.attribute_differentiable`:
Saliency, Input×Gradient, Integrated Gradients, SmoothGrad), seeded random search otherwise.
Used by ``faithmap.metrics.manipulation_attack``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from ..core.batching import chunks
from ..core.deprecation import renamed_options
from ..core.errors import InvalidInputError, TargetError
from ..core.explainer import Explainer
from ..core.geometry import BoundsLike, as_box, clip_to_box
from ..core.registry import ExplainerLike, ExplainFn, get_explainer
from ..core.seeding import derived_rows, randn_rows
from ..core.targets import Target, TargetLike, row_targets
from ..core.validation import check_positive_int


def topk_intersection(a: torch.Tensor, b: torch.Tensor, k: int) -> torch.Tensor:
    """|top-k(map a) ∩ top-k(map b)| / k on the abs-summed maps (Ghorbani et al.)."""
    ma, mb = _abs_map(a), _abs_map(b)
    ia = torch.zeros_like(ma, dtype=torch.bool).scatter_(1, ma.topk(k, dim=1).indices, True)
    ib = torch.zeros_like(mb, dtype=torch.bool).scatter_(1, mb.topk(k, dim=1).indices, True)
    return (ia & ib).sum(1).to(a.dtype) / k


def _abs_map(a: torch.Tensor) -> torch.Tensor:
    return (a.abs().sum(1) if a.dim() == 4 else a.abs()).flatten(1)


# --- manipulation attack -----------------------------------------------------------------

def softplus_copy(model: nn.Module, beta: float) -> nn.Module:
    """A deep copy of ``model`` with every ``nn.ReLU`` module replaced by Softplus(β).

    The user's model is not touched. ReLUs called functionally (``F.relu``) stay ReLUs.
    """
    soft = copy.deepcopy(model)
    for parent in list(soft.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(parent, name, nn.Softplus(beta=beta))
    for p in soft.parameters():
        p.requires_grad_(False)
    return soft


def differentiable_explanation(
    e: Explainer, soft: nn.Module, x: torch.Tensor, target: TargetLike
) -> torch.Tensor:
    """E(x) of a differentiable explainer ``e`` on the surrogate ``soft``, differentiable in x."""
    return e.attribute_differentiable(x, Target(target, x.shape[0]), soft)


def _normalised_map(a: torch.Tensor) -> torch.Tensor:
    m = _abs_map(a)
    return m / m.sum(1, keepdim=True).clamp_min(1e-30)


def _centre(m: torch.Tensor, h: int, w: int) -> torch.Tensor:
    ii = torch.arange(h, device=m.device, dtype=m.dtype).repeat_interleave(w)
    jj = torch.arange(w, device=m.device, dtype=m.dtype).repeat(h)
    return torch.stack([(m * ii).sum(1), (m * jj).sum(1)], 1)


def default_region(h: int, w: int, device: torch.device) -> torch.Tensor:
    """Bottom-right 4×4 pixels (Ghorbani et al./DANCE), scaled by size/224 above 224 px."""
    sh, sw = max(4, round(4 * h / 224)), max(4, round(4 * w / 224))
    region = torch.zeros(h, w, dtype=torch.bool, device=device)
    region[h - min(sh, h):, w - min(sw, w):] = True
    return region


def _objective(
    attack: str, a0: torch.Tensor, k: int, region: torch.Tensor | None, h: int, w: int
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """D(E(x̂)) per sample for rows whose original sample is ``s`` (to maximise)."""
    m0 = _normalised_map(a0)
    if attack == "topk":
        top = torch.zeros_like(m0, dtype=torch.bool).scatter_(1, m0.topk(k, dim=1).indices, True)
        return lambda a, s: -(_normalised_map(a) * top[s]).sum(1)
    if attack == "targeted":
        assert region is not None
        return lambda a, s: (_normalised_map(a) * region[s]).sum(1)
    c0 = _centre(m0, h, w)
    return lambda a, s: (_centre(_normalised_map(a), h, w) - c0[s]).norm(dim=1)


def _region(region: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    if region is None:
        return default_region(h, w, x.device).flatten().expand(n, -1)
    r = torch.as_tensor(region, device=x.device)
    if r.dim() == 4 and r.shape[1] == 1:
        r = r[:, 0]
    if r.shape[-2:] != (h, w) or r.dim() not in (2, 3) or (r.dim() == 3 and r.shape[0] != n):
        raise InvalidInputError(f"target_region must be H×W or N×H×W, got {tuple(r.shape)}")
    r = r.bool().expand(n, h, w).flatten(1)
    if not bool(r.any(1).all()):
        raise InvalidInputError("target_region is empty for some sample")
    return r


@renamed_options(epsilon="radius", input_range="bounds")
def manipulate(
    model: nn.Module,
    x: torch.Tensor,
    a0: torch.Tensor,
    target: Target,
    explain: ExplainFn,
    explainer: ExplainerLike | None,
    *,
    attack: str,
    k: int | None,
    radius: float,
    steps: int,
    step_size: float | None,
    target_region: torch.Tensor | None,
    bounds: BoundsLike | None,
    beta: float,
    n_candidates: int,
    seed: int,
    batch_size: int | None,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The attacked inputs x̂, their explanations E(x̂), and k (see manipulation_attack).

    x̂ stays in the L∞ ball of ``radius`` around x intersected with the box ``bounds``
    (:func:`~faithmap.core.geometry.as_box`); samples are attacked in chunks of
    ``batch_size // rows per sample`` (:func:`~faithmap.core.batching.chunks`)."""
    if attack not in ("topk", "targeted", "mass_center"):
        raise ValueError(f"attack must be 'topk', 'targeted' or 'mass_center', got {attack!r}")
    if not radius >= 0 or (step_size is not None and not step_size > 0):
        raise ValueError("radius must be >= 0 and step_size > 0")
    check_positive_int("n_candidates", n_candidates)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    kk = max(1, round(0.1 * h * w)) if k is None else check_positive_int("k", k)
    if kk > h * w:
        raise ValueError(f"k={kk} exceeds the {h * w} pixels of a map")
    box = as_box(bounds, x)
    with torch.no_grad():
        logits = model(x)
    if logits.dim() != 2:
        raise TargetError("manipulation_attack needs N×K class scores to check the label")
    label = logits.argmax(1)
    region = _region(target_region, x) if attack == "targeted" else None
    objective = _objective(attack, a0, kk, region, h, w)
    step = radius / 4 if step_size is None else step_size

    def project(xa: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """x̂ into the L∞ ball {‖x̂ − x‖∞ ≤ radius} (a box around x), then into ``bounds``."""
        return clip_to_box(clip_to_box(xa, (x[s] - radius, x[s] + radius)), box)

    def evaluate(xa: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """D under the real explainer (−inf where the label changed) and E(xa)."""
        with torch.no_grad():
            keep = model(xa).argmax(1) == label[s]
        with derived_rows(s.cpu(), [0] * len(s)):  # a stochastic explainer's draws follow
            a = explain(xa, row_targets(target, s.cpu())).detach()  # each row's sample
        d = objective(a.view(a.shape[0], *a0.shape[1:]), s)
        return torch.where(keep, d, torch.full_like(d, -torch.inf)), a

    best_d = objective(a0, torch.arange(n, device=x.device))
    best_x, best_a = x.clone(), a0.clone().reshape(n, *a0.shape[1:])
    e = get_explainer(model, explainer) if isinstance(explainer, str) else explainer
    gradient_based = isinstance(e, Explainer) and e.differentiable
    soft = softplus_copy(model, beta) if gradient_based and steps > 0 else None
    per_sample = e.rows_per_sample() if gradient_based else n_candidates
    group = None if batch_size is None else max(1, batch_size // per_sample)
    for rows in chunks(n, group):
        s = rows.to(x.device)
        if soft is not None:
            _gradient_attack(e, soft, x, s, target, objective, project, evaluate, steps, step,
                             best_d, best_x, best_a)
        else:
            _random_search(x, s, seed, n_candidates, project, evaluate, steps, step,
                           best_d, best_x, best_a)
    return best_x, best_a, kk


def _keep_better(s, d, xa, a, best_d, best_x, best_a) -> None:  # noqa: ANN001 - internal
    better = d > best_d[s]
    if bool(better.any()):
        idx = s[better]
        best_d[idx], best_x[idx] = d[better], xa[better]
        best_a[idx] = a[better].view(-1, *best_a.shape[1:])


def _gradient_attack(e, soft, x, s, target, objective, project, evaluate, steps, step,  # noqa: ANN001
                     best_d, best_x, best_a) -> None:
    """Iterative signed-gradient ascent on D through the softplus surrogate (Ghorbani et al.)."""
    xa = x[s].clone()
    tgt = row_targets(target, s.cpu())
    for _ in range(steps):
        leaf = xa.detach().requires_grad_(True)
        with torch.enable_grad(), derived_rows(s.cpu(), [0] * len(s)):
            a = differentiable_explanation(e, soft, leaf, tgt)
            (g,) = torch.autograd.grad(objective(a, s).sum(), leaf)
        xa = project(xa + step * g.sign(), s)
        d, a_real = evaluate(xa, s)
        _keep_better(s, d, xa, a_real, best_d, best_x, best_a)


def _random_search(x, s, seed, n_candidates, project, evaluate, steps, step,  # noqa: ANN001
                   best_d, best_x, best_a) -> None:
    """Black-box attack: keep the best of ``n_candidates`` random-sign steps per iteration."""
    r = n_candidates
    rs = s.repeat_interleave(r)
    for t in range(steps):
        keys = [(int(i), t, c) for i in s for c in range(r)]
        direction = randn_rows(seed, keys, tuple(x.shape[1:]), x.dtype, x.device).sign()
        cand = project(best_x[rs] + step * direction, rs)
        d, a = evaluate(cand, rs)
        d, a, cand = d.view(len(s), r), a.view(len(s), r, -1), cand.view(len(s), r, *x.shape[1:])
        pick = d.argmax(1)
        rows = torch.arange(len(s), device=x.device)
        _keep_better(s, d[rows, pick], cand[rows, pick], a[rows, pick], best_d, best_x, best_a)
