"""Named settings per registered method: ``preset="fast" | "default" | "paper"``.

- ``"default"``: the method's own defaults (no options).
- ``"paper"``: the settings of the method's paper or its authors' code, as far as they are
  stated (each entry says where it comes from and what is ours).
- ``"fast"``: settings whose declared cost (:meth:`~faithmap.core.explainer.Explainer.cost`)
  on one 224² RGB image is at most :data:`FAST_PASSES` passes through the model (forward +
  backward rows, passes stopped at an inner layer counted as full ones), so that one image
  with torchvision resnet50 on 2 CPU cores takes about a minute at most.

``fm.explain(model, x, method, preset="fast", **options)``,
``fm.get_explainer(model, method, preset="fast")`` and ``faithmap explain --preset fast``
take them; explicit options override the preset's (a whole option is replaced, also a
dict such as DANCE's ``base_options``). ``faithmap methods --options NAME`` prints them;
``docs/presets.md`` is :func:`presets_markdown` (``python -m faithmap.core.presets``).

This module is data only: it imports no method (the layering), and a test builds every
method with every preset so an option a method does not take fails there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PRESET_NAMES = ("fast", "default", "paper")
DEFAULT_PRESET = "default"

#: The budget of a ``"fast"`` preset: declared passes per 224² image (forward + backward
#: rows through the model, plus the passes stopped at an inner layer).
FAST_PASSES = 150

#: The paper radii of the boundary search (github.com/zifanw/boundary, the PGD-L2 sweep of
#: /work/shared/specs/boundary.md), for [0, 1] 224² ImageNet inputs.
_BOUNDARY_RADII = [36 / 255, 64 / 255, 0.3, 0.5, 0.7, 0.9, 1.1]
_BOUNDARY_PAPER = {"norm": "l2", "radius": _BOUNDARY_RADII, "steps": 40, "cw_steps": 100}
_BOUNDARY_PAPER_SOURCE = (
    "reference code github.com/zifanw/boundary as in the spec: PGD-L2, 40 steps per radius, "
    "radii 36/255, 64/255, 0.3, 0.5, 0.7, 0.9, 1.1 (for [0, 1] 224² inputs), then CW-L2 "
    "100 steps (docs/methods/boundary.md 'Boundary search'); step size 2.5·radius/steps "
    "(the reference's 2·radius²/steps is a bug)")
#: Fast Minimum-Norm instead of the sweep of radii (docs/methods/boundary.md).
_BOUNDARY_FAST = {"search_options": {"engine": "fmn", "fmn_steps": 32}, "refine_steps": 5}
_BOUNDARY_FAST_SOURCE = "Fast Minimum-Norm boundary search of 32 steps, 5 bisection steps"
_SMOOTHGRAD_PAPER = {"n_samples": 50, "noise_level": 0.15}
_SMOOTHGRAD_SOURCE = ("Smilkov et al. 2017: noise level σ/(x_max − x_min) of 10–20% "
                      "(15% used), sample size n = 50")


@dataclass(frozen=True)
class Preset:
    """One preset of one method: the ``options`` it passes and the ``source`` of the values
    (a paper section, the authors' code, or why they are fast)."""

    options: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""


_DEFAULT = Preset({}, "the method's defaults")

PRESETS: dict[str, dict[str, Preset]] = {
    "saliency": {
        "fast": Preset({}, "already 1 forward + 1 backward pass"),
        "paper": Preset({"abs": True}, "Simonyan, Vedaldi, Zisserman 2014: |∂f_y/∂x| "
                        "(the paper then takes the max over channels for display)"),
    },
    "input_x_gradient": {
        "fast": Preset({}, "already 1 forward + 1 backward pass"),
        "paper": Preset({}, "Shrikumar et al. 2016: x ⊙ ∂f_y/∂x has no settings"),
    },
    "integrated_gradients": {
        "fast": Preset({"n_steps": 20}, "20 Gauss–Legendre steps, the low end of the "
                       "paper's 20–300"),
        "paper": Preset({"baseline": 0.0, "n_steps": "auto", "tolerance": 0.05,
                         "max_steps": 300},
                        "Sundararajan et al. 2017 §3/§6: black baseline; 20–300 steps, as "
                        "many as needed for Σ IG within 5% of f(x) − f(x′) (the completeness "
                        "check), here adaptive to that tolerance (docs/methods/gradients.md)"),
    },
    "smoothgrad": {
        "fast": Preset({"n_samples": 20}, "20 noise draws instead of 50"),
        "paper": Preset(_SMOOTHGRAD_PAPER, _SMOOTHGRAD_SOURCE),
    },
    "vargrad": {
        "fast": Preset({"n_samples": 20}, "20 noise draws instead of 50"),
        "paper": Preset(_SMOOTHGRAD_PAPER, "Adebayo et al. 2018 use SmoothGrad's noise "
                        "[ours: Smilkov et al.'s 15%, n = 50]"),
    },
    "gradcam": {
        "fast": Preset({}, "already 1 forward + 1 backward pass"),
        "paper": Preset({"relu": True, "interpolate": "bilinear"},
                        "Selvaraju et al. 2017: ReLU of the weighted map, bilinear upsampling "
                        "(the paper's layer is the last conv block: layer='layer4' for "
                        "ResNets, docs/methods/gradcam.md)"),
    },
    "srd": {
        "fast": Preset({}, "already 1 replay forward + 1 relevance backward"),
        "paper": Preset({"start": "auto", "contrastive": False, "per_channel": False},
                        "reference code (Sangyu-Han/SharingRatioDecomposition): for GAP + "
                        "linear models (ResNet) its start is the head decomposition "
                        "(docs/methods/srd.md 'Start of the recursion'); for VGG heads it "
                        "starts at a clamped CAM: pass start='cam', cam_clamp=True"),
    },
    "bsm": {
        "fast": Preset(_BOUNDARY_FAST, _BOUNDARY_FAST_SOURCE),
        "paper": Preset({**_BOUNDARY_PAPER, "objective": "logit"},
                        _BOUNDARY_PAPER_SOURCE + "; the logit's gradient as the reference"),
    },
    "big": {
        "fast": Preset({**_BOUNDARY_FAST, "n_steps": 12},
                       _BOUNDARY_FAST_SOURCE + "; 12 IG steps"),
        "paper": Preset(_BOUNDARY_PAPER, _BOUNDARY_PAPER_SOURCE + "; IG at the defaults "
                        "[ours: the paper's step count was not read]"),
    },
    "boundary_smoothgrad": {
        "fast": Preset({**_BOUNDARY_FAST, "n_samples": 12},
                       _BOUNDARY_FAST_SOURCE + "; 12 noise draws"),
        "paper": Preset({**_BOUNDARY_PAPER, **_SMOOTHGRAD_PAPER},
                        _BOUNDARY_PAPER_SOURCE + "; " + _SMOOTHGRAD_SOURCE),
    },
    "neflag": {
        "fast": Preset({"n_samples": 10, "steps": 5},
                       "NeFLAG-10 (a variant of the paper), 5 descent steps"),
        "paper": Preset({"n_samples": 20, "steps": 10, "score": "probability",
                         "norm": "l2"},
                        "Li et al. 2023: NeFLAG-20, the paper's best variant, on the softmax "
                        "probability; T = 10 steps of ε/T on an L2 sphere [ours: the paper's "
                        "sampling was not readable, docs/methods/neflag.md]"),
    },
    "dance": {
        "fast": Preset({"patch": 16, "stride": 16, "max_masks": 4, "steps": 6,
                        "patience": None},
                       "4 of the 16×16 patches, a centred 2×2 sub-grid (8 decoys), 6 solver steps: "
                       "a preview, brightest at the kept patches (docs/methods/dance.md)"),
        "paper": Preset({"base_options": {"abs": False}, "patch": 3, "stride": 3,
                         "aggregation": "range", "decoys": "optimised"},
                        "Lu et al. 2021: the signed gradient as base, 3×3 patches (VGG16), "
                        "range aggregation (Eq. 3), optimised decoys "
                        "[ours: the solver and ε, docs/methods/dance.md]; 5,625 masks at 224²"),
    },
    "comet": {
        "fast": Preset({}, "already one selector pass"),
        "paper": Preset({}, "the shipped checkpoint; training settings are train-comet's "
                        "(docs/methods/comet.md)"),
    },
}


def check_preset(preset: str) -> str:
    """``preset`` if it is one of :data:`PRESET_NAMES` (else ValueError)."""
    if preset not in PRESET_NAMES:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESET_NAMES)}")
    return preset


