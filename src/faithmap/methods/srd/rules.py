"""SRD rules as autograd functions (Han et al., ICLR 2024, arXiv 2402.03348).

The relevance recursion R^l_q = Σ_p μ_{q→p} R^{l+1}_p with sharing ratios
μ_{q→p} = <c_{q→p}, z_p>/||z_p||² runs as one backward pass:

* :class:`Boundary` (a ReLU): forward ``relu(z)``; backward receives the signal ``g`` at the
  post-activation PFVs v, forms the relevance ``R = Σ_c v ⊙ g`` and sends back
  ``u = R ⊙ z/||z||²`` (the pre-activation z is the target vector).
* Linear ops without bias (max-pool with its forward routing, avg-pool, add, flatten)
  use plain autograd: the bias-free part of Σ_p μ_{q→p} R_p is v_q · [Jᵀ u]_q.
* :class:`AffineConv` (conv / linear with folded BatchNorm): backward = Jᵀu (a
  ``conv_transpose2d``) plus the bias share: s_p = <b, g_p> split among the kernel taps in
  proportion to ||W_k x_q|| (computed with ``unfold``, chunked), folded back to the input
  positions as relevance r and sent on as r ⊙ x/||x||².
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ...core.batching import chunks

_CHUNK_ELEMENTS = 1 << 23


class Recorder:
    """Collects the relevance map at every boundary during the backward pass."""

    def __init__(self, eps: float, per_channel: bool = False) -> None:
        self.eps = eps
        self.per_channel = per_channel
        self.maps: dict[str, torch.Tensor] = {}


class Boundary(torch.autograd.Function):
    """ReLU boundary: forward relu(z); backward g ↦ (Σ_c v g) z/||z||²."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, name: str, rec: Recorder) -> torch.Tensor:
        v = torch.relu(z)
        ctx.save_for_backward(z, v)
        ctx.name, ctx.rec = name, rec
        return v

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        z, v = ctx.saved_tensors
        rel = (v * g).sum(dim=1, keepdim=True)
        ctx.rec.maps[ctx.name] = rel.detach()
        return signal(rel, z, ctx.rec.eps), None, None


def signal(rel: torch.Tensor, z: torch.Tensor, eps: float) -> torch.Tensor:
    """u = R ⊙ z/||z||² (channel norm per PFV; ``rel`` is N×1×... )."""
    return rel * z / ((z * z).sum(dim=1, keepdim=True) + eps)


class AffineConv(torch.autograd.Function):
    """conv2d(x, W, b) with the SRD backward (part 1: Jᵀg; part 2: per-tap bias share)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                stride: tuple, padding: tuple, eps: float) -> torch.Tensor:
        ctx.save_for_backward(x, weight, bias)
        ctx.stride, ctx.padding, ctx.eps = stride, padding, eps
        return F.conv2d(x, weight, bias, stride, padding)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple:
        x, weight, bias = ctx.saved_tensors
        part1 = torch.nn.grad.conv2d_input(x.shape, weight, g, ctx.stride, ctx.padding)
        s = torch.einsum("o,nol->nl", bias, g.flatten(2))  # bias relevance per output pos.
        if not bool((s != 0).any()):
            return part1, None, None, None, None, None
        active = (g != 0).flatten(2).any(dim=2).to(g.dtype)  # N×O: the target's channels
        rel = bias_share(x, weight, s, active, ctx.stride, ctx.padding)
        return part1 + signal(rel, x, ctx.eps), None, None, None, None, None


def bias_share(x: torch.Tensor, weight: torch.Tensor, s: torch.Tensor, active: torch.Tensor,
               stride: tuple, padding: tuple) -> torch.Tensor:
    """Split s (N×L, per output position) over the taps by ||W_k x_q||; fold to N×1×H×W.

    The norm runs over the ``active`` output channels (N×O) — those the upstream signal
    measures: all of z inside the network, only the target logit at a linear head.
    Where every tap sees a zero PFV the share is dropped: a zero PFV cannot carry relevance.
    Chunked over samples and positions: memory ≈ _CHUNK_ELEMENTS floats.
    """
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    k = kh * kw
    ell = s.shape[-1]
    wk = weight.reshape(o, c, k)
    step_n = max(1, _CHUNK_ELEMENTS // max(1, c * k * ell))
    out = []
    for samples in chunks(n, step_n):
        i = _span(samples)
        cols = F.unfold(x[i], (kh, kw), padding=padding, stride=stride)
        cols = cols.view(cols.shape[0], c, k, ell)
        act = active[i, :, None, None]
        step = max(1, _CHUNK_ELEMENTS // max(1, cols.shape[0] * o * k))
        norms = torch.cat([
            (torch.einsum("ock,nckl->nokl", wk, cols[..., _span(pos)]) * act).norm(dim=1)
            for pos in chunks(ell, step)
        ], dim=-1)  # n×K×L
        total = norms.sum(dim=1, keepdim=True)
        share = norms / total.clamp_min(1e-30)  # all taps zero: nowhere to put the share
        out.append(share * s[i, None, :])
    return F.fold(torch.cat(out), (h, w), (kh, kw), padding=padding, stride=stride)


def _span(rows: torch.Tensor) -> slice:
    """The consecutive indices of one :func:`~faithmap.core.batching.chunks` chunk as a slice
    (a view, no copy)."""
    return slice(int(rows[0]), int(rows[-1]) + 1)
