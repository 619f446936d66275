"""Nearest decision-boundary search (Wang, Fredrikson & Datta, ICML 2022), batched.

x' ≈ argmin ‖x' − x‖_p subject to lo ≤ x' ≤ hi (per channel) and x' on the other side of
the decision boundary of class y, i.e. of the region R_y = {z : argmax f(z) = y}:

- x predicted as y (the paper's case): argmax f(x') ≠ y, the nearest point outside R_y;
- x not predicted as y (our extension, ``Boundary.targeted``): argmax f(x') = y, the nearest
  point inside R_y (a targeted search). Both are the nearest point of the boundary ∂R_y, seen
  from either side, so BSM is ∇f_y at a boundary point of y's own decision region in both.

The sweep (``engine="sweep"``; the default engine is FMN, below), for the untargeted and the
targeted rows alike (targeted: PGD descends CE(f, y), CW uses the margin max_{j≠y} f_j − f_y,
and "flips" means "reaches y"):

1. PGD sweep (:func:`.pgd.pgd_sweep`): every sample × every radius of an ascending list in
   one batched attack; per sample the first adversarial iterate at the smallest flipping
   radius.
2. CW-L2 (:mod:`.cw`, L2 only by default): replaces the PGD point when closer (in ``norm``).

3. Bisection on the segment x → x' (``refine_steps`` gradient-free forward passes, not in
   the reference pipeline): x' ← x + t(x' − x) with the smallest t ∈ (0, 1] found that still
   flips the label, so x' lies on the boundary (to 2^−refine_steps of the segment), inside
   the radius ball and the box.

Engines. The default (``engine=None``) is the Fast Minimum-Norm attack ``"fmn"`` (:mod:`.fmn`;
Pintor, Roli, Brendel & Biggio, NeurIPS 2021; L2 and L∞): it replaces steps 1–2 with one
batched minimum-norm attack of ≤ ``fmn_steps`` (100) forward+backward passes per sample with
early stop per row. ``"ddn"`` (:mod:`.ddn`; Rony et al., CVPR 2019; L2 only) does the same
with Decoupled Direction and Norm (≤ ``ddn_steps``). ``"sweep"`` is steps 1–2 above. The
bisection of step 3 follows every engine; FMN and DDN are deterministic (``seed`` only
seeds the sweep's random start). ``engine=None`` resolves by the options given:
the sweep's own options (``steps``, ``step_scale``, ``cw_steps``, ``cw_lr``, ``cw_c``,
``random_start``) select ``"sweep"`` (so a call written for the sweep keeps its result),
``ddn_*`` options ``"ddn"``, anything else ``"fmn"``; options of two engines raise, and so
do another engine's options with an explicit ``engine``. ``radius`` is shared: the sweep's
ascending radii, or, for a minimum-norm engine, the largest distance searched, max(radius)
(ε never exceeds it, so a sample whose boundary is farther is not found).

Default radii of the sweep (``radius=None``): the reference radii r = [36/255, 64/255,
0.3, 0.5, 0.7, 0.9, 1.1] (L2) or [1, 2, 4, …, 64]/255 (L∞), times the mean box width
s = mean(hi − lo), then doubled until the cap s·√d (L2, d = C·H·W: the box's scale) or s
(L∞) — the reference list is for 224×224×3 inputs, while minimal L2 distances of MNIST CNNs
are 1–3. Rows of larger radii stop as soon as a smaller radius flips the sample, so the long
tail is cheap.
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
from ..core.geometry import (
    BoundsLike,
    Box,
    as_box,
    check_norm,
    clip_to_box,
    farthest_in_box,
    norm_of,
)
from ..core.prelude import guarded_call
from ..core.seeding import SeedLike, base_seed
from ..core.targets import TargetLike
from ..core.validation import check_non_negative_int, check_positive_int
from .cw import cw_l2
from .ddn import ddn
from .fmn import crossed, fmn
from .pgd import pgd_sweep

RadiusLike = float | Sequence[float] | torch.Tensor
REFERENCE_RADII_L2 = (36 / 255, 64 / 255, 0.3, 0.5, 0.7, 0.9, 1.1)
REFERENCE_RADII_LINF = tuple(v / 255 for v in (1, 2, 4, 8, 16, 32, 64))
REFERENCE_EPS_L2, REFERENCE_EPS_LINF = REFERENCE_RADII_L2, REFERENCE_RADII_LINF  # old names
ENGINES = ("fmn", "ddn", "sweep")
DEFAULT_ENGINE = "fmn"
SWEEP_DEFAULTS = {"steps": 40, "step_scale": 2.5, "cw_steps": None, "cw_lr": 1e-2, "cw_c": 1.0,
                  "random_start": True}
FMN_DEFAULTS = {"fmn_steps": 100, "fmn_alpha": None, "fmn_gamma": 0.05, "fmn_patience": 20}
DDN_DEFAULTS = {"ddn_steps": 100, "ddn_alpha": 1.0, "ddn_gamma": 0.05, "ddn_init_norm": 1.0,
                "ddn_patience": 20}
ENGINE_OPTIONS = {"sweep": SWEEP_DEFAULTS, "fmn": FMN_DEFAULTS, "ddn": DDN_DEFAULTS}


@dataclass
class Boundary:
    """Boundary points of a batch. Per sample: ``points`` x' (x where none found),
    ``distances`` ‖x' − x‖ in ``norm`` (inf where none), ``found`` (True only where the
    boundary of y was crossed: label at x' ≠ y, or = y for a targeted row), ``radius``
    (radius of the PGD sweep that found it; NaN for CW, FMN, DDN or none), ``attack``
    ("pgd", "cw", "fmn", "ddn" or "none"), ``labels`` (class at x'), ``target`` (y),
    ``targeted`` (x is not predicted as y, so x' is the nearest point predicted as y).
    ``radii``: the radii searched (FMN/DDN: the one largest distance);
    ``settings["engine"]``: the engine that ran; pass counts are rows through the model
    (one row = one sample). ``eps``/``eps_list`` are
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
    radius: RadiusLike | None = None, steps: int | None = None,
    step_scale: float | None = None, cw_steps: int | None = None, cw_lr: float | None = None,
    cw_c: float | None = None, refine_steps: int = 10, bounds: BoundsLike | None = (0.0, 1.0),
    random_start: bool | None = None, early_stop: bool = True, seed: SeedLike = 0,
    batch_size: int | None = DEFAULT_BATCH_SIZE, start: torch.Tensor | None = None,
    engine: str | None = None, fmn_steps: int | None = None, fmn_alpha: float | None = None,
    fmn_gamma: float | None = None, fmn_patience: int | None = None,
    ddn_steps: int | None = None, ddn_alpha: float | None = None,
    ddn_gamma: float | None = None, ddn_init_norm: float | None = None,
    ddn_patience: int | None = None,
) -> Boundary:
    """The closest point x' to each sample of ``x`` on the decision boundary of ``target``
    (default: the predicted class), in ``norm`` and inside ``bounds``: where x is predicted
    as y, the closest x' predicted ≠ y (the paper's boundary); where it is not, the closest
    x' predicted as y (a targeted search, ``Boundary.targeted``; module doc).

    ``engine``: ``"fmn"`` (Fast Minimum-Norm, Pintor et al., NeurIPS 2021, :func:`.fmn.fmn`;
    the default), ``"ddn"`` (Decoupled Direction and Norm, Rony et al., CVPR 2019,
    :func:`.ddn.ddn`; L2 only) or ``"sweep"`` (PGD sweep + CW-L2); None resolves by the
    options given (module doc: sweep options select the sweep). Every engine ends with the
    bisection (``refine_steps``).

    ``radius``: the sweep's ascending radii (None: the default rule, module doc; ``eps`` is
    its deprecated name); for ``"fmn"``/``"ddn"`` the largest distance searched, max(radius)
    (None: the box's farthest point). Sweep options: ``steps`` (PGD steps per radius, 40),
    ``step_scale`` (2.5), ``cw_steps`` (CW-L2 iterations, default 100 for ``norm="l2"``, 0
    for ``"linf"``), ``cw_lr`` (1e-2), ``cw_c`` (1), ``random_start`` (True). FMN options:
    ``fmn_steps`` (100 forward+backward passes per sample at most), ``fmn_alpha`` (initial
    step in box widths; None: 1 for L2, 10 for L∞), ``fmn_gamma`` (initial ε factor, 0.05),
    ``fmn_patience`` (a found row stops after this many steps without shrinking its distance
    by 0.1%, 20). DDN options: ``ddn_steps`` (100), ``ddn_alpha`` (initial step in box
    widths, 1), ``ddn_gamma`` (ε factor, 0.05), ``ddn_init_norm`` (ε₀ in box widths, 1),
    ``ddn_patience`` (20). ``early_stop=False`` runs every step of every engine.

    ``start``: one point per sample (N×C×H×W, inside ``bounds``): the sweep starts PGD and
    CW from it instead of the random start and x (e.g. an IG baseline); FMN and DDN start
    from the bisection point between x and it where it is already on the other side (a warm
    start), from it otherwise. ``batch_size``: rows per forward+backward chunk (None: one
    chunk). Starts with :func:`~faithmap.core.prelude.guarded_call`: inputs are validated and
    cast to the model's dtype, and the model is left unchanged.
    """
    with guarded_call(model, x, target) as (x, resolved):
        norm = check_norm(norm)
        engine, opts = resolve_engine(engine, norm, {
            "steps": steps, "step_scale": step_scale, "cw_steps": cw_steps, "cw_lr": cw_lr,
            "cw_c": cw_c, "random_start": random_start, "fmn_steps": fmn_steps,
            "fmn_alpha": fmn_alpha, "fmn_gamma": fmn_gamma, "fmn_patience": fmn_patience,
            "ddn_steps": ddn_steps, "ddn_alpha": ddn_alpha, "ddn_gamma": ddn_gamma,
            "ddn_init_norm": ddn_init_norm, "ddn_patience": ddn_patience})
        check_non_negative_int("refine_steps", refine_steps)
        check_batch_size(batch_size)
        box = as_box(bounds, x)
        if engine == "sweep":
            radii = default_radii(x, norm, box) if radius is None else check_radii(radius)
        else:
            radii = _largest_radius(x, norm, box, None if radius is None else check_radii(radius))
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
        if engine != "sweep":
            points, dist, attack, fb, fwd = _min_norm_engine(
                engine, model, x, y, targeted, norm, box, opts, early_stop, refine_steps,
                batch_size, start, fwd, None if radius is None else float(radii[0]))
        for mode in ((False, True) if engine == "sweep" else ()):
            todo = torch.nonzero(targeted == mode).flatten()
            if len(todo) == 0:
                continue
            xs, ys = x[todo], y[todo]
            s0 = None if start is None else start[todo]
            sweep = pgd_sweep(model, xs, ys, radii, norm=norm, steps=opts["steps"],
                              step_scale=opts["step_scale"], box=box, seed=seed_int,
                              random_init=opts["random_start"], early_stop=early_stop,
                              batch_size=batch_size, targeted=mode, start=s0)
            fb, fwd = fb + sweep.forward_backward, fwd + sweep.forward
            pgd_found = sweep.radius_index >= 0
            d_pgd = torch.where(pgd_found, norm_of(sweep.points - xs, norm), math.inf)
            best, d_best = sweep.points, d_pgd
            use_cw = torch.zeros_like(pgd_found)
            if opts["cw_steps"] > 0:
                cw = cw_l2(model, xs, ys, steps=opts["cw_steps"], lr=opts["cw_lr"],
                           c=opts["cw_c"], box=box, batch_size=batch_size, targeted=mode,
                           start=s0)
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
    found = torch.isfinite(dist) & crossed(labels, y, targeted)
    return Boundary(points, dist, found, found_radius, attack, labels, y, norm, radii, fb, fwd,
                    {"norm": norm, "radius": radii.tolist(), "refine_steps": refine_steps,
                     "seed": seed_int, "start": start is not None, "engine": engine, **opts},
                    targeted)


def resolve_engine(engine: object, norm: str, given: dict[str, object]) -> tuple[str, dict]:
    """The engine that runs and its options (defaults filled in, checked). ``given``: the
    engine options of the call, None where not set; ``engine=None`` picks the engine whose
    options are set (the default engine where none is; module doc)."""
    if engine is not None and engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES} or None, got {engine!r}")
    unknown = sorted(set(given) - {k for o in ENGINE_OPTIONS.values() for k in o})
    if unknown:
        raise TypeError(f"unknown search options {unknown}")
    set_by = {name: sorted(k for k in opts if given.get(k) is not None)
              for name, opts in ENGINE_OPTIONS.items()}
    set_by = {name: keys for name, keys in set_by.items() if keys}
    if engine is None:
        if len(set_by) > 1:
            mix = "; ".join(f"{', '.join(k)} (engine={e!r})" for e, k in set_by.items())
            raise ValueError(f"options of several search engines were given: {mix}")
        engine = next(iter(set_by), DEFAULT_ENGINE)
    other = {e: k for e, k in set_by.items() if e != engine}
    if other:
        e, keys = next(iter(other.items()))
        raise ValueError(f"{', '.join(keys)} {'is an option' if len(keys) == 1 else 'are options'}"
                         f" of engine={e!r}, not of engine={engine!r}")
    opts = {k: d if given.get(k) is None else given[k] for k, d in ENGINE_OPTIONS[engine].items()}
    if engine == "sweep":
        check_positive_int("steps", opts["steps"])
        opts["cw_steps"] = check_non_negative_int(
            "cw_steps", (100 if norm == "l2" else 0) if opts["cw_steps"] is None
            else opts["cw_steps"])
        if not opts["step_scale"] > 0 or not opts["cw_lr"] > 0 or not opts["cw_c"] > 0:
            raise ValueError("step_scale, cw_lr and cw_c must be > 0")
        opts["random_start"] = bool(opts["random_start"])
    elif engine == "fmn":
        check_positive_int("fmn_steps", opts["fmn_steps"])
        check_positive_int("fmn_patience", opts["fmn_patience"])
        if opts["fmn_alpha"] is not None and not opts["fmn_alpha"] > 0:
            raise ValueError(f"fmn_alpha must be > 0, got {opts['fmn_alpha']!r}")
        if not 0 < opts["fmn_gamma"] < 1:
            raise ValueError(f"fmn_gamma must lie in (0, 1), got {opts['fmn_gamma']!r}")
    else:
        if norm != "l2":
            raise ValueError("engine='ddn' is an L2 attack; use engine='fmn' (or 'sweep') "
                             "for norm='linf'")
        check_positive_int("ddn_steps", opts["ddn_steps"])
        check_positive_int("ddn_patience", opts["ddn_patience"])
        for k in ("ddn_alpha", "ddn_init_norm"):
            if not opts[k] > 0:
                raise ValueError(f"{k} must be > 0, got {opts[k]!r}")
        if not 0 < opts["ddn_gamma"] < 1:
            raise ValueError(f"ddn_gamma must lie in (0, 1), got {opts['ddn_gamma']!r}")
    return engine, opts


