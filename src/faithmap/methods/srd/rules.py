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


def ghost_like(t: torch.Tensor, cdim: int = 1) -> torch.Tensor:
    """An all-zero carrier for relevance on the PFVs of ``t``: ``t``'s shape with the
    channel dimension ``cdim`` of size 1 (N×1×H×W for an N×C×H×W map)."""
    shape = list(t.shape)
    shape[cdim] = 1
    return t.new_zeros(shape)


class Boundary(torch.autograd.Function):
    """Gate boundary (a ReLU, or any elementwise activation v = f(z) = g(z) ⊙ z with the gate
    g frozen at the forward): forward (f(z), ghost); backward (g, r) ↦ (Σ_c v g + r) z/||z||²
    (channels along ``cdim``). ``fn=None`` is ReLU."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, name: str, rec: Recorder, fn: Any = None,
                cdim: int = 1) -> tuple:
        v = torch.relu(z) if fn is None else fn(z)
        ctx.save_for_backward(z, v)
        ctx.name, ctx.rec, ctx.cdim = name, rec, cdim
        return v, ghost_like(z, cdim)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor, carried: torch.Tensor) -> tuple:
        z, v = ctx.saved_tensors
        rel = (v * g).sum(dim=ctx.cdim, keepdim=True) + carried
        ctx.rec.maps[ctx.name] = rel.detach().movedim(ctx.cdim, 1)
        return signal(rel, z, ctx.rec.eps, ctx.cdim), None, None, None, None


def _scaled(z: torch.Tensor, cdim: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(z/m, ||z/m||² per PFV (channels ``cdim`` of size 1), m) with m = max|z| per sample
    (1 where z ≡ 0)."""
    m = z.detach().abs().flatten(1).amax(dim=1)
    m = torch.where(m > 0, m, torch.ones_like(m)).view(-1, *([1] * (z.dim() - 1)))
    zs = z / m
    return zs, (zs * zs).sum(dim=cdim, keepdim=True), m


def signal(rel: torch.Tensor, z: torch.Tensor, eps: float, cdim: int = 1) -> torch.Tensor:
    """u = R ⊙ z / (||z||² + eps · mean_p ||z_p||²), channel norms per PFV (channels along
    ``cdim``), the mean per sample (``rel`` has size 1 along ``cdim``; ``eps=0``: exact
    division, 0 at z_p = 0)."""
    zs, n2, m = _scaled(z, cdim)
    scale = n2.flatten(1).mean(dim=1).view(-1, *([1] * (z.dim() - 1))) if eps else 0.0
    denom = (n2 + eps * scale) * m
    denom = torch.where(denom > 0, denom, torch.full_like(denom, float("inf")))
    return rel * zs / denom


def spread(rel: torch.Tensor, x: torch.Tensor, cdim: int = 1) -> torch.Tensor:
    """**[ours]** Relevance ``rel`` (size 1 along ``cdim``) that sits on zero PFVs of ``x``
    and has no ghost to ride on: its per-sample total is split over the sample's non-zero
    PFVs in proportion to their norms, and sent as the signal r ⊙ x/||x||² (so Σ_c x ⊙ signal
    = the total: conserved). A sample whose PFVs are all zero keeps nothing (nothing can
    carry it)."""
    xs, n2, _ = _scaled(x.detach(), cdim)
    norm = n2.sqrt()
    total = rel.flatten(1).sum(dim=1).view(-1, *([1] * (x.dim() - 1)))
    weight = norm / norm.flatten(1).sum(dim=1).clamp_min(1e-30).view_as(total)
    return signal(total * weight, x, 0.0, cdim)


