"""Attention with frozen softmax weights **[ours]**.

out = W_o (A ⊙_heads (W_v x + b_v)) + b_o with A = softmax(q kᵀ/√d + bias) frozen at the
forward: linear in the value path, the in/out projections affine per token. Attention
modules (``nn.MultiheadAttention``; timm's, Swin's and MaxViT's ``*Attention`` modules) run
their own code inside :func:`frozen_attention`, which swaps, for the duration of the call,

* ``F.softmax`` / ``torch.softmax`` / ``Tensor.softmax`` for a detached softmax (A is a
  coefficient; no relevance flows into q and k),
* ``F.scaled_dot_product_attention`` for softmax(q kᵀ·scale + mask) (detached) @ v,
* ``F.linear`` for a per-token affine map whose bias relevance is shared to the token it
  is added to (:func:`~.bias.add_bias`; channels last).

So the module's own arithmetic (padding, shifted windows, relative position biases) is
kept and only the two rules change. The swap is undone on exit, also on errors.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from .bias import add_bias

_LINEAR, _SOFTMAX, _TSOFTMAX = F.linear, F.softmax, torch.softmax
_TENSOR_SOFTMAX, _SDPA = torch.Tensor.softmax, F.scaled_dot_product_attention


def is_attention(m: torch.nn.Module) -> bool:
    """``nn.MultiheadAttention`` or a module whose class name ends in ``Attention`` or
    ``AttentionV2`` (timm's ``Attention``, torchvision's ``ShiftedWindowAttention(V2)``,
    MaxViT's ``RelativePositionalMultiHeadAttention``): a leaf run under
    :func:`frozen_attention`."""
    return isinstance(m, torch.nn.MultiheadAttention) or \
        re.search(r"Attention(V\d+)?$", type(m).__name__) is not None


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
            ) -> torch.Tensor:
    y = _LINEAR(x, weight)
    return y if bias is None else add_bias(y, x, bias, x.dim() - 1)


def _softmax(*args, **kwargs) -> torch.Tensor:
    return _SOFTMAX(*args, **kwargs).detach()


def _tsoftmax(*args, **kwargs) -> torch.Tensor:
    return _TSOFTMAX(*args, **kwargs).detach()


def _tensor_softmax(self: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    return _TENSOR_SOFTMAX(self, *args, **kwargs).detach()


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask=None,
          dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
          enable_gqa: bool = False) -> torch.Tensor:
    if dropout_p or enable_gqa:
        raise NotImplementedError("scaled_dot_product_attention with dropout or GQA")
    with torch.no_grad():
        s = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
        logits = q @ k.transpose(-2, -1) * s
        if is_causal:
            n, m = logits.shape[-2:]
            keep = torch.ones(n, m, dtype=torch.bool, device=q.device).tril()
            logits = logits.masked_fill(~keep, float("-inf"))
        if attn_mask is not None:
            logits = logits.masked_fill(~attn_mask, float("-inf")) \
                if attn_mask.dtype == torch.bool else logits + attn_mask
        attn = _SOFTMAX(logits, dim=-1)
    return attn @ v


@contextmanager
def frozen_attention() -> Iterator[None]:
    """Softmax weights frozen and projections with the bias rule, inside the block."""
    F.linear, F.softmax, torch.softmax = _linear, _softmax, _tsoftmax
    torch.Tensor.softmax = _tensor_softmax
    F.scaled_dot_product_attention = _sdpa
    try:
        yield
    finally:
        F.linear, F.softmax, torch.softmax = _LINEAR, _SOFTMAX, _TSOFTMAX
        torch.Tensor.softmax = _TENSOR_SOFTMAX
        F.scaled_dot_product_attention = _SDPA
