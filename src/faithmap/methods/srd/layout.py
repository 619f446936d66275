"""Where the channels are: the PFV layout of every activation in the replay **[ours]**.

A PFV is the channel vector at one position. Convolutions and batch norms work on N×C×H×W
(channels at dim 1), ``Linear`` and ``LayerNorm`` on the last dim (tokens N×L×C, ConvNeXt's
and Swin's channel-last N×H×W×C). :func:`channel_dim` follows the channel dimension through
permutes, transposes, reshapes, flattens, indexing and reductions, so a gate or a bias
added anywhere knows which vectors are its PFVs. ``None``: unknown (channels split, as in
an attention head reshape); :func:`default_cdim` then guesses (last dim of a 3-D token
tensor, else dim 1) — the guess only changes how relevance is grouped, never its total.
"""

from __future__ import annotations

import math
import operator

import torch
from torch import fx, nn

from ...core.modules import Normalize
from .attention import is_attention

_CHANNEL_FIRST = (nn.Conv2d, nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.MaxPool2d,
                  nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, Normalize)
_CHANNEL_LAST = (nn.Linear, nn.LayerNorm, nn.MultiheadAttention)


def default_cdim(t: torch.Tensor) -> int:
    return t.dim() - 1 if t.dim() == 3 else 1


def _norm(c: int | None, ndim: int) -> int | None:
    if c is None or not -ndim <= c < ndim:
        return None
    return c % ndim


def _first(args: tuple, cdims: dict) -> tuple[torch.Tensor | None, int | None]:
    """The largest tensor argument (by dims) and its channel dim."""
    best = (None, None)
    for a, c in args:
        if isinstance(a, torch.Tensor) and (best[0] is None or a.dim() > best[0].dim()):
            best = (a, c)
    return best


def _reshaped(c: int, old: tuple, new: tuple) -> int | None:
    before, size = math.prod(old[:c]), old[c]
    for j in range(len(new)):
        if math.prod(new[:j]) == before and new[j] == size:
            return j
    return None


def _indexed(c: int, ndim: int, index: object) -> int | None:
    idx = index if isinstance(index, tuple) else (index,)
    if any(i is Ellipsis for i in idx):
        k = idx.index(Ellipsis)
        fill = ndim - (len(idx) - 1 - sum(i is None for i in idx))
        idx = idx[:k] + (slice(None),) * fill + idx[k + 1:]
    dim, out = 0, 0
    for i in idx:
        if i is None:
            out += 1
            continue
        if dim == c:
            return out if isinstance(i, slice) else None
        if isinstance(i, slice):
            out += 1
        elif not isinstance(i, int):
            return None
        dim += 1
    return out + (c - dim) if c >= dim else None


def channel_dim(gm: fx.GraphModule, node: fx.Node, value: object,
                cdims: dict[fx.Node, int | None], env: dict) -> int | None:
    """The channel dim of ``node``'s output (``value``), from its inputs' channel dims."""
    out = value[0] if isinstance(value, tuple | list) and value and \
        isinstance(value[0], torch.Tensor) else value
    if not isinstance(out, torch.Tensor) or out.dim() < 2:
        return None
    nd = out.dim()
    if node.op == "placeholder":
        return 1
    if node.op == "call_module":
        m = gm.get_submodule(str(node.target))
        if isinstance(m, _CHANNEL_FIRST):
            return 1
        if isinstance(m, _CHANNEL_LAST) or is_attention(m):
            return nd - 1
    src = node.args[0] if node.args else None
    if isinstance(src, list | tuple) and src:
        src = src[0]
    c = cdims.get(src) if isinstance(src, fx.Node) else None
    a = env.get(src) if isinstance(src, fx.Node) else None
    name = node.target if node.op == "call_method" else getattr(node.target, "__name__", "")
    if name in ("linear", "layer_norm"):
        return nd - 1
    if c is None or not isinstance(a, torch.Tensor):
        pairs = [(env.get(arg), cdims.get(arg)) for arg in node.args
                 if isinstance(arg, fx.Node)]
        t, c2 = _first(pairs, cdims)
        if t is None or c2 is None:
            return None
        return _norm(c2 + nd - t.dim(), nd)
    ad = a.dim()
    rest = node.args[1:]
    if name == "permute":
        dims = rest[0] if len(rest) == 1 and isinstance(rest[0], list | tuple) else rest
        dims = [int(d) % ad for d in dims]
        return dims.index(c) if c in dims else None
    if name in ("transpose", "swapaxes"):
        i, j = (int(d) % ad for d in rest[:2])
        return j if c == i else i if c == j else c
    if name in ("reshape", "view", "flatten", "unflatten", "squeeze", "unsqueeze"):
        return _reshaped(c, tuple(a.shape), tuple(out.shape)) if a.shape[c] > 1 or \
            name != "squeeze" else None
    if node.target is operator.getitem and len(node.args) > 1:
        if isinstance(value, tuple | list) or not isinstance(a, torch.Tensor):
            return c
        return _norm(_indexed(c, ad, node.args[1]), nd)
    if nd == ad:
        return c
    if name in ("mean", "sum", "amax", "amin"):
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        if dims is None:
            return None
        dims = {int(d) % ad for d in (dims if isinstance(dims, list | tuple) else [dims])}
        return None if c in dims else c - sum(d < c for d in dims)
    if name == "stack":
        d = int(node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)) % nd
        return c + 1 if c >= d else c
    return _norm(c + nd - ad, nd)
