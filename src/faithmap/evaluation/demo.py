"""The embedded default run (``make demo`` → ``faithmap demo``).

Sized to finish in a few minutes on 2 CPU cores: 16 perturbation steps for the deletion,
insertion and LeRF/MoRF curves (196 of the 56×56 = 3,136 pixels per step), IG with 32
steps, 16 noise draws for SmoothGrad/VarGrad, NeFLAG with 5 search points, BSM/BIG with a
shortened boundary search (10 PGD steps per radius, 25 CW steps). DANCE (minutes
per image) and COMET (its own trained model) are left out: their studies are
``benchmarks/claims_dance.py`` and ``benchmarks/claims_comet.py``. The LRP baseline runs
when Zennit is installed (the ``dev``/``compare`` extras).
"""

from __future__ import annotations

import importlib.util

DEMO_MODEL = "zoo:mnist_allconv"
DEMO_DATA = ("grid", "cluttered")
DEMO_METRICS = ("deletion", "insertion", "lerf_morf_gap", "fidelity", "pointing_game",
                "energy_pointing_game", "grid_pointing_game", "pxap", "sparseness")
DEMO_METHOD_OPTIONS = {"integrated_gradients": {"n_steps": 32},
                       "smoothgrad": {"n_samples": 16}, "vargrad": {"n_samples": 16},
                       "neflag": {"n_samples": 5},
                       # a shortened boundary search (default: 40 PGD + 100 CW steps), the
                       # same for BSM and BIG so they share one search through the cache
                       "bsm": {"steps": 10, "cw_steps": 25}, "big": {"steps": 10, "cw_steps": 25}}
DEMO_METRIC_OPTIONS = {"deletion": {"step": 196}, "insertion": {"step": 196},
                       "lerf_morf_gap": {"features_in_step": 196}}


def demo_methods() -> list[str]:
    """The demo's methods: the baselines, SRD, LRP (if Zennit is there), BSM/BIG, NeFLAG."""
    methods = ["saliency", "input_x_gradient", "integrated_gradients", "smoothgrad",
               "vargrad", "gradcam", "srd"]
    if importlib.util.find_spec("zennit") is not None:
        methods.append("zennit:EpsilonPlusFlat")
    return methods + ["bsm", "big", "neflag"]