def method_name(method: Any) -> str:
    """The registry name of ``method`` (a name or an Explainer class with ``name``)."""
    name = method if isinstance(method, str) else getattr(method, "name", "")
    return name.strip().lower() if isinstance(name, str) else ""


def get_preset(method: Any, preset: str) -> Preset:
    """The :class:`Preset` ``preset`` of ``method``: ``"default"`` is every method's (no
    options); ``"fast"``/``"paper"`` exist for the registered methods of :data:`PRESETS`."""
    check_preset(preset)
    if preset == DEFAULT_PRESET:
        return _DEFAULT
    name = method_name(method)
    if name not in PRESETS:
        raise ValueError(f"method {name or method!r} has no {preset!r} preset (presets: "
                         f"{', '.join(PRESETS)}); use preset='default' and pass options")
    return PRESETS[name][preset]


def preset_options(method: Any, preset: str | None, options: Mapping[str, Any] | None = None,
                   ) -> dict[str, Any]:
    """The options of ``preset`` for ``method`` overridden by ``options`` (``preset=None``:
    ``options`` alone)."""
    given = dict(options or {})
    if preset is None:
        return given
    return {**get_preset(method, preset).options, **given}


def presets_of(method: Any) -> dict[str, Preset]:
    """Every preset of ``method`` by name (only ``"default"`` for an unlisted method)."""
    name = method_name(method)
    if name not in PRESETS:
        return {DEFAULT_PRESET: _DEFAULT}
    return {p: (_DEFAULT if p == DEFAULT_PRESET else PRESETS[name][p]) for p in PRESET_NAMES}


