"""SRD rules as autograd functions (Han et al., ICLR 2024, arXiv 2402.03348).

The relevance recursion R^l_q = Σ_p μ_{q→p} R^{l+1}_p with sharing ratios
μ_{q→p} = <c_{q→p}, z_p>/||z_p||² runs as one backward pass:

* :class:`Boundary` (a ReLU): forward ``(relu(z), ghost)``; backward receives the signal
  ``g`` at the post-activation PFVs v and the *carried* relevance ``r`` on its ghost (see
  below), forms the relevance ``R = Σ_c v ⊙ g + r`` and sends back ``u = R ⊙ z/||z||²`` (the
  pre-activation z is the target vector).
* Linear ops without bias (max-pool with its forward routing, avg-pool, add, flatten)
  use plain autograd: the bias-free part of Σ_p μ_{q→p} R_p is v_q · [Jᵀ u]_q.
* :class:`AffineConv` (conv / linear with folded BatchNorm): backward = Jᵀu (a
  ``conv_transpose2d``) plus the bias share: s_p = <b, g_p> split among the kernel taps in
  proportion to ||W_k x_q|| (computed with ``unfold``, chunked), folded back to the input
  positions as relevance r and sent on as r ⊙ x/||x||².

The ghost: a PFV x_q = 0 cannot carry relevance as a signal (Σ_c x_q g_q = 0 whatever g is),
yet where *every* tap of an output position p sees a zero PFV, z_p is the bias alone and its
relevance must go somewhere. It is split equally over the in-image taps and, at those zero
PFVs, sent on a separate N×1×H×W "ghost" tensor that travels beside the activations
(through pass-through ops, pools and adds) to the ReLU boundary (or the input) the PFVs come
from, which adds it to its relevance. So nothing is dropped.

The stabiliser is scale-relative: ||z_p||² + eps · mean_p ||z_p||² (per sample, computed on
z / max|z|), so a model whose activations are tiny (1e-6) is explained like the same model
scaled up, and exact zeros give 0, never NaN.
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


def ghost_like(t: torch.Tensor) -> torch.Tensor:
    """An all-zero N×1×... carrier for relevance on the PFVs of ``t`` (N×C×... )."""
    return t.new_zeros((t.shape[0], 1, *t.shape[2:]))


class Boundary(torch.autograd.Function):
    """ReLU boundary: forward (relu(z), ghost); backward (g, r) ↦ (Σ_c v g + r) z/||z||²."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, name: str, rec: Recorder) -> tuple:
        v = torch.relu(z)
        ctx.save_for_backward(z, v)
        ctx.name, ctx.rec = name, rec
        return v, ghost_like(z)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor, carried: torch.Tensor) -> tuple:
        z, v = ctx.saved_tensors
        rel = (v * g).sum(dim=1, keepdim=True) + carried
        ctx.rec.maps[ctx.name] = rel.detach()
        return signal(rel, z, ctx.rec.eps), None, None


def _scaled(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(z/m, ||z/m||² per PFV (N×1×...), m) with m = max|z| per sample (1 where z ≡ 0)."""
    m = z.detach().abs().flatten(1).amax(dim=1)
    m = torch.where(m > 0, m, torch.ones_like(m)).view(-1, *([1] * (z.dim() - 1)))
    zs = z / m
    return zs, (zs * zs).sum(dim=1, keepdim=True), m


def signal(rel: torch.Tensor, z: torch.Tensor, eps: float) -> torch.Tensor:
    """u = R ⊙ z / (||z||² + eps · mean_p ||z_p||²), channel norms per PFV, the mean per
    sample (``rel`` is N×1×...; ``eps=0``: exact division, 0 at z_p = 0)."""
    zs, n2, m = _scaled(z)
    scale = n2.flatten(1).mean(dim=1).view(-1, *([1] * (z.dim() - 1))) if eps else 0.0
    denom = (n2 + eps * scale) * m
    denom = torch.where(denom > 0, denom, torch.full_like(denom, float("inf")))
    return rel * zs / denom


class AffineConv(torch.autograd.Function):
    """conv2d(x, W, b) with the SRD backward (part 1: Jᵀg; part 2: per-tap bias share, on
    the ghost where the PFVs are zero)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, ghost: torch.Tensor | None, weight: torch.Tensor,
                bias: torch.Tensor, stride: tuple, padding: tuple) -> torch.Tensor:
        ctx.save_for_backward(x, weight, bias)
        ctx.stride, ctx.padding = stride, padding
        return F.conv2d(x, weight, bias, stride, padding)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple:
        x, weight, bias = ctx.saved_tensors
        part1 = torch.nn.grad.conv2d_input(x.shape, weight, g, ctx.stride, ctx.padding)
        s = torch.einsum("o,nol->nl", bias, g.flatten(2))  # bias relevance per output pos.
        if not bool((s != 0).any()):
            return part1, None, None, None, None, None
        active = (g != 0).flatten(2).any(dim=2).to(g.dtype)  # N×O: the target's channels
        xs, n2, _ = _scaled(x)
        rel = bias_share(xs, weight, s, active, ctx.stride, ctx.padding)
        zero = n2 == 0  # PFVs that cannot carry a signal: their share rides the ghost
        on_ghost = torch.where(zero, rel, torch.zeros_like(rel))
        to_x = signal(rel - on_ghost, x, 0.0)
        return (part1 + to_x, on_ghost if ctx.needs_input_grad[1] else None,
                None, None, None, None)


