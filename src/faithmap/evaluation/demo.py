"""The embedded default run (``make demo`` → ``faithmap demo``).

Sized to finish in about a minute on a quiet 2-core CPU after ``pip install faithmap``
(the data and weights ship inside faithmap; ``benchmarks/bench_cli.py`` measures it):
:data:`DEMO_N` = 24 samples per benchmark (``--n`` changes it), every method and every
metric of the table. Settings, for 56×56 grey inputs and the zoo's all-convolutional model:

- deletion and insertion: 8 perturbation steps of 392 of the 3,136 pixels each; LeRF/MoRF
  (``lerf_morf_gap``) the same 8 steps;
- Integrated Gradients and BIG: 16 quadrature steps (Gauss–Legendre, the default rule);
  SmoothGrad and VarGrad: 8 noise draws; NeFLAG: 5 search points;
- BSM and BIG: one shared boundary search (the boundary cache): Fast Minimum-Norm with 20
  steps and 5 bisection steps (on these digits within 1% of the distance that 100 steps
  find, every boundary found: benchmarks/RESULTS.md, "A newcomer's wait").

DANCE (minutes per image) and COMET (its own trained model) are left out: their studies are
``benchmarks/claims_dance.py`` and ``benchmarks/claims_comet.py``. The LRP baseline runs
when Zennit is installed (the ``dev``/``compare`` extras). The paper-claim rows of
``docs/results.md`` want more samples than the demo's default: generate them from
``faithmap demo --n 100``.
"""

from __future__ import annotations

import importlib.util

DEMO_MODEL = "zoo:mnist_allconv"
DEMO_DATA = ("grid", "cluttered")
#: Samples per benchmark (``faithmap demo --n``).
DEMO_N = 24
DEMO_METRICS = ("deletion", "insertion", "lerf_morf_gap", "fidelity", "pointing_game",
                "energy_pointing_game", "grid_pointing_game", "pxap", "sparseness")
# FMN with 20 steps and a 5-step bisection, the same for BSM and BIG so that they share one
# search through the boundary cache
_BOUNDARY_SEARCH = {"engine": "fmn", "search_options": {"fmn_steps": 20}, "refine_steps": 5}
DEMO_METHOD_OPTIONS = {"integrated_gradients": {"n_steps": 16},
                       "smoothgrad": {"n_samples": 8}, "vargrad": {"n_samples": 8},
                       "neflag": {"n_samples": 5},
                       "bsm": dict(_BOUNDARY_SEARCH),
                       "big": {**_BOUNDARY_SEARCH, "n_steps": 16}}
#: 8 steps of 392 pixels (1/8 of a 56×56 image) for every perturbation curve.
DEMO_METRIC_OPTIONS = {"deletion": {"step": 392}, "insertion": {"step": 392},
                       "lerf_morf_gap": {"features_in_step": 392}}


def demo_methods() -> list[str]:
    """The demo's methods: the baselines, SRD, LRP (if Zennit is there), BSM/BIG, NeFLAG."""
    methods = ["saliency", "input_x_gradient", "integrated_gradients", "smoothgrad",
               "vargrad", "gradcam", "srd"]
    if importlib.util.find_spec("zennit") is not None:
        methods.append("zennit:EpsilonPlusFlat")
    return methods + ["bsm", "big", "neflag"]