def format_options(options: Mapping[str, Any]) -> str:
    """``k=v, …`` (``(the defaults)`` when empty); floats to 4 significant digits."""
    def value(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        if isinstance(v, list):
            return "[" + ", ".join(value(i) for i in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k!r}: {value(i)}" for k, i in v.items()) + "}"
        return repr(v)

    return ", ".join(f"{k}={value(v)}" for k, v in options.items()) or "(the defaults)"


def presets_markdown() -> str:
    """The page ``docs/presets.md``: one table per preset kind, one row per method."""
    lines = [
        "# Presets",
        "",
        "<!-- generated by `python -m faithmap.core.presets > docs/presets.md`; "
        "tests/test_docs_site.py checks it matches src/faithmap/core/presets.py -->",
        "",
        "`faithmap explain --preset fast|default|paper`, "
        "`fm.explain(model, x, method, preset=...)` and "
        "`fm.get_explainer(model, method, preset=...)` pick these settings; explicit options "
        "(`-o key=value`, keyword arguments) override a preset's. "
        "`faithmap methods --options NAME` lists a method's options, defaults and presets.",
        "",
        "- **default**: the method's own defaults.",
        "- **paper**: the settings of the paper or of the authors' code, with where each "
        "comes from; [ours] marks what the paper does not fix.",
        f"- **fast**: at most {FAST_PASSES} declared passes per 224² image "
        "(`Explainer.cost`, forward + backward rows; passes stopped at an inner layer "
        "counted as full ones), about a minute for torchvision resnet50 on 2 CPU cores "
        "(tests/cli/test_cli_presets.py checks the budget).",
        "",
    ]
    for preset in ("fast", "paper"):
        lines += [f"## {preset}", "", "| method | options | source |", "|---|---|---|"]
        for name, presets in PRESETS.items():
            p = presets[preset]
            opts = format_options(p.options).replace("|", "\\|")
            lines.append(f"| `{name}` | `{opts}` | {p.source.replace('|', '&#124;')} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - python -m faithmap.core.presets
    print(presets_markdown(), end="")
