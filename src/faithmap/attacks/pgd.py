"""Projected gradient descent in the L2 ball (Madry et al., 2018), batched."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _l2(v: torch.Tensor) -> torch.Tensor:
    """Per-sample L2 norm, shaped to broadcast against ``v``."""
    return v.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (v.dim() - 1))


def project_l2(delta: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Project ``delta`` onto the L2 ball of radius ``eps``, then keep ``x + delta`` in [0, 1].

    The box clamp can only shrink the norm, so the result lies in both sets.
    """
    delta = delta * (eps / _l2(delta)).clamp_max(1.0)
    return (x + delta).clamp(0.0, 1.0) - x


def pgd_l2(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = True,
    targeted: bool = False,
    loss_fn: Loss | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Adversarial examples ``x_adv`` with ``‖x_adv − x‖₂ ≤ eps`` per sample, in [0, 1].

    Maximises ``loss_fn(model(x_adv), y)`` (cross-entropy by default; minimised when
    ``targeted``) with normalised-gradient steps of ``step_size`` (default 2.5·eps/steps)
    from a uniform random start in the ball. Gradients are taken with respect to the input
    only: the model's parameters, ``.grad`` fields and mode are left as they are. Returns a
    detached tensor.
    """
    if eps < 0 or steps < 0:
        raise ValueError("eps and steps must be non-negative")
    loss_fn = loss_fn or (lambda out, t: F.cross_entropy(out, t, reduction="sum"))
    step = step_size if step_size is not None else 2.5 * eps / max(steps, 1)
    x = x.detach()
    delta = torch.zeros_like(x)
    if random_start and eps > 0:
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        radius = torch.rand(len(x), generator=generator, dtype=x.dtype).to(x.device)
        radius = radius.pow(1.0 / x[0].numel()).view(-1, *[1] * (x.dim() - 1))
        delta = project_l2(noise / _l2(noise) * radius * eps, x, eps)
    sign = -1.0 if targeted else 1.0
    for _ in range(steps):
        delta.requires_grad_(True)
        with torch.enable_grad():
            loss = loss_fn(model(x + delta), y)
            (grad,) = torch.autograd.grad(loss, delta)
        delta = project_l2(delta.detach() + sign * step * grad / _l2(grad), x, eps)
    return (x + delta).detach()