def bias_share(x: torch.Tensor, weight: torch.Tensor, s: torch.Tensor, active: torch.Tensor,
               stride: tuple, padding: tuple) -> torch.Tensor:
    """Split s (N×L, per output position) over the taps by ||W_k x_q||; fold to N×1×H×W.

    ``x`` may be scaled per sample (only ratios of norms matter).
    The norm runs over the ``active`` output channels (N×O) — those the upstream signal
    measures: all of z inside the network, only the target logit at a linear head.
    Where every tap sees a zero PFV (all norms 0), the share is split equally over the taps
    inside the image (padding is no PFV), so Σ_q share = 1 always.
    Chunked over samples and positions: memory ≈ _CHUNK_ELEMENTS floats.
    """
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    k = kh * kw
    ell = s.shape[-1]
    wk = weight.reshape(o, c, k)
    inside = F.unfold(x.new_ones((1, 1, h, w)), (kh, kw), padding=padding, stride=stride)
    uniform = inside / inside.sum(dim=1, keepdim=True).clamp_min(1)  # 1×K×L
    rows = active.any(dim=0)
    if not bool(rows.all()):  # only the channels some sample's signal measures (a head)
        wk, active, o = wk[rows], active[:, rows], int(rows.sum())
    everywhere = bool((active == 1).all())
    gram = torch.einsum("ock,odk->kcd", wk, wk) if everywhere and c < o else None
    step_n = max(1, _CHUNK_ELEMENTS // max(1, c * k * ell))
    out = []
    for samples in chunks(n, step_n):
        i = _span(samples)
        cols = F.unfold(x[i], (kh, kw), padding=padding, stride=stride)
        cols = cols.view(cols.shape[0], c, k, ell)
        act = None if everywhere else active[i, None, None, :]
        step = max(1, _CHUNK_ELEMENTS // max(1, cols.shape[0] * max(o, c) * k))
        norms = torch.cat([_tap_norms(wk, gram, cols[..., _span(pos)], act)
                           for pos in chunks(ell, step)], dim=-1)  # n×K×L
        total = norms.sum(dim=1, keepdim=True)
        share = torch.where(total > 0, norms / torch.where(total > 0, total, 1.0), uniform)
        out.append(share * s[i, None, :])
    return F.fold(torch.cat(out), (h, w), (kh, kw), padding=padding, stride=stride)


def _tap_norms(wk: torch.Tensor, gram: torch.Tensor | None, cols: torch.Tensor,
               act: torch.Tensor | None) -> torch.Tensor:
    """||W_k x_q|| per tap (n×K×L) from unfolded PFVs ``cols`` (n×C×K×L); ``act`` (n×1×1×O)
    masks output channels; ``gram`` (K×C×C, when fewer inputs than outputs and no mask):
    ||W_k x||² = xᵀ (W_kᵀ W_k) x, cheaper than forming W_k x."""
    if gram is not None:
        q = (torch.einsum("kcd,ndkl->nckl", gram, cols) * cols).sum(dim=1)
        return q.clamp_min(0).sqrt()
    sq = torch.einsum("ock,nckl->nklo", wk, cols).square()
    if act is not None:
        sq = sq * act
    return sq.sum(dim=-1).sqrt()


def _span(rows: torch.Tensor) -> slice:
    """The consecutive indices of one :func:`~faithmap.core.batching.chunks` chunk as a slice
    (a view, no copy)."""
    return slice(int(rows[0]), int(rows[-1]) + 1)
