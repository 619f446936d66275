"""Geometry of the input space: the one parser of the input box ``bounds``, norms, and the
projection onto a ball of ``radius`` (L2 or L∞) intersected with the box.

``bounds`` is ``(lo, hi)`` with scalars or one value per channel (a model that normalises
inside takes images in [0, 1]: ``bounds=(0, 1)``); it becomes a :data:`Box` of two
1×C×1×1 tensors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .errors import InvalidInputError

NORMS = ("l2", "linf")
Box = tuple[torch.Tensor, torch.Tensor] | None
BoundsLike = tuple[float | Sequence[float] | torch.Tensor, float | Sequence[float] | torch.Tensor]


def check_norm(norm: object) -> str:
    """``"l2"`` or ``"linf"`` (aliases ``2``, ``"L2"``, ``"inf"``, ``"Linf"``)."""
    key = str(norm).strip().lower().replace("∞", "inf")
    key = {"2": "l2", "inf": "linf", "l_inf": "linf", "l_2": "l2"}.get(key, key)
    if key not in NORMS:
        raise ValueError(f"norm must be 'l2' or 'linf', got {norm!r}")
    return key


def as_box(bounds: BoundsLike | None, x: torch.Tensor, check: bool = True) -> Box:
    """The one parser of ``bounds``: ``(lo, hi)`` as 1×C×1×1 tensors from scalars or C
    per-channel values (``None`` stays ``None``); with ``check``, x must lie inside."""
    if bounds is None:
        return None
    try:
        lo, hi = bounds
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bounds must be a pair (lo, hi) or None, got {bounds!r}") from exc
    c = x.shape[1]

    def channel(v: object, name: str) -> torch.Tensor:
        t = torch.as_tensor(v, dtype=x.dtype, device=x.device).detach()
        if t.dim() == 0:
            t = t.expand(c)
        if t.dim() != 1 or t.numel() != c:
            raise ValueError(f"bounds {name} must be a scalar or {c} per-channel values, "
                             f"got shape {tuple(t.shape)}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"bounds {name} must be finite")
        return t.view(1, c, 1, 1)

    lo_t, hi_t = channel(lo, "lo"), channel(hi, "hi")
    if not bool((lo_t < hi_t).all()):
        raise ValueError("bounds need lo < hi in every channel")
    if not check:
        return lo_t, hi_t
    tol = 1e-5 * float((hi_t - lo_t).max())
    outside = ((x < lo_t - tol) | (x > hi_t + tol)).flatten(2).any(2)  # N×C
    if bool(outside.any()):
        i, ch = (int(v) for v in torch.nonzero(outside)[0])
        raise InvalidInputError(
            f"inputs lie outside bounds (sample {i}, channel {ch}); pass the valid input range "
            "of your model, per channel when it normalises inside (or bounds=None)")
    return lo_t, hi_t


def l2_norm(v: torch.Tensor) -> torch.Tensor:
    """Per-sample L2 norm, shaped to broadcast against ``v``."""
    return v.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (v.dim() - 1))


def norm_of(delta: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-row ‖δ‖₂ or ‖δ‖_∞ (shape R)."""
    flat = delta.flatten(1)
    return flat.norm(dim=1) if norm == "l2" else flat.abs().amax(1)


def farthest_in_box(x: torch.Tensor, box: Box, norm: str) -> torch.Tensor:
    """Per-row distance ‖max(x − lo, hi − x)‖_p from x to the box's farthest corner: no point
    of the box is farther (inf without a box)."""
    if box is None:
        return torch.full((x.shape[0],), math.inf, dtype=x.dtype, device=x.device)
    return norm_of(torch.maximum(x - box[0], box[1] - x), norm)


def project(delta: torch.Tensor, x: torch.Tensor, radius: torch.Tensor, norm: str,
            box: Box) -> torch.Tensor:
    """Project δ onto {‖δ‖_p ≤ radius} (one radius per row), then keep x + δ in the box.

    Clamping into a box that contains x never increases ‖δ‖_p, so the result lies in both."""
    e = radius.view(-1, *[1] * (delta.dim() - 1))
    if norm == "l2":
        delta = delta * (e / l2_norm(delta)).clamp_max(1.0)
    else:
        delta = torch.maximum(torch.minimum(delta, e), -e)
    return clip_to_box(x + delta, box) - x


def clip_to_box(x: torch.Tensor, box: Box) -> torch.Tensor:
    """``x`` clamped into ``box`` (per channel); unchanged for ``box=None``."""
    if box is None:
        return x
    return torch.minimum(torch.maximum(x, box[0]), box[1])


def unit_box(x: torch.Tensor) -> Box:
    """The box [0, 1] in every channel of ``x``."""
    return as_box((0.0, 1.0), x, check=False)
