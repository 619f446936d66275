"""Bias rules for per-position affine maps and constant tokens **[ours]**.

A per-position affine map y_p = A x_p + b_p (a Linear on tokens or on channel-last maps, a
BatchNorm that cannot be folded, LayerNorm's shift, a positional embedding or any constant
added in ``forward``) has one "tap" per output PFV: the input PFV at the same position. The
paper's bias share by tap norms then gives the whole bias to that PFV, so its relevance
s_p = <b_p, g_p> is sent back as the signal s_p x_p/||x_p||² (:class:`BiasShare`). A zero
PFV cannot carry a signal: its share rides the ghost when there is one and is otherwise
spread over the sample's non-zero PFVs (:func:`~.rules.spread`).

A constant concatenated to the activations (ViT's class token) is a PFV no input made: the
relevance that reaches it, Σ_c c ⊙ g, is split over the non-constant PFVs of the
concatenation in proportion to their norms (:class:`ConstShare`), like a bias shared by tap
norms with every input PFV as a tap.
"""

from __future__ import annotations

from typing import Any

import torch

from .rules import _scaled, signal, spread


class BiasShare(torch.autograd.Function):
    """out = y + bias (y = the bias-free part computed from x, same positions); backward
    passes g to y and adds the bias relevance Σ_c bias ⊙ g per PFV to x as a signal (or to
    its ghost where x's PFV is zero)."""

    @staticmethod
    def forward(ctx: Any, y: torch.Tensor, x: torch.Tensor, ghost: torch.Tensor | None,
                bias: torch.Tensor, cdim: int) -> torch.Tensor:
        ctx.save_for_backward(x, bias)
        ctx.cdim, ctx.has_ghost = cdim, ghost is not None
        return y + bias

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple:
        x, bias = ctx.saved_tensors
        s = (bias * g).sum(dim=ctx.cdim, keepdim=True)
        if s.shape != x.sum(dim=ctx.cdim, keepdim=True).shape:  # broadcast over positions
            s = s.expand(x.sum(dim=ctx.cdim, keepdim=True).shape)
        _, n2, _ = _scaled(x.detach(), ctx.cdim)
        zero = n2 == 0
        on_ghost = torch.where(zero, s, torch.zeros_like(s))
        to_x = signal(s - on_ghost, x, 0.0, ctx.cdim)
        ghost = None
        if bool(zero.any()):
            if ctx.has_ghost and ctx.needs_input_grad[2]:
                ghost = on_ghost
            else:
                to_x = to_x + spread(on_ghost, x, ctx.cdim)
        return g, to_x, ghost, None, None


def add_bias(y: torch.Tensor, x: torch.Tensor, bias: torch.Tensor, cdim: int,
             ghost: torch.Tensor | None = None) -> torch.Tensor:
    """y + bias with the bias relevance shared to x's PFVs (plain ``y + bias`` when x carries
    no relevance)."""
    if not x.requires_grad:
        return y + bias
    if ghost is not None and ghost.shape != x.sum(dim=cdim, keepdim=True).shape:
        ghost = None
    return BiasShare.apply(y, x, ghost, bias.detach(), cdim)


class ConstShare(torch.autograd.Function):
    """Identity on a concatenation ``out`` whose positions marked by ``const`` (size 1 along
    ``cdim``, True = a constant PFV) hold no input; backward adds the constants' relevance
    Σ Σ_c out ⊙ g to the other PFVs in proportion to their norms."""

    @staticmethod
    def forward(ctx: Any, out: torch.Tensor, const: torch.Tensor, cdim: int) -> torch.Tensor:
        ctx.save_for_backward(out, const)
        ctx.cdim = cdim
        return out.view_as(out)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple:
        out, const = ctx.saved_tensors
        rel = (out * g).sum(dim=ctx.cdim, keepdim=True) * const
        free = torch.where(const, torch.zeros_like(out), out)
        return g + spread(rel, free, ctx.cdim), None, None
