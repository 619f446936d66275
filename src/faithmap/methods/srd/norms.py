"""Normalisation layers as affine maps with a frozen scale **[ours]**.

LayerNorm y = γ ⊙ (x − mean(x)) / σ(x) + β: the centring is linear (bias-free, autograd),
the scale 1/σ(x) is frozen at the forward (a coefficient like a gate), γ scales and β is a
bias shared to the PFV it is added to (:func:`~.bias.add_bias`). GroupNorm is the same per
group of channels, RMSNorm has no centring, and a BatchNorm that cannot be folded into the
conv before it (after a concatenation, DenseNet; timm's functional ``F.batch_norm``) is the
per-channel affine map x ⊙ a + b with eval statistics. The forward values equal the layers'
own up to rounding.
"""

from __future__ import annotations

import torch

from .bias import add_bias


def layer_norm(x: torch.Tensor, shape: tuple, weight: torch.Tensor | None,
               bias: torch.Tensor | None, eps: float,
               ghost: torch.Tensor | None = None) -> torch.Tensor:
    dims = tuple(range(-len(shape), 0))
    xc = x - x.mean(dim=dims, keepdim=True)
    inv = torch.rsqrt(xc.detach().square().mean(dim=dims, keepdim=True) + eps)
    y = xc * inv
    if weight is not None:
        y = y * weight.detach()
    return y if bias is None else add_bias(y, x, bias, x.dim() - 1, ghost)


def rms_norm(x: torch.Tensor, shape: tuple, weight: torch.Tensor | None,
             eps: float | None) -> torch.Tensor:
    dims = tuple(range(-len(shape), 0))
    e = torch.finfo(x.dtype).eps if eps is None else eps
    y = x * torch.rsqrt(x.detach().square().mean(dim=dims, keepdim=True) + e)
    return y if weight is None else y * weight.detach()


def group_norm(x: torch.Tensor, groups: int, weight: torch.Tensor | None,
               bias: torch.Tensor | None, eps: float,
               ghost: torch.Tensor | None = None) -> torch.Tensor:
    n, c = x.shape[:2]
    xg = x.reshape(n, groups, -1)
    xc = xg - xg.mean(dim=2, keepdim=True)
    inv = torch.rsqrt(xc.detach().square().mean(dim=2, keepdim=True) + eps)
    y = (xc * inv).view_as(x)
    shape = (1, c, *([1] * (x.dim() - 2)))
    if weight is not None:
        y = y * weight.detach().view(shape)
    return y if bias is None else add_bias(y, x, bias.view(shape), 1, ghost)


def batch_norm(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor,
               weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float,
               ghost: torch.Tensor | None = None) -> torch.Tensor:
    """Eval-mode batch norm on N×C×... as x ⊙ a + b, a = γ/√(var + eps), b = β − mean·a."""
    a = torch.rsqrt(var.detach() + eps)
    if weight is not None:
        a = a * weight.detach()
    b = -mean.detach() * a
    if bias is not None:
        b = b + bias.detach()
    shape = (1, x.shape[1], *([1] * (x.dim() - 2)))
    return add_bias(x * a.view(shape), x, b.view(shape), 1, ghost)