class AffineConv(torch.autograd.Function):
    """conv2d(x, W, b) with the SRD backward (part 1: Jᵀg; part 2: per-tap bias share, on
    the ghost where the PFVs are zero — spread over the sample's PFVs without a ghost).
    Grouped convolutions share each group's bias by that group's tap norms (a grouped conv
    is G convolutions side by side); dilation is just the taps' spacing."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, ghost: torch.Tensor | None, weight: torch.Tensor,
                bias: torch.Tensor, stride: tuple, padding: tuple, dilation: tuple = (1, 1),
                groups: int = 1) -> torch.Tensor:
        ctx.save_for_backward(x, weight, bias)
        ctx.stride, ctx.padding, ctx.dilation, ctx.groups = stride, padding, dilation, groups
        ctx.has_ghost = ghost is not None
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple:
        x, weight, bias = ctx.saved_tensors
        part1 = torch.nn.grad.conv2d_input(x.shape, weight, g, ctx.stride, ctx.padding,
                                           ctx.dilation, ctx.groups)
        nones = (None,) * 6
        s = torch.einsum("o,nol->nl", bias, g.flatten(2))  # bias relevance per output pos.
        if not bool((s != 0).any()):
            return (part1, None, *nones)
        xs, n2, _ = _scaled(x)
        if ctx.groups == 1:
            active = (g != 0).flatten(2).any(dim=2).to(g.dtype)  # N×O: the target's channels
            rel = bias_share(xs, weight, s, active, ctx.stride, ctx.padding, ctx.dilation)
        else:
            rel = grouped_bias_share(xs, weight, bias, g, ctx.groups, ctx.stride, ctx.padding,
                                     ctx.dilation)
        zero = n2 == 0  # PFVs that cannot carry a signal: their share rides the ghost
        on_ghost = torch.where(zero, rel, torch.zeros_like(rel))
        to_x = signal(rel - on_ghost, x, 0.0)
        if not ctx.has_ghost and bool(zero.any()):
            to_x = to_x + spread(on_ghost, x)
        return (part1 + to_x, on_ghost if ctx.needs_input_grad[1] else None, *nones)


def bias_share(x: torch.Tensor, weight: torch.Tensor, s: torch.Tensor, active: torch.Tensor,
               stride: tuple, padding: tuple, dilation: tuple = (1, 1)) -> torch.Tensor:
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
    geo = {"padding": padding, "stride": stride, "dilation": dilation}
    wk = weight.reshape(o, c, k)
    inside = F.unfold(x.new_ones((1, 1, h, w)), (kh, kw), **geo)
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
        cols = F.unfold(x[i], (kh, kw), **geo)
        cols = cols.view(cols.shape[0], c, k, ell)
        act = None if everywhere else active[i, None, None, :]
        step = max(1, _CHUNK_ELEMENTS // max(1, cols.shape[0] * max(o, c) * k))
        norms = torch.cat([_tap_norms(wk, gram, cols[..., _span(pos)], act)
                           for pos in chunks(ell, step)], dim=-1)  # n×K×L
        total = norms.sum(dim=1, keepdim=True)
        share = torch.where(total > 0, norms / torch.where(total > 0, total, 1.0), uniform)
        out.append(share * s[i, None, :])
    return F.fold(torch.cat(out), (h, w), (kh, kw), **geo)


def grouped_bias_share(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                       g: torch.Tensor, groups: int, stride: tuple, padding: tuple,
                       dilation: tuple, unfold: bool = False) -> torch.Tensor:
    """**[ours]** The bias share of a grouped conv, group by group: s_{γ,p} = <b_γ, g_{γ,p}>
    (group γ's output channels) split over the taps by ||W_{γ,k} x_{γ,q}|| (group γ's input
    channels), uniform over the in-image taps where all of a group's norms are 0; folded to
    N×1×H×W. Depthwise (one channel per group) is elementwise. Chunked over samples."""
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    k, og = kh * kw, o // groups
    geo = {"padding": padding, "stride": stride, "dilation": dilation}
    wk = weight.reshape(groups, og, cg, k)
    s = torch.einsum("go,ngol->ngl", bias.view(groups, og), g.flatten(2).view(n, groups, og, -1))
    if cg == 1 and not unfold:  # depthwise: no unfold needed
        return _depthwise_share(x, weight, s.view(n, groups, *g.shape[2:]), stride, padding,
                                dilation)
    ell = s.shape[-1]
    inside = F.unfold(x.new_ones((1, 1, h, w)), (kh, kw), **geo)
    uniform = (inside / inside.sum(dim=1, keepdim=True).clamp_min(1))[:, None]  # 1×1×K×L
    step_n = max(1, _CHUNK_ELEMENTS // max(1, max(c, o) * k * ell))
    out = []
    for samples in chunks(n, step_n):
        i = _span(samples)
        cols = F.unfold(x[i], (kh, kw), **geo).view(-1, groups, cg, k, ell)
        if og == 1 and cg == 1:  # depthwise: |w_{c,k} x_{c,q}|
            norms = (wk.view(groups, k, 1) * cols[:, :, 0]).abs()
        else:
            norms = torch.einsum("gock,ngckl->ngokl", wk, cols).square().sum(dim=2).sqrt()
        total = norms.sum(dim=2, keepdim=True)  # n×G×1×L
        share = torch.where(total > 0, norms / torch.where(total > 0, total, 1.0), uniform)
        out.append((share * s[i, :, None, :]).sum(dim=1))  # n×K×L
    return F.fold(torch.cat(out), (h, w), (kh, kw), **geo)


def _depthwise_share(x: torch.Tensor, weight: torch.Tensor, s: torch.Tensor, stride: tuple,
                     padding: tuple, dilation: tuple) -> torch.Tensor:
    """:func:`grouped_bias_share` for one input channel per group (depthwise, any channel
    multiplier) without unfolding: the tap norm is |x_{c,q}| · ||w_{c,·,k}||, so the
    per-position total is a depthwise conv of |x| and the fold a transposed one."""
    c = x.shape[1]
    geo = (stride, padding, dilation, c)
    o, _, kh, kw = weight.shape  # G×1×kh×kw below: the norm over the channel multiplier
    wn = weight.reshape(c, o // c, kh * kw).norm(dim=1).view(c, 1, kh, kw)
    ax = x.abs()
    total = F.conv2d(ax, wn, None, *geo)
    zero = total == 0
    t = torch.where(zero, torch.zeros_like(s), s / torch.where(zero, 1.0, total))
    rel = ax * torch.nn.grad.conv2d_input(x.shape, wn, t, *geo)
    if bool(zero.any()):  # uniform over the in-image taps
        ones = torch.ones_like(wn)
        inside = F.conv2d(torch.ones_like(x[:1]), ones, None, *geo).clamp_min(1)
        u = torch.where(zero, s / inside, torch.zeros_like(s))
        rel = rel + torch.nn.grad.conv2d_input(x.shape, ones, u, *geo)
    return rel.sum(dim=1, keepdim=True)


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
