"""DANCE decoys (Lu et al., ICML 2021): patch perturbations that keep a layer's output.

For a patch mask M (1 on the p×p patch K, all channels) and a sign s ∈ {+1, −1}:

    maximise ‖((x̃ − x)·s)⁺‖₁  s.t.  ‖F_ℓ(x̃) − F_ℓ(x)‖_∞ ≤ ε,  x̃ ∈ [lo, hi],
    (x̃ − x)∘(1 − M) = 0,  optionally |x̃ − x| ≤ τ,

with ε the layer ``radius`` and [lo, hi] the input box (:func:`~faithmap.core.geometry.as_box`,
scalars or per channel).

Solver (our choice; the paper does not fix one): x̃ = clamp(x + M∘v) and Adam on v for the
penalised loss −‖(s·δ)⁺‖₁ + λ·Σ_u relu(|F_ℓ(x̃)_u − F_ℓ(x)_u| − ε)/ε, keeping the best
iterate whose constraint was *measured* to hold. Per decoy a step size η adapts: ×1.5 (at
most ``lr``) after a feasible iterate; ×0.5 after an infeasible one, whose next step starts
again from the best feasible iterate. A decoy stops when its objective has not grown by
``rtol`` for ``patience`` evaluations (early stop; it then leaves the batch). Per outer
round λ ×10 for decoys without a feasible non-zero iterate and ÷2 for the others. δ = 0 is
always feasible and is the fallback. Only the p×p patch values are optimised and stored
(rows × C × p × p), so the decoy changes nothing outside its patch by construction. Every
decoy of every image is one row of one batched problem, chunked by ``batch_size``; memory
does not grow with ``steps`` (no history is kept).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from ...core.adam import adam_direction
from ...core.batching import chunks
from ...core.geometry import Box
from ...core.seeding import BlockDraws


class _Stop(Exception):
    """Raised by the layer hook to end a forward pass at the constrained layer."""

    def __init__(self, output: torch.Tensor) -> None:
        super().__init__()
        self.output = output


@contextmanager
def _frozen(model: nn.Module) -> Iterator[None]:
    """Parameters temporarily excluded from autograd (only input gradients are needed)."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def layer_output(model: nn.Module, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """F_ℓ(x): ``module``'s output, the forward pass stopped right after it (hook removed)."""

    def hook(_m: nn.Module, _i: object, output: object) -> None:
        raise _Stop(output if isinstance(output, torch.Tensor) else torch.as_tensor(output))

    handle = module.register_forward_hook(hook)
    try:
        model(x)
    except _Stop as stop:
        return stop.output
    finally:
        handle.remove()
    raise RuntimeError("the constrained layer did not run during the forward pass")


