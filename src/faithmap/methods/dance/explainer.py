"""DANCE: decoy-enhanced saliency (Lu, Guo, Xing & Noble, ICML 2021; arXiv 2002.00526).

Step 1 (:mod:`.decoys`): for every p×p patch and both signs, a decoy x̃ that changes
only the patch, stays in the input box ``bounds``, and keeps the output of layer ℓ within the
``radius`` ε: ‖F_ℓ(x̃) − F_ℓ(x)‖_∞ ≤ ε. Step 2: the base saliency map E on every decoy,
aggregated per feature i over the decoys j = 1..2M of the image:

- ``"range"`` (default, the paper's Eq. 3): Z_i = max_j E(x̃^j)_i − min_j E(x̃^j)_i;
- ``"per_mask"``: |E(x̃^{m+})_i − E(x̃^{m−})_i| (the range of each ± pair) averaged over
  the masks m whose patch covers i (0 where none does);
- ``"mean"`` (ablation): Z_i = (1/2M) Σ_j E(x̃^j)_i.

:func:`dance_display` is the paper's display post-processing. The target is always the
class at x (the prediction at x for ``target=None``), also on the decoys.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from ...core.batching import DEFAULT_BATCH_SIZE, chunks
from ...core.cost import Cost, check_shape
from ...core.deprecation import renamed_options
from ...core.errors import InvalidInputError
from ...core.explainer import Explainer
from ...core.geometry import BoundsLike, as_box
from ...core.layers import capture_output, find_module
from ...core.modules import feature_layer
from ...core.prelude import guarded_call
from ...core.registry import get_explainer, register
from ...core.seeding import SeedLike, base_seed, derived_rows
from ...core.targets import Target, TargetLike, row_targets
from ...core.validation import check_positive_int
from ..captum_adapter import from_captum
from .decoys import (
    DecoySettings,
    constant_decoys,
    embed,
    layer_output,
    make_decoys,
    mean_pixel_decoys,
    patch_grid,
    patch_index,
)
from .layers import default_layer

AGGREGATIONS = ("range", "per_mask", "mean")
DECOY_KINDS = ("optimised", "mean_pixel", "constant")


def resolve_base(base: Any, model: nn.Module, options: dict[str, Any]) -> Explainer:
    """The base explainer E: a registry name (also ``"captum:Cls"``), an Explainer class or
    instance (e.g. from :func:`~faithmap.from_captum`), or a Captum attribution class."""
    if isinstance(base, Explainer):
        if options:
            raise ValueError("base_options apply to a base given by name or class, "
                             "not to an Explainer instance")
        return base.for_model(model)
    if isinstance(base, str) and base.strip().lower() == "dance":
        raise ValueError("DANCE cannot be its own base method")
    if isinstance(base, str) or (isinstance(base, type) and issubclass(base, Explainer)):
        return get_explainer(model, base, **options)
    if isinstance(base, type) and base.__module__.startswith("captum"):
        return from_captum(base, model, **options)
    raise TypeError(
        f"base must be a registry name, an Explainer (class or instance, e.g. "
        f"fm.from_captum(...)) or a Captum attribution class, got {base!r}"
    )


@register("dance")
class DANCE(Explainer):
    """Decoy-enhanced saliency around any base explainer (see module doc and docs/methods).

    ``layer``: module name of ℓ (default :func:`~faithmap.methods.dance.default_layer`: the
    model's declared ``feature_layer``, else the last spatial feature map traced on the first
    input); ``patch``/``stride``: patch side and step in pixels (stride defaults to
    ``patch``); ``max_masks`` keeps at most that many, a centred sub-grid spread over the image;
    ``radius``: the layer tolerance ε, relative to max|F_ℓ(x)| (``relative_radius=False``:
    absolute); ``steps`` (most solver evaluations per round) / ``rounds`` / ``lr`` (largest step) /
    ``lam``: the solver; ``patience``: a decoy stops after that many evaluations without a 0.1% gain
    (None: run all ``steps``); ``tau``: per-feature bound on |δ|; ``bounds``: the input box,
    scalars or per channel (None: none). ``decoys="mean_pixel"`` (the paper's constant-decoy
    ablation): the patch set to the image's mean pixel; ``decoys="constant"`` (ours): x ±
    ``size`` on the patch; neither is optimised. The paper's base is the signed gradient,
    ``base_options={"abs": False}``. ``batch_size`` bounds the decoy rows per chunk. Old
    names ``epsilon``, ``relative_epsilon``, ``input_range`` are deprecated.
    """

    @renamed_options(epsilon="radius", relative_epsilon="relative_radius",
                     input_range="bounds")
    def __init__(
        self, model: nn.Module, base: Any = "saliency", *, base_options: dict | None = None,
        layer: str | nn.Module | None = None, patch: int = 3, stride: int | None = None,
        max_masks: int | None = None, aggregation: str = "range", decoys: str = "optimised",
        size: float = 0.1, radius: float = 1e-2, relative_radius: bool = True,
        steps: int = 150, rounds: int = 1, lr: float = 0.1, lam: float = 1.0,
        patience: int | None = 40,
        tau: float | None = None, bounds: BoundsLike | None = (0.0, 1.0),
        seed: SeedLike = 0, batch_size: int | None = DEFAULT_BATCH_SIZE,
    ) -> None:
        super().__init__(model, batch_size=batch_size)
        self.patch = check_positive_int("patch", patch)
        self.stride = self.patch if stride is None else check_positive_int("stride", stride)
        self.max_masks = None if max_masks is None else check_positive_int("max_masks", max_masks)
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
        if decoys not in DECOY_KINDS:
            raise ValueError(f"decoys must be one of {DECOY_KINDS}, got {decoys!r}")
        if decoys == "mean_pixel" and aggregation == "per_mask":
            raise ValueError("aggregation='per_mask' needs ± pairs; decoys='mean_pixel' gives "
                             "one decoy per mask (its pair rows are equal)")
        if not radius > 0 or (tau is not None and not tau > 0) or not lr > 0 or not lam > 0:
            raise ValueError("radius, lr, lam (and tau when given) must be > 0")
        check_positive_int("steps", steps), check_positive_int("rounds", rounds)
        if layer is None:  # default_layer: the declared layer (checked now), else traced in
            layer = feature_layer(model)  # _layer_name on each new input shape
        self.layer = None if layer is None else find_module(model, layer)[0]
        self._traced: dict[tuple[int, ...], str] = {}
        self.base = resolve_base(base, model, dict(base_options or {}))
        self.spatial = bool(self.base.spatial)  # type: ignore[misc] - the base's map shape
        self.aggregation, self.decoy_kind, self.size = aggregation, decoys, size
        self.bounds = bounds
        if patience is not None:
            check_positive_int("patience", patience)
        self.settings = DecoySettings(radius, relative_radius, steps, rounds, lr, lam, tau,
                                      patience=patience)
        self.seed = seed

    def _settings(self, x: torch.Tensor) -> DecoySettings:
        """The solver settings with the input box parsed for ``x`` (raises when x is
        outside it or the patch does not fit)."""
        h, w = x.shape[-2:]
        if self.patch > min(h, w):
            raise InvalidInputError(f"patch={self.patch} is larger than the {h}×{w} input")
        return dataclasses.replace(self.settings, box=as_box(self.bounds, x))

    def attribute(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        n = x.shape[0]
        delta, rows_index, corners, deviation, fallback, radius, passes = \
            self._decoy_rows(x, target)
        z = self._aggregate(x, target, delta, rows_index, corners)
        m = len(corners)
        per = 2 * m
        self.metadata.update(
            layer=self._layer_name(x), n_masks=m, n_decoys=per,
            feasible_fraction=(1 - fallback.view(n, per).float().mean(1)).tolist(),
            n_fallback=fallback.view(n, per).sum(1).tolist(),
            mean_abs_delta=delta.abs().mean(1).view(n, per).mean(1).tolist(),
            layer_deviation=deviation.view(n, per).amax(1).tolist(), radius=radius.tolist(),
            decoy_passes=passes.tolist(),
        )
        return z

    def cost(self, x_shape, target=None) -> Cost | None:
        """Per sample: one forward at x (+ one on the first sample when the layer is traced
        for a new input shape), the base method's cost on each of the 2M decoys (M masks ×
        2 signs), and the decoy passes, which stop at layer ℓ (outside the model's own
        forward, in ``Cost.other``): one forward for F_ℓ(x) and per decoy at most
        ``rounds`` × (``steps`` forward+backward + 1 forward) of the solver (early stop with
        ``patience``) + 1 forward re-check; decoys="mean_pixel"/"constant": 1 forward each.
        None when the base method cannot declare its own cost."""
        n, c, h, w = check_shape(x_shape)
        if self.patch > min(h, w):
            return None  # the call itself raises
        per = 2 * len(patch_grid(h, w, self.patch, self.stride, self.max_masks))
        size = None if self.batch_size is None else max(2, self.batch_size // 2 * 2)
        rows = n * per if size is None else min(size, n * per)
        base = self.base.cost((rows, c, h, w), target=0)  # decoys get the resolved classes
        if base is None:
            return None
        probe = self.layer is None and (c, h, w) not in self._traced
        s = self.settings
        if self.decoy_kind == "optimised":
            partial = {"forward to layer ℓ": 1 + per * (s.rounds * (s.steps + 1) + 1),
                       "backward from layer ℓ": per * s.rounds * s.steps}
            stops = s.patience is not None
        else:
            partial, stops = {"forward to layer ℓ": 1 + per}, False
        own = Cost(1 + int(probe), 0, exact=not stops and (not probe or n == 1), other=partial)
        return own + base.times(per)

    def decoys(self, x: torch.Tensor, target: TargetLike = None) -> torch.Tensor:
        """The decoys x̃ of every image, N×2M×C×H×W (row 2m: mask m pushed up, 2m+1: down)."""
        with guarded_call(self.model, x, target) as (inputs, resolved):
            delta, rows_index, corners, *_ = self._decoy_rows(inputs, resolved)
        n, per = inputs.shape[0], delta.shape[0] // inputs.shape[0]
        s = torch.arange(n * per, device=inputs.device) // per
        xt = embed(inputs[s], rows_index, inputs[s].flatten(1).gather(1, rows_index) + delta)
        return xt.view(n, per, *inputs.shape[1:]).to(x.dtype)

    def _decoy_rows(self, x: torch.Tensor, target: Target):  # noqa: ANN202
        """δ on the patch per decoy row, the rows' flat patch indices, the corners, the
        measured layer deviation, the fallback flags and the radius ε per sample."""
        settings = self._settings(x)
        name = self._layer_name(x)
        model, module = self.model, find_module(self.model, name)[1]
        with torch.no_grad(), capture_output(module, name) as cap:
            output = model(x)
        cap.output  # noqa: B018 - raises if the layer runs more or less than once
        target.scores(output)  # resolves a None target; checks class indices before the work
        n, c, h, w = x.shape
        corners = patch_grid(h, w, self.patch, self.stride, self.max_masks)
        m = len(corners)
        index = patch_index(corners, c, h, w, self.patch).to(x.device)
        rows_index = index[(torch.arange(n * 2 * m, device=x.device) % (2 * m)) // 2]
        if self.decoy_kind == "optimised":
            d = make_decoys(model, module, x, corners, self.patch, settings,
                            base_seed(self.seed), self.batch_size)
            return (d.delta, rows_index, corners, d.deviation, d.fallback,
                    d.radius.view(n, 2 * m)[:, 0], d.passes)
        if self.decoy_kind == "mean_pixel":
            delta = mean_pixel_decoys(x, corners, self.patch)
        else:
            delta = constant_decoys(x, corners, self.patch, self.size, settings.box)
        deviation, radius = self._constant_deviation(x, module, delta, rows_index)
        fallback = deviation > radius.repeat_interleave(2 * m)
        passes = torch.full((n,), 2 * m, dtype=torch.long, device=x.device)  # the check
        return delta, rows_index, corners, deviation, fallback, radius, passes

    def _layer_name(self, x: torch.Tensor) -> str:
        """ℓ's module name: given or declared, else :func:`default_layer` on x (the model
        declares none, so traced; cached per input shape)."""
        if self.layer is not None:
            return self.layer
        key = tuple(x.shape[1:])
        if key not in self._traced:
            self._traced[key] = default_layer(self.model, x)
        return self._traced[key]

    def _constant_deviation(self, x, module, delta, rows_index):  # noqa: ANN001, ANN202
        n, per = x.shape[0], delta.shape[0] // x.shape[0]
        with torch.no_grad():
            f0 = layer_output(self.model, module, x)
            devs = []
            for rows in chunks(len(delta), self.batch_size):
                rows = rows.to(x.device)
                s = rows // per
                xt = embed(x[s], rows_index[rows],
                           x[s].flatten(1).gather(1, rows_index[rows]) + delta[rows])
                devs.append((layer_output(self.model, module, xt) - f0[s]).abs()
                            .flatten(1).amax(1))
        scale = (f0.abs().flatten(1).amax(1) if self.settings.relative
                 else torch.ones(n, device=x.device))
        return torch.cat(devs), (self.settings.radius * scale).to(x.dtype)

    def _aggregate(self, x, target, delta, rows_index, corners):  # noqa: ANN001, ANN202
        """Z from E on every decoy, streamed over chunks of whole ± pairs."""
        n, per = x.shape[0], delta.shape[0] // x.shape[0]
        size = None if self.batch_size is None else max(2, self.batch_size // 2 * 2)
        hi = lo = total = cover = None
        for rows in chunks(len(delta), size):
            rows = rows.to(x.device)
            s = rows // per
            xt = embed(x[s], rows_index[rows],
                       x[s].flatten(1).gather(1, rows_index[rows]) + delta[rows])
            with derived_rows(s, rows % per):  # a stochastic base draws per (sample, decoy)
                e = self.base(xt, row_targets(target, s.cpu())).to(x.dtype)
            if total is None:
                total = e.new_zeros((n, *e.shape[1:]))
                hi = e.new_full(total.shape, -torch.inf)
                lo = e.new_full(total.shape, torch.inf)
                cover = e.new_zeros((n, 1, *e.shape[2:]))
            if self.aggregation == "range":
                for k in s.unique().tolist():  # rows of one sample are contiguous: few k
                    ek = e[s == k]
                    hi[k] = torch.maximum(hi[k], ek.amax(0))
                    lo[k] = torch.minimum(lo[k], ek.amin(0))
            elif self.aggregation == "mean":
                total.index_add_(0, s, e)
            else:
                pair_s, mask = s[0::2], (rows[0::2] % per) // 2
                inside = _pixel_masks(corners[mask.cpu()].to(x.device), self.patch,
                                      *e.shape[2:]).to(e.dtype)
                total.index_add_(0, pair_s, (e[0::2] - e[1::2]).abs() * inside)
                cover.index_add_(0, pair_s, inside)
        if self.aggregation == "range":
            return hi - lo
        if self.aggregation == "mean":
            return total / per
        return total / cover.clamp_min(1)


def _pixel_masks(corners: torch.Tensor, patch: int, h: int, w: int) -> torch.Tensor:
    """K×1×H×W indicator maps of the p×p patches at ``corners`` (K×2)."""
    ii = torch.arange(h, device=corners.device)[None, :, None]
    jj = torch.arange(w, device=corners.device)[None, None, :]
    i0, j0 = corners[:, 0, None, None], corners[:, 1, None, None]
    inside = (ii >= i0) & (ii < i0 + patch) & (jj >= j0) & (jj < j0 + patch)
    return inside[:, None]


def dance_display(z: torch.Tensor, percentile: float = 95.0) -> torch.Tensor:
    """The paper's display map: |Z| → max over channels → clip at the per-sample
    ``percentile`` → scale to [0, 1]; N×1×H×W."""
    if z.dim() != 4:
        raise InvalidInputError(f"expected an N×C×H×W map, got shape {tuple(z.shape)}")
    a = z.detach().abs().amax(1, keepdim=True)
    q = torch.quantile(a.flatten(1).float(), percentile / 100, dim=1).to(a.dtype)
    a = torch.minimum(a, q.view(-1, 1, 1, 1))
    return a / q.clamp_min(torch.finfo(a.dtype).tiny).view(-1, 1, 1, 1)