def engine_options(settings: dict) -> dict:
    """The search-engine options among ``settings`` (the keys of :data:`ENGINE_OPTIONS`)."""
    known = {k for o in ENGINE_OPTIONS.values() for k in o}
    return {k: v for k, v in settings.items() if k in known}


def _largest_radius(x: torch.Tensor, norm: str, box: Box,
                    radius: torch.Tensor | None) -> torch.Tensor:
    """A minimum-norm engine's largest radius: max(``radius``) where given, else the distance
    to the box's farthest corner (inf without box)."""
    if radius is not None:
        return radius.max().view(1)
    if box is None:
        return torch.tensor([math.inf], dtype=torch.float64)
    return farthest_in_box(x, box, norm).max().to(torch.float64).cpu().view(1)


def _min_norm_engine(engine: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                     targeted: torch.Tensor, norm: str, box: Box, opts: dict, early_stop: bool,
                     refine_steps: int, batch_size: int | None, start: torch.Tensor | None,
                     fwd: int, cap: float | None,
                     ) -> tuple[torch.Tensor, torch.Tensor, list[str], int, int]:
    """FMN or DDN on all rows at once (targeted ones reach y), then the bisection per mode.
    Returns points, distances (inf where none), attack names and the pass counts."""
    n = x.shape[0]
    if start is not None:  # warm start: the boundary between x and an adversarial start
        start = clip_to_box(start, box)
        with torch.no_grad():
            pred = map_rows(n, batch_size, lambda r: model(start[r.to(x.device)]).argmax(1))
        fwd += n
        pred = pred.to(x.device)
        adv = crossed(pred, y, targeted)
        warm = start.clone()
        for mode in (False, True):
            rows = torch.nonzero(targeted == mode).flatten()
            if len(rows) and refine_steps:
                warm[rows] = _bisect(model, x[rows], y[rows], start[rows], adv[rows],
                                     refine_steps, batch_size, mode)
                fwd += refine_steps * int(adv[rows].sum())
        start = warm
    common = {"box": box, "targeted": targeted, "early_stop": early_stop,
              "batch_size": batch_size, "start": start, "max_norm": cap}
    if engine == "fmn":
        res = fmn(model, x, y, norm=norm, steps=opts["fmn_steps"], alpha=opts["fmn_alpha"],
                  gamma=opts["fmn_gamma"], patience=opts["fmn_patience"], **common)
    else:
        res = ddn(model, x, y, steps=opts["ddn_steps"], alpha=opts["ddn_alpha"],
                  gamma=opts["ddn_gamma"], init_norm=opts["ddn_init_norm"],
                  patience=opts["ddn_patience"], **common)
    fb, fwd = res.forward_backward, fwd + res.forward
    points, ok = res.points, res.found
    if refine_steps:
        for mode in (False, True):
            rows = torch.nonzero(targeted == mode).flatten()
            if len(rows):
                points[rows] = _bisect(model, x[rows], y[rows], points[rows], ok[rows],
                                       refine_steps, batch_size, mode)
        fwd += refine_steps * int(ok.sum())
    dist = torch.where(ok, norm_of(points - x, norm), math.inf)
    attack = [engine if bool(f) else "none" for f in ok.cpu()]
    return points, dist, attack, fb, fwd


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