def patch_grid(h: int, w: int, patch: int, stride: int, max_masks: int | None) -> torch.Tensor:
    """Top-left corners (M×2) of p×p patches at ``stride``, the last row/column flush with
    the border so every pixel is covered; ``max_masks`` keeps at most that many, evenly
    spread over the image: a centred kr×kc sub-grid of the rows and columns (kr/kc ≈ the
    grid's aspect), not every k-th patch in raster order (which lines up on a diagonal)."""
    def starts(n: int) -> list[int]:
        s = list(range(0, n - patch + 1, stride))
        return s if s[-1] == n - patch else [*s, n - patch]

    rows, cols = starts(h), starts(w)
    if max_masks is not None and len(rows) * len(cols) > max_masks:
        kr = min(len(rows), max(1, round(math.sqrt(max_masks * len(rows) / len(cols)))))
        kc = min(len(cols), max(1, max_masks // kr))
        rows, cols = _centred(rows, kr), _centred(cols, kc)
    return torch.tensor([(i, j) for i in rows for j in cols], dtype=torch.long)


def _centred(values: list[int], k: int) -> list[int]:
    """``k`` of ``values`` at the centres of k equal parts (i = ⌊(t + ½)·n/k⌋)."""
    n = len(values)
    return [values[int((t + 0.5) * n / k)] for t in range(k)]


def patch_index(corners: torch.Tensor, c: int, h: int, w: int, patch: int) -> torch.Tensor:
    """Flat indices into C·H·W of each corner's patch, rows × (C·p·p), in (c, i, j) order."""
    ar = torch.arange(patch)
    ii = corners[:, 0, None, None] + ar[None, :, None]  # M×p×1
    jj = corners[:, 1, None, None] + ar[None, None, :]  # M×1×p
    pix = (ii * w + jj).flatten(1)  # M×p²
    ch = torch.arange(c)[None, :, None] * (h * w)
    return (ch + pix[:, None, :]).flatten(1)


def embed(x_rows: torch.Tensor, index: torch.Tensor, patch_values: torch.Tensor) -> torch.Tensor:
    """x̃: ``x_rows`` with the patch entries at ``index`` replaced by ``patch_values``."""
    flat = x_rows.flatten(1).scatter(1, index, patch_values.flatten(1))
    return flat.view_as(x_rows)


@dataclass
class DecoySettings:
    """Solver settings (see module doc): ``radius`` ε (relative to max|F_ℓ(x)| per image
    when ``relative``), ``box`` the parsed input box (``as_box``; None: no box),
    ``patience``/``rtol`` the early stop (None: all ``steps``), ``grow``/``shrink`` η's
    factors after a feasible / infeasible iterate."""

    radius: float = 1e-2
    relative: bool = True
    steps: int = 150
    rounds: int = 1
    lr: float = 0.1
    lam: float = 1.0
    tau: float | None = None
    init: float = 0.05
    box: Box = None
    patience: int | None = 40
    rtol: float = 1e-3
    grow: float = 1.5
    shrink: float = 0.5


@dataclass
class Decoys:
    """Optimised decoys of N images: ``delta`` rows × C·p·p (row = sample·2M + 2·mask + sign
    index, sign +1 first), their flat ``index`` into C·H·W, ``deviation`` ‖F_ℓ(x̃) − F_ℓ(x)‖_∞
    measured on the kept decoy, ``radius`` ε per row, ``fallback`` (no feasible non-zero
    iterate found, δ = 0) and ``passes``, the truncated forward(+backward) rows the solver
    ran per image (early-stopped rows stop counting)."""

    delta: torch.Tensor
    index: torch.Tensor
    deviation: torch.Tensor
    radius: torch.Tensor
    fallback: torch.Tensor
    n_masks: int
    passes: torch.Tensor | None = None


def patch_box(box: Box, entries: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The box per patch entry (C·p·p values in (c, i, j) order) from a 1×C×1×1 box."""
    if box is None:
        return None
    per_channel = entries // box[0].shape[1]
    return (box[0].flatten().repeat_interleave(per_channel),
            box[1].flatten().repeat_interleave(per_channel))


def _clamp(t: torch.Tensor, box: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    """``t`` clamped into a per-entry box, with the gradient of a scalar clamp (1 strictly
    inside, 0 on and beyond the bounds; a tensor-bound clamp would pass ½ at ties)."""
    if box is None:
        return t
    inside = (t > box[0]) & (t < box[1])
    return torch.where(inside, t, torch.minimum(torch.maximum(t.detach(), box[0]), box[1]))


def _limits(x_patch: torch.Tensor, s: DecoySettings) -> tuple[torch.Tensor, torch.Tensor]:
    """Limits on v so that x + v stays in the box and |v| ≤ τ."""
    inf = torch.full_like(x_patch, torch.inf)
    lo, hi = -inf, inf
    box = patch_box(s.box, x_patch.shape[1])
    if box is not None:
        lo, hi = box[0] - x_patch, box[1] - x_patch
    if s.tau is not None:
        lo, hi = lo.clamp_min(-s.tau), hi.clamp_max(s.tau)
    return lo, hi


def _deviation(f: torch.Tensor, f0: torch.Tensor) -> torch.Tensor:
    return (f - f0).abs().flatten(1).amax(1)


def solve_rows(
    model: nn.Module, module: nn.Module, x: torch.Tensor, f0: torch.Tensor,
    radius: torch.Tensor, sample: torch.Tensor, index: torch.Tensor, sign: torch.Tensor,
    v0: torch.Tensor, s: DecoySettings,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One chunk of decoy rows: (best feasible δ on the patch, its measured deviation,
    fallback flag, solver passes per row). ``x`` and ``f0`` are indexed by ``sample``.

    Per row: evaluate the penalised loss at v (one truncated forward+backward), keep the
    iterate if it is feasible and better; an infeasible iterate sends v back to the best
    feasible one and shrinks the row's step η (×``shrink``), a feasible one grows it
    (×``grow``, at most ``lr``); then v ← v − η·Adam(∇). A row stops when its objective has
    not improved by a factor (1 + ``rtol``) for ``patience`` evaluations; stopped rows leave
    the batch, so they cost nothing more."""
    x_rows = x[sample]
    x_patch = x_rows.flatten(1).gather(1, index)
    lo, hi = _limits(x_patch, s)
    rows = len(sample)
    dev_ = x.device
    v = torch.maximum(torch.minimum(v0, hi), lo)
    sgn = sign[:, None].to(x.dtype)
    best = torch.zeros_like(x_patch)
    v_best = torch.zeros_like(x_patch)  # δ = 0: always feasible
    best_obj = torch.zeros(rows, dtype=x.dtype, device=dev_)
    best_dev = torch.zeros(rows, dtype=x.dtype, device=dev_)
    ref_obj = torch.zeros(rows, dtype=x.dtype, device=dev_)  # last "real" improvement
    since = torch.zeros(rows, dtype=torch.long, device=dev_)
    passes = torch.zeros(rows, dtype=torch.long, device=dev_)
    lam = torch.full((rows,), float(s.lam), dtype=x.dtype, device=dev_)
    eta = torch.full((rows, 1), float(s.lr), dtype=x.dtype, device=dev_)
    f0_rows, radius_rows = f0[sample], radius
    box = patch_box(s.box, x_patch.shape[1])
    active = torch.ones(rows, dtype=torch.bool, device=dev_)
    for _ in range(s.rounds):
        m1, m2 = torch.zeros_like(v), torch.zeros_like(v)  # Adam moments, reset per round
        found = torch.zeros(rows, dtype=torch.bool, device=dev_)
        for step in range(s.steps + 1):
            act = active.nonzero().flatten()
            if len(act) == 0:
                break
            xp, eps = x_patch[act], radius_rows[act]
            va = v[act].requires_grad_(True)
            with torch.enable_grad():
                delta = _clamp(xp + va, box) - xp
                f = layer_output(model, module, embed(x_rows[act], index[act], xp + delta))
                diff = (f - f0_rows[act]).abs().flatten(1)
                obj = (sgn[act] * delta).clamp_min(0).sum(1)
                penalty = (diff - eps[:, None]).clamp_min(0).sum(1) / eps
                loss = (lam[act] * penalty - obj).sum()
            passes[act] += 1
            with torch.no_grad():
                dev = diff.amax(1)
                feas = dev <= eps
                ok = feas & (obj > best_obj[act])
                k = act[ok]
                best[k], best_obj[k], best_dev[k] = delta[ok], obj[ok], dev[ok]
                v_best[k] = va.detach()[ok]
                found[act] |= ok
                real = feas & (obj > ref_obj[act] * (1 + s.rtol))
                ref_obj[act[real]] = obj[real]
                since[act] = torch.where(real, 0, since[act] + 1)
            if step == s.steps:
                break
            (g,) = torch.autograd.grad(loss, va)
            with torch.no_grad():
                e = torch.where(feas[:, None], (eta[act] * s.grow).clamp_max(s.lr),
                                eta[act] * s.shrink)
                eta[act] = e
                start = torch.where(feas[:, None], va.detach(), v_best[act])
                m1a, m2a = m1[act], m2[act]
                step_dir = adam_direction(g, m1a, m2a, step + 1)
                m1[act], m2[act] = m1a, m2a
                v[act] = torch.maximum(torch.minimum(start - e * step_dir, hi[act]), lo[act])
                if s.patience is not None:
                    active &= since < s.patience
        lam = torch.where(found, lam / 2, lam * 10)
        v = v_best.clone()  # the next round starts from the best feasible iterate
    return best.detach(), best_dev, best_obj <= 0, passes


def make_decoys(
    model: nn.Module, module: nn.Module, x: torch.Tensor, corners: torch.Tensor, patch: int,
    settings: DecoySettings, seed: int, batch_size: int | None,
) -> Decoys:
    """Optimised ± decoys for every patch of every image, then an exact re-check of the
    layer constraint on each kept decoy (a failing one falls back to δ = 0)."""
    n, c, h, w = x.shape
    m = len(corners)
    index_m = patch_index(corners, c, h, w, patch).to(x.device)
    total = n * 2 * m
    with torch.no_grad():
        f0 = layer_output(model, module, x)
    scale = f0.abs().flatten(1).amax(1) if settings.relative else torch.ones(n, device=x.device)
    radius_of = (settings.radius * scale).to(x.dtype)
    deltas, devs, falls = [], [], []
    passes = torch.zeros(n, dtype=torch.long, device=x.device)
    draws = BlockDraws(seed, (c * patch * patch,), x.dtype, x.device, kind="uniform",
                       per_sample=2 * m)
    with _frozen(model):
        for rows in chunks(total, batch_size):
            rows = rows.to(x.device)
            sample, mask, sign_i = rows // (2 * m), (rows % (2 * m)) // 2, rows % 2
            sign = 1 - 2 * sign_i
            u = draws(sample.cpu(), (rows % (2 * m)).cpu())
            v0 = sign[:, None] * u * settings.init
            d, dev, fb, used = solve_rows(model, module, x, f0, radius_of[sample], sample,
                                          index_m[mask], sign, v0, settings)
            with torch.no_grad():  # the exact check on the kept decoys, in a fresh pass
                xt = embed(x[sample], index_m[mask], x[sample].flatten(1).gather(
                    1, index_m[mask]) + d)
                dev = _deviation(layer_output(model, module, xt), f0[sample])
            bad = dev > radius_of[sample]
            d[bad], fb = 0.0, fb | bad
            dev[fb] = 0.0
            deltas.append(d), devs.append(dev), falls.append(fb)
            passes.index_add_(0, sample, used + 1)  # + the exact re-check
    rows_all = torch.arange(total, device=x.device)
    return Decoys(
        delta=torch.cat(deltas), index=index_m[(rows_all % (2 * m)) // 2],
        deviation=torch.cat(devs), radius=radius_of.repeat_interleave(2 * m),
        fallback=torch.cat(falls), n_masks=m, passes=passes,
    )


def constant_decoys(
    x: torch.Tensor, corners: torch.Tensor, patch: int, size: float, box: Box,
) -> torch.Tensor:
    """δ rows for the ablation: x̃ = clamp(x ± size on the patch) (no layer constraint)."""
    n, c, h, w = x.shape
    m = len(corners)
    index_m = patch_index(corners, c, h, w, patch).to(x.device)
    rows = torch.arange(n * 2 * m, device=x.device)
    sample, mask = rows // (2 * m), (rows % (2 * m)) // 2
    sign = (1 - 2 * (rows % 2)).to(x.dtype)[:, None]
    x_patch = x.flatten(1)[sample[:, None], index_m[mask]]
    moved = x_patch + sign * size
    limits = patch_box(box, x_patch.shape[1])
    if limits is not None:
        moved = moved.clamp(*limits)
    return moved - x_patch


def mean_pixel_decoys(x: torch.Tensor, corners: torch.Tensor, patch: int) -> torch.Tensor:
    """δ rows for the paper's "constant decoys" ablation as we read it: the patch of x
    replaced by the image's mean pixel (per channel), no layer constraint. Both rows of a
    mask's ± pair hold the same decoy, so the row layout matches the optimised decoys."""
    n, c, h, w = x.shape
    m = len(corners)
    index_m = patch_index(corners, c, h, w, patch).to(x.device)
    rows = torch.arange(n * 2 * m, device=x.device)
    sample, mask = rows // (2 * m), (rows % (2 * m)) // 2
    x_patch = x.flatten(1)[sample[:, None], index_m[mask]]
    mean = x.mean((2, 3))  # N×C
    per_channel = index_m[mask] // (h * w)  # the channel of every patch entry
    return mean[sample[:, None], per_channel] - x_patch
