"""Nearest decision-boundary search (Wang, Fredrikson & Datta, ICML 2022), batched.

x' ≈ argmin ‖x' − x‖_p subject to lo ≤ x' ≤ hi (per channel) and x' on the other side of
the decision boundary of class y, i.e. of the region R_y = {z : argmax f(z) = y}:

- x predicted as y (the paper's case): argmax f(x') ≠ y, the nearest point outside R_y;
- x not predicted as y (our extension, ``Boundary.targeted``): argmax f(x') = y, the nearest
  point inside R_y (a targeted search). Both are the nearest point of the boundary ∂R_y, seen
  from either side, so BSM is ∇f_y at a boundary point of y's own decision region in both.

Steps, for the untargeted and the targeted rows alike (targeted: PGD descends CE(f, y), CW
uses the margin max_{j≠y} f_j − f_y, and "flips" means "reaches y"):

1. PGD sweep (:func:`.pgd.pgd_sweep`): every sample × every radius of an ascending list in
   one batched attack; per sample the first adversarial iterate at the smallest flipping
   radius.
2. CW-L2 (:mod:`.cw`, L2 only by default): replaces the PGD point when closer (in ``norm``).
3. Bisection on the segment x → x' (``refine_steps`` gradient-free forward passes, not in
   the reference pipeline): x' ← x + t(x' − x) with the smallest t ∈ (0, 1] found that still
   flips the label, so x' lies on the boundary (to 2^−refine_steps of the segment), inside
   the radius ball and the box.

Default radii (``radius=None``): the reference radii r = [36/255, 64/255, 0.3, 0.5, 0.7,
0.9, 1.1] (L2) or [1, 2, 4, …, 64]/255 (L∞), times the mean box width s = mean(hi − lo),
then doubled until the cap s·√d (L2, d = C·H·W: the box's scale) or s (L∞) — the
reference list is for 224×224×3 inputs, while minimal L2 distances of MNIST CNNs are 1–3.
Rows of larger radii stop as soon as a smaller radius flips the sample, so the long tail is
cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ..core.batching import DEFAULT_BATCH_SIZE, check_batch_size, map_rows
from ..core.deprecation import renamed_attribute, renamed_options, warn_renamed
from ..core.errors import FaithmapError, InvalidInputError, TargetError
from ..core.geometry import BoundsLike, Box, as_box, check_norm, norm_of
from ..core.prelude import guarded_call
from ..core.seeding import SeedLike, base_seed
from ..core.targets import TargetLike
from ..core.validation import check_non_negative_int, check_positive_int
from .cw import cw_l2
from .pgd import pgd_sweep

RadiusLike = float | Sequence[float] | torch.Tensor
REFERENCE_RADII_L2 = (36 / 255, 64 / 255, 0.3, 0.5, 0.7, 0.9, 1.1)
REFERENCE_RADII_LINF = tuple(v / 255 for v in (1, 2, 4, 8, 16, 32, 64))
REFERENCE_EPS_L2, REFERENCE_EPS_LINF = REFERENCE_RADII_L2, REFERENCE_RADII_LINF  # old names


@dataclass
class Boundary:
    """Boundary points of a batch. Per sample: ``points`` x' (x where none found),
    ``distances`` ‖x' − x‖ in ``norm`` (inf where none), ``found`` (True only where the
    boundary of y was crossed: label at x' ≠ y, or = y for a targeted row), ``radius``
    (radius of the PGD sweep that found it; NaN for CW or none), ``attack`` ("pgd", "cw" or
    "none"), ``labels`` (class at x'), ``target`` (y), ``targeted`` (x is not predicted as
    y, so x' is the nearest point predicted as y). ``radii``: the radii searched; pass
    counts are rows through the model (one row = one sample). ``eps``/``eps_list`` are
    deprecated aliases."""

    points: torch.Tensor
    distances: torch.Tensor
    found: torch.Tensor
    radius: torch.Tensor
    attack: list[str]
    labels: torch.Tensor
    target: torch.Tensor
    norm: str
    radii: torch.Tensor
    forward_backward: int = 0
    forward: int = 0
    settings: dict = field(default_factory=dict)
    targeted: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.targeted is None:
            self.targeted = torch.zeros_like(self.found)

    @property
    def found_rate(self) -> float:
        """Share of samples with a boundary point."""
        return float(self.found.float().mean())

    eps = renamed_attribute("eps", "radius")
    eps_list = renamed_attribute("eps_list", "radii")


class BoundaryNotFoundError(FaithmapError, RuntimeError):
    """No decision boundary was found for some samples (``samples``: their rows)."""

    def __init__(self, message: str, samples: list[int]) -> None:
        super().__init__(message)
        self.samples = samples


def default_radii(x: torch.Tensor, norm: str, box: Box) -> torch.Tensor:
    """The default ascending radii for inputs like ``x`` (module doc)."""
    scale = float((box[1] - box[0]).mean()) if box is not None else float(x.max() - x.min())
    scale = scale or 1.0
    cap = scale * math.sqrt(x[0].numel()) if norm == "l2" else scale
    radii = [r * scale for r in (REFERENCE_RADII_L2 if norm == "l2" else REFERENCE_RADII_LINF)]
    radii = [r for r in radii if r < cap]
    while radii[-1] < cap:
        radii.append(min(2 * radii[-1], cap))
    return torch.tensor(radii, dtype=torch.float64)


def check_radii(radius: RadiusLike) -> torch.Tensor:
    """A sorted, de-duplicated float64 list of radii; every value finite and > 0."""
    t = torch.as_tensor(radius, dtype=torch.float64).flatten()
    if t.numel() == 0:
        raise ValueError("radius must hold at least one radius")
    if not bool(torch.isfinite(t).all()) or not bool((t > 0).all()):
        raise ValueError(f"radius values must be finite and > 0, got {t.tolist()}")
    return t.unique()


def default_eps(x: torch.Tensor, norm: str, box: Box) -> torch.Tensor:
    """Deprecated: use :func:`default_radii`."""
    warn_renamed("default_eps", "default_radii")
    return default_radii(x, norm, box)


def check_eps(eps: RadiusLike) -> torch.Tensor:
    """Deprecated: use :func:`check_radii`."""
    warn_renamed("check_eps", "check_radii")
    return check_radii(eps)


@renamed_options(eps="radius")
def find_boundary(
    model: nn.Module, x: torch.Tensor, target: TargetLike = None, *, norm: str = "l2",
    radius: RadiusLike | None = None, steps: int = 40,
    step_scale: float = 2.5, cw_steps: int | None = None, cw_lr: float = 1e-2,
    cw_c: float = 1.0, refine_steps: int = 10, bounds: BoundsLike | None = (0.0, 1.0),
    random_start: bool = True, early_stop: bool = True, seed: SeedLike = 0,
    batch_size: int | None = DEFAULT_BATCH_SIZE, start: torch.Tensor | None = None,
) -> Boundary:
    """The closest point x' to each sample of ``x`` on the decision boundary of ``target``
    (default: the predicted class), in ``norm`` and inside ``bounds``: where x is predicted
    as y, the closest x' predicted ≠ y (the paper's boundary); where it is not, the closest
    x' predicted as y (a targeted search, ``Boundary.targeted``; module doc).

    ``radius``: the ascending radii of the PGD sweep (None: the default rule, module doc;
    ``eps`` is its deprecated name). ``cw_steps``: CW-L2 iterations (default 100 for
    ``norm="l2"``, 0 for ``"linf"``). ``start``: one point per sample (N×C×H×W, inside
    ``bounds``) to start PGD and CW from instead of the random start and x (e.g. an IG
    baseline). ``batch_size``: rows per forward+backward chunk (None: one chunk). Starts with
    :func:`~faithmap.core.prelude.guarded_call`: inputs are validated and cast to the model's
    dtype, and the model is left unchanged.
    """
    with guarded_call(model, x, target) as (x, resolved):
        norm = check_norm(norm)
        check_positive_int("steps", steps)
        check_non_negative_int("refine_steps", refine_steps)
        cw_steps = check_non_negative_int(
            "cw_steps", (100 if norm == "l2" else 0) if cw_steps is None else cw_steps)
        if not step_scale > 0 or not cw_lr > 0 or not cw_c > 0:
            raise ValueError("step_scale, cw_lr and cw_c must be > 0")
        check_batch_size(batch_size)
        box = as_box(bounds, x)
        radii = default_radii(x, norm, box) if radius is None else check_radii(radius)
        seed_int = base_seed(seed)
        n = x.shape[0]
        if resolved.fn is not None:
            raise TargetError("find_boundary needs class-index targets (a callable has no "
                              "decision boundary to search)")
        if start is not None:
            start = _check_start(start, x)
        with torch.no_grad():
            logits = model(x)
        resolved.scores(logits)  # resolves None, checks the range and the N×K shape
        assert resolved.indices is not None
        y = resolved.indices.to(x.device)
        targeted = logits.argmax(1) != y
        points, dist = x.clone(), torch.full((n,), math.inf, dtype=x.dtype, device=x.device)
        found_radius = torch.full((n,), math.nan, dtype=torch.float64)
        attack = ["none"] * n
        fb, fwd = 0, n
        for mode in (False, True):
            todo = torch.nonzero(targeted == mode).flatten()
            if len(todo) == 0:
                continue
            xs, ys = x[todo], y[todo]
            s0 = None if start is None else start[todo]
            sweep = pgd_sweep(model, xs, ys, radii, norm=norm, steps=steps,
                              step_scale=step_scale, box=box, seed=seed_int,
                              random_init=random_start, early_stop=early_stop,
                              batch_size=batch_size, targeted=mode, start=s0)
            fb, fwd = fb + sweep.forward_backward, fwd + sweep.forward
            pgd_found = sweep.radius_index >= 0
            d_pgd = torch.where(pgd_found, norm_of(sweep.points - xs, norm), math.inf)
            best, d_best = sweep.points, d_pgd
            use_cw = torch.zeros_like(pgd_found)
            if cw_steps > 0:
                cw = cw_l2(model, xs, ys, steps=cw_steps, lr=cw_lr, c=cw_c, box=box,
                           batch_size=batch_size, targeted=mode, start=s0)
                fb, fwd = fb + cw.forward_backward, fwd + cw.forward
                d_cw = torch.where(cw.found, norm_of(cw.points - xs, norm), math.inf)
                use_cw = cw.found & (d_cw < d_pgd)
                best = torch.where(use_cw.view(-1, 1, 1, 1), cw.points, best)
                d_best = torch.where(use_cw, d_cw, d_pgd)
            ok = torch.isfinite(d_best)
            if refine_steps:
                best = _bisect(model, xs, ys, best, ok, refine_steps, batch_size, mode)
                fwd += refine_steps * int(ok.sum())
                d_best = torch.where(ok, norm_of(best - xs, norm), math.inf)
            points[todo], dist[todo] = best, d_best
            k = sweep.radius_index.cpu()
            for j, i in enumerate(todo.tolist()):
                if bool(use_cw[j]):
                    attack[i] = "cw"
                elif int(k[j]) >= 0:
                    attack[i], found_radius[i] = "pgd", float(radii[int(k[j])])
        with torch.no_grad():
            labels = model(points).argmax(1)
        fwd += n
    crossed = torch.where(targeted, labels == y, labels != y)
    found = torch.isfinite(dist) & crossed
    return Boundary(points, dist, found, found_radius, attack, labels, y, norm, radii, fb, fwd,
                    {"norm": norm, "radius": radii.tolist(), "steps": steps,
                     "step_scale": step_scale, "cw_steps": cw_steps, "cw_lr": cw_lr,
                     "cw_c": cw_c, "refine_steps": refine_steps, "random_start": random_start,
                     "seed": seed_int, "start": start is not None}, targeted)


def _check_start(start: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``start`` as a tensor like ``x`` (same shape, finite), on x's device and dtype."""
    if not isinstance(start, torch.Tensor) or tuple(start.shape) != tuple(x.shape):
        raise InvalidInputError(f"start must be a tensor of the inputs' shape {tuple(x.shape)}, "
                                f"got {getattr(start, 'shape', type(start).__name__)}")
    start = start.detach().to(device=x.device, dtype=x.dtype)
    if not bool(torch.isfinite(start).all()):
        raise InvalidInputError("start has NaN/Inf values")
    return start


def _bisect(model: nn.Module, x: torch.Tensor, y: torch.Tensor, adv: torch.Tensor,
            ok: torch.Tensor, steps: int, batch_size: int | None,
            targeted: bool = False) -> torch.Tensor:
    """x + t(adv − x) with t the end of a bisection keeping the label ≠ y (= y when
    ``targeted``), rows ``ok`` only."""
    idx = torch.nonzero(ok).flatten()
    if len(idx) == 0:
        return adv
    xs, d = x[idx], adv[idx] - x[idx]
    lo = torch.zeros(len(idx), dtype=x.dtype, device=x.device)
    hi = torch.ones_like(lo)
    for _ in range(steps):
        mid = (lo + hi) / 2
        probe = xs + mid.view(-1, 1, 1, 1) * d
        with torch.no_grad():
            pred = map_rows(len(idx), batch_size,
                            lambda r, p=probe: model(p[r.to(x.device)]).argmax(1))
        pred = pred.to(x.device)
        flip = (pred == y[idx]) if targeted else (pred != y[idx])
        hi, lo = torch.where(flip, mid, hi), torch.where(flip, lo, mid)
    out = adv.clone()
    out[idx] = xs + hi.view(-1, 1, 1, 1) * d
    return out