def search_passes(x_shape: Sequence[int], *, norm: str = "l2", radius: RadiusLike | None = None,
                  refine_steps: int = 10, engine: str | None = None,
                  start: torch.Tensor | None = None, **options: object) -> tuple[int, int]:
    """Upper bounds on the (forward, backward) rows per sample that :func:`find_boundary`
    with these settings runs on inputs of ``x_shape`` (N×C×H×W), before it runs (the engine
    is resolved as there): one forward at x; then the sweep's R radii × (``steps``
    forward+backward + 1 forward) and CW's ``cw_steps`` forward+backward + 1 forward, or
    FMN's / DDN's ``fmn_steps`` / ``ddn_steps`` forward+backward + 1 forward (+ 2 forwards
    and a bisection for a warm ``start``); then ``refine_steps`` bisection forwards and one
    forward at x'. Early stopping (a flipped row, a smaller flipping radius, the patience
    of FMN and DDN) only lowers it. The default radii's count depends only on C·H·W and
    ``norm`` (module doc). Options that are not search-engine options are ignored."""
    norm = check_norm(norm)
    refine = int(refine_steps)
    engine, opts = resolve_engine(engine, norm, engine_options(options))
    if engine != "sweep":
        fs = int(opts[f"{engine}_steps"])
        warm = 0 if start is None else 2 + refine
        return 1 + warm + fs + 1 + refine + 1, fs
    if radius is None:
        radii = default_radii(torch.zeros((1, *[int(s) for s in x_shape[1:]])), norm, None)
    else:
        radii = check_radii(radius)
    cw, steps = int(opts["cw_steps"]), int(opts["steps"])
    r = len(radii)
    forward = 1 + r * (steps + 1) + (cw + 1 if cw > 0 else 0) + refine + 1
    return forward, r * steps + cw
