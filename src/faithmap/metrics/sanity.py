"""The sanity contract (issue 15): every registered metric's documented outcome on six maps.

Cases (``CASES``), each scored on real inputs (:func:`sanity_bench`):

- ``zeros``: an all-zero map; ``constant``: a map of ones; ``random``: one fixed U[0, 1)
  map (it ignores model and input); ``input``: the input itself — each on 2×2 grids of
  bundled MNIST test digits explained with a grid classifier passed in (the tests and the
  table use the zoo model ``mnist_allconv``; metrics never import the zoo) for its predicted
  class, with the explained cell's mask for the mask metrics;
- ``linear``: the exact contributions w ⊙ (x − 0) of a linear model (logistic regression on
  the bundled MNIST digits, logits (z/2, −z/2), z = w·x + b), on MNIST test digits; for the
  mask metrics the same linear model reads only the explained grid cell;
- ``rescaled``: 100 × the input × gradient map of the grid classifier, compared
  with the map itself.

An outcome (:class:`Outcome`) is a checkable ``rule`` and a ``note`` (see ``RULES``).
``CONTRACT[name][case]`` declares it for every metric of ``available_metrics()``; a metric
registered without a contract fails ``tests/metrics/test_sanity_contract.py``. The measured
table is ``docs/metrics/sanity.md``: ``python tests/metrics/sanity_table.py`` prints it.
Explainer-based metrics (``mprt``, ``max_sensitivity``, ``manipulation_attack``) get an
explainer that returns the case's map (zeros, ones, the fixed random map, x itself,
input × gradient = the exact contributions on the linear model, 100 × input × gradient).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .. import data as fm_data
from ..core.errors import InvalidInputError
from ..core.registry import get_explainer
from .base import get_metric

CASES = ("zeros", "constant", "random", "input", "linear", "rescaled")

RULES = {
    "value": "every sample scores `value` (±1e-5)",
    "area": "every sample scores its mask's area fraction |M|/HW (chance), ±1e-5",
    "nan": "every sample scores NaN (undefined; aggregation drops it)",
    "raises": "the metric raises InvalidInputError",
    "blank": "identical to the all-zero map's scores",
    "near": "mean within 4 standard errors (+0.02) of `value` ('area': the mean area fraction)",
    "not_above_random": "mean not better than the random map's beyond 3 standard errors",
    "better_than_random": "mean better than a random map's on the same model and inputs",
    "invariant": "the ×100 map scores what the map scores (rtol 1e-4)",
    "measured": "no claim: one finite score per sample, recorded in the table",
}


@dataclass(frozen=True)
class Outcome:
    """A documented outcome: ``rule`` (a key of ``RULES``), ``note``, optional ``value``."""

    rule: str
    note: str = ""
    value: float | str | None = None

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"rule must be one of {sorted(RULES)}, got {self.rule!r}")


def _o(rule: str, note: str = "", value: float | str | None = None) -> Outcome:
    return Outcome(rule, note, value)


_NO_ORDER = "no ranking: equal attributions go in a seeded random order (ties='random')"
_RANKING = {
    "zeros": _o("not_above_random", _NO_ORDER),
    "constant": _o("blank", "a constant map ranks like the all-zero map"),
    "random": _o("measured"),
    "input": _o("measured"),
    "linear": _o("better_than_random", "exact contributions order pixels by their effect"),
    "rescaled": _o("invariant", "depends on the ranking only"),
}
_MASS = {
    "zeros": _o("value", "no positive mass: 0", 0.0),
    "constant": _o("area", "positive mass spread evenly: the chance level"),
    "random": _o("near", "≈ chance", "area"),
    "input": _o("measured", "share of the ink inside the mask"),
    "linear": _o("value", "all positive mass lies in the cell the model reads", 1.0),
    "rescaled": _o("invariant", "a ratio of masses"),
}
_STABLE = "best by definition: a map that ignores the input does not move (stability, " \
          "not faithfulness)"

CONTRACT: dict[str, dict[str, Outcome]] = {
    "sparseness": {
        "zeros": _o("value", "no mass: 0", 0.0),
        "constant": _o("value", "perfectly even: 0", 0.0),
        "random": _o("near", "Gini of U[0, 1) is 1/3", 1 / 3),
        "input": _o("measured", "a digit is sparse ink"),
        "linear": _o("measured"),
        "rescaled": _o("invariant", "Gini is a ratio"),
    },
    "deletion": dict(_RANKING),
    "insertion": dict(_RANKING),
    "insertion_deletion": dict(_RANKING),
    "pixel_flipping": dict(_RANKING),
    "lerf_morf_gap": {
        **_RANKING,
        "zeros": _o("value", "LeRF and MoRF orders coincide (one tie order): 0", 0.0),
        "constant": _o("value", "LeRF and MoRF orders coincide: 0", 0.0),
        "random": _o("near", "equal expected LeRF and MoRF curves", 0.0),
    },
    "road": dict(_RANKING),
    "fidelity": {
        "zeros": _o("measured", "E − mean E = 0: the blank-image level log p(x) − log p(0)"),
        "constant": _o("blank", "a constant map is the blank level"),
        "random": _o("measured"),
        "input": _o("measured", "limitation: SF only asks that the kept evidence preserves "
                                "the class, so the input itself scores best of all maps"),
        "linear": _o("measured"),
        "rescaled": _o("invariant", "maps are scaled to [0, 1] inside (normalise='dance')"),
    },
    "faithfulness_correlation": {
        "zeros": _o("nan", "attribution sums have zero variance"),
        "constant": _o("nan", "equal-size subsets have equal sums"),
        "random": _o("near", "uncorrelated with the model", 0.0),
        "input": _o("measured"),
        "linear": _o("value", "logit drop = Σ_S contributions exactly", 1.0),
        "rescaled": _o("invariant", "Pearson correlation"),
    },
    "pointing_game": {
        "zeros": _o("value", "constant map: no maximum, a miss", 0.0),
        "constant": _o("value", "constant map: no maximum, a miss", 0.0),
        "random": _o("near", "≈ chance (area fraction)", "area"),
        "input": _o("not_above_random", "ties='all': saturated ink in every cell is no hit"),
        "linear": _o("value", "the maximum lies in the cell the model reads", 1.0),
        "rescaled": _o("invariant", "argmax"),
    },
    "energy_pointing_game": dict(_MASS),
    "grid_pointing_game": dict(_MASS),
    "pxap": {
        "zeros": _o("value", "constant map: no ranking, 0", 0.0),
        "constant": _o("value", "constant map: no ranking, 0", 0.0),
        "random": _o("near", "≈ chance (area fraction)", "area"),
        "input": _o("measured"),
        "linear": _o("better_than_random", "zero contributions tie with the outside"),
        "rescaled": _o("invariant", "min-max normalised"),
    },
    "mprt": {
        "zeros": _o("value", "identical maps: similarity 1, the worst score", 1.0),
        "constant": _o("value", "identical maps: similarity 1, the worst score", 1.0),
        "random": _o("value", "a fixed map ignores the model: 1, the worst score", 1.0),
        "input": _o("value", "x ignores the model: 1, the worst score", 1.0),
        "linear": _o("measured", "input × gradient follows the re-initialised weights"),
        "rescaled": _o("invariant", "Spearman ρ of |E|"),
    },
    "max_sensitivity": {
        "zeros": _o("raises", "‖E(x)‖ = 0: relative sensitivity undefined"),
        "constant": _o("value", _STABLE, 0.0),
        "random": _o("value", _STABLE, 0.0),
        "input": _o("measured", "‖ε‖/‖x‖ of the noise"),
        "linear": _o("measured", "w ⊙ (x + ε) moves with ε"),
        "rescaled": _o("invariant", "a ratio of norms"),
    },
    "manipulation_attack": {
        "zeros": _o("value", _STABLE + "; top-k of a constant map: the first k pixels", 1.0),
        "constant": _o("value", _STABLE + "; top-k of a constant map: the first k pixels", 1.0),
        "random": _o("value", _STABLE, 1.0),
        "input": _o("measured"),
        "linear": _o("measured"),
        "rescaled": _o("invariant", "top-k of the normalised map"),
    },
}

# Fast settings for the contract table (documented in docs/metrics/sanity.md).
OPTIONS: dict[str, dict[str, Any]] = {
    "deletion": {"step": 112}, "insertion": {"step": 112}, "insertion_deletion": {"step": 112},
    "pixel_flipping": {"features_in_step": 112}, "lerf_morf_gap": {"features_in_step": 112},
    "road": {"percentages": (0.2, 0.5, 0.8)},
    "faithfulness_correlation": {"n_samples": 20, "subset_size": 56},
    "mprt": {"layers": 2}, "max_sensitivity": {"n_samples": 3},
    "manipulation_attack": {"steps": 2, "n_candidates": 2},
}


class HalfLogits(nn.Module):
    """Binary logistic regression with logits (z/2, −z/2), z = w·flatten(x) + b.

    p_0 = sigmoid(z); the exact contribution of pixel i to logit t is s_t · w_i x_i / 2
    (s_0 = 1, s_1 = −1) relative to the all-zero baseline: input × gradient.
    """

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.linear(x.flatten(1))
        return torch.cat([z / 2, -z / 2], 1)

    def contributions(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """w ⊙ (x − 0) for the logit of ``target``: s_t · (w/2) ⊙ x, N×C×H×W."""
        w = self.linear.weight.detach().view(1, *x.shape[1:])
        sign = 1 - 2 * target.to(x.dtype).view(-1, 1, 1, 1)
        return sign * w / 2 * x


def train_linear(seed: int = 0, steps: int = 200) -> HalfLogits:
    """HalfLogits trained on the bundled MNIST train digits: class 0 = digits 0–4."""
    x, y = fm_data.load("mnist", "train")
    g = torch.Generator().manual_seed(seed)
    model = HalfLogits(x[0].numel())
    with torch.no_grad():
        model.linear.weight.normal_(0, 0.01, generator=g)
        model.linear.bias.zero_()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    label = (y >= 5).long()
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), label).backward()
        opt.step()
    return model.eval()


@dataclass
class Setting:
    """One model with inputs, targets (predicted class) and optional masks."""

    model: nn.Module
    x: torch.Tensor
    target: torch.Tensor
    masks: torch.Tensor | None = None

    @property
    def area(self) -> torch.Tensor:
        assert self.masks is not None
        return self.masks.flatten(1).float().mean(1)


@dataclass
class SanityBench:
    """The real inputs of the contract: ``grid`` (mnist_allconv on 2×2 MNIST grids, the
    explained cell's mask), ``linear`` (the linear model on MNIST test digits), the exact
    cell-restricted linear contributions ``cell_linear`` on the grids and a fixed random map."""

    grid: Setting
    linear: Setting
    cell_linear: torch.Tensor
    random_grid: torch.Tensor
    random_linear: torch.Tensor
    info: dict = field(default_factory=dict)


def sanity_bench(model: nn.Module, n: int = 16, seed: int = 0) -> SanityBench:
    """Build the contract's inputs for ``model``, a classifier of 56×56 2×2 grids of MNIST
    digits (e.g. ``faithmap.zoo.load("mnist_allconv")``); a few seconds on one CPU thread."""
    grid = fm_data.grid("mnist", n=2, count=n, split="test", seed=seed)
    cell = torch.randint(grid.masks.shape[1], (n,),
                         generator=torch.Generator().manual_seed(seed + 1))
    rows = torch.arange(n)
    masks = grid.masks[rows, cell][:, None].bool()
    allconv = model
    xg = grid.images
    with torch.no_grad():
        pred = allconv(xg).argmax(1)
    lin = train_linear(seed)
    xt, _ = fm_data.load("mnist", "test")
    xl = xt[torch.randperm(len(xt), generator=torch.Generator().manual_seed(seed))[:n]]
    with torch.no_grad():
        pred_l = lin(xl).argmax(1)
    # The linear model reads only the explained cell: its weights placed on that cell.
    h, w = xl.shape[-2:]
    cells = torch.zeros_like(xg)
    for i in range(n):
        r, c = divmod(int(cell[i]), 2)
        cells[i, :, r * h:(r + 1) * h, c * w:(c + 1) * w] = lin.linear.weight.view(1, h, w)
    contrib = cells.detach() * xg
    contrib = contrib * torch.where(contrib.flatten(1).sum(1) >= 0, 1.0, -1.0).view(-1, 1, 1, 1)
    g = torch.Generator().manual_seed(seed + 2)
    return SanityBench(
        Setting(allconv, xg, pred, masks), Setting(lin, xl, pred_l),
        contrib, torch.rand(xg.shape[1:], generator=g)[None].expand_as(xg).contiguous(),
        torch.rand(xl.shape[1:], generator=g)[None].expand_as(xl).contiguous(),
        {"n": n, "seed": seed, "predicted_fraction_grid":
         float((pred == grid.labels[rows, cell]).float().mean())},
    )


@dataclass
class Measured:
    """Scores of one metric on one case (``error``: the exception's class name)."""

    scores: torch.Tensor | None
    error: str | None = None
    reference: torch.Tensor | None = None  # the zeros / random / unscaled scores compared with
    area: torch.Tensor | None = None


def _fixed(a: torch.Tensor) -> Callable[..., torch.Tensor]:
    """An explainer returning map ``a`` (broadcast from its first row) for any batch."""
    def explain(model: nn.Module, x: torch.Tensor, target: Any) -> torch.Tensor:
        return a[:1].expand_as(x).to(x.device, x.dtype).contiguous()
    return explain


def _scaled_ixg(scale: float) -> Callable[..., torch.Tensor]:
    def explain(model: nn.Module, x: torch.Tensor, target: Any) -> torch.Tensor:
        return scale * get_explainer(model, "input_x_gradient")(x, target)
    return explain


def _input_map(model: nn.Module, x: torch.Tensor, target: Any) -> torch.Tensor:
    return x.clone()


def _ixg(model: nn.Module, x: torch.Tensor, target: Any) -> torch.Tensor:
    return get_explainer(model, "input_x_gradient")(x, target)


def _score(name: str, s: Setting, a: torch.Tensor,
           explainer: Callable[..., torch.Tensor] | None, masks: torch.Tensor | None) -> Measured:
    fn = get_metric(name)
    opts = dict(OPTIONS.get(name, {}))
    try:
        if fn.kind == "model":
            if explainer is not None:
                opts["explainer"] = explainer
            scores = fn(s.model, s.x, a, s.target, **opts)
        elif fn.kind == "mask":
            scores = fn(a, masks if masks is not None else s.masks, **opts)
        else:
            scores = fn(a, **opts)
    except InvalidInputError as exc:
        return Measured(None, type(exc).__name__)
    return Measured(scores.detach().double().cpu())


def measure(name: str, bench: SanityBench) -> dict[str, Measured]:
    """Every case of ``CASES`` for metric ``name``, with the references the rules compare to."""
    fn = get_metric(name)
    needs_explainer = fn.kind == "model" and "explainer" in _params(fn)
    z, lin = bench.grid, bench.linear
    ixg = get_explainer(z.model, "input_x_gradient")(z.x, z.target).detach()
    maps = {"zeros": torch.zeros_like(z.x), "constant": torch.ones_like(z.x),
            "random": bench.random_grid, "input": z.x.clone()}
    explainers: dict[str, Callable[..., torch.Tensor]] = {
        "zeros": _fixed(maps["zeros"]), "constant": _fixed(maps["constant"]),
        "random": _fixed(maps["random"]), "input": _input_map}
    out: dict[str, Measured] = {}
    for case, a in maps.items():
        out[case] = _score(name, z, a, explainers[case] if needs_explainer else None, None)
    # linear: exact contributions; a random map on the same model and inputs is the reference
    if fn.kind == "mask":
        lin_m = _score(name, z, bench.cell_linear, None, None)
        lin_ref = out["random"]
    else:
        contrib = lin.model.contributions(lin.x, lin.target)
        lin_m = _score(name, lin, contrib, _ixg if needs_explainer else None, None)
        lin_ref = _score(name, lin, bench.random_linear,
                         _fixed(bench.random_linear) if needs_explainer else None, None)
    lin_m.reference = lin_ref.scores
    out["linear"] = lin_m
    base = _score(name, z, ixg, _scaled_ixg(1.0) if needs_explainer else None, None)
    big = _score(name, z, 100 * ixg, _scaled_ixg(100.0) if needs_explainer else None, None)
    big.reference = base.scores
    out["rescaled"] = big
    out["constant"].reference = out["zeros"].scores
    out["zeros"].reference = out["random"].scores
    out["input"].reference = out["random"].scores
    if z.masks is not None:
        for m in out.values():
            m.area = z.area.double()
    return out


def _params(fn: Callable[..., Any]) -> set[str]:
    import inspect
    return set(inspect.signature(fn).parameters)


def _better(a: float, b: float, higher: bool) -> bool:
    return a > b if higher else a < b


def check(name: str, case: str, m: Measured) -> tuple[bool, str]:
    """(holds, why) for the declared outcome of ``name`` on ``case``."""
    o = CONTRACT[name][case]
    higher = get_metric(name).higher_is_better
    if o.rule == "raises":
        return m.error == "InvalidInputError", f"error={m.error}"
    if m.scores is None:
        return False, f"raised {m.error}"
    s = m.scores
    if o.rule == "nan":
        return bool(torch.isnan(s).all()), f"mean={_fmt(s)}"
    finite = bool(torch.isfinite(s).all())
    if o.rule == "measured":
        return finite, f"mean={_fmt(s)}"
    if o.rule == "value":
        return finite and bool(((s - float(o.value)).abs() <= 1e-5).all()), f"mean={_fmt(s)}"
    if o.rule == "area":
        return finite and bool(((s - m.area).abs() <= 1e-5).all()), \
            f"mean={_fmt(s)} area={_fmt(m.area)}"
    if o.rule == "blank":
        ok = m.reference is not None and torch.allclose(s, m.reference, rtol=1e-5, atol=1e-6,
                                                        equal_nan=True)
        return ok, f"mean={_fmt(s)} zeros={_fmt(m.reference)}"
    if o.rule == "invariant":
        ok = m.reference is not None and torch.allclose(s, m.reference, rtol=1e-4, atol=1e-5,
                                                        equal_nan=True)
        return ok, f"×100 {_fmt(s)} vs ×1 {_fmt(m.reference)}"
    if o.rule == "near":
        target = m.area if o.value == "area" else torch.full_like(s, float(o.value))
        d = s - target
        se = float(d.std()) / math.sqrt(len(d)) if len(d) > 1 else 0.0
        ok = finite and abs(float(d.mean())) <= 4 * se + 0.02
        return ok, f"mean={_fmt(s)} expected≈{float(target.mean()):.3f}"
    ref = m.reference
    if ref is None:
        return False, "no reference"
    diff = (s - ref) if higher else (ref - s)  # > 0: better than the reference
    se = float(diff.std()) / math.sqrt(len(diff)) if len(diff) > 1 else 0.0
    if o.rule == "better_than_random":
        return finite and float(diff.mean()) > 0, f"mean={_fmt(s)} random={_fmt(ref)}"
    if o.rule == "not_above_random":
        return finite and float(diff.mean()) <= 3 * se + 1e-6, \
            f"mean={_fmt(s)} random={_fmt(ref)}"
    raise AssertionError(o.rule)


def _fmt(t: torch.Tensor | None) -> str:
    if t is None:
        return "–"
    finite = t[torch.isfinite(t)]
    if len(finite) == 0:
        return "NaN"
    return f"{float(finite.mean()):.3f}" + ("" if len(finite) == len(t) else "*")


def table(bench: SanityBench) -> str:
    """The contract table in Markdown: per metric and case, the outcome, measured, holds."""
    lines = ["| metric | " + " | ".join(CASES) + " |", "|---" * (len(CASES) + 1) + "|"]
    for name in CONTRACT:
        measured = measure(name, bench)
        cells = []
        for case in CASES:
            ok, why = check(name, case, measured[case])
            o = CONTRACT[name][case]
            rule = o.rule + (f" {o.value:.3g}" if isinstance(o.value, float) else
                             f" {o.value}" if o.value else "")
            cells.append(f"{rule}: {why}{'' if ok else ' **FAILS**'}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
