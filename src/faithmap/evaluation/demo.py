"""The embedded default run (``make demo`` → ``faithmap demo``).

Sized to finish in a few minutes on 2 CPU cores: 16 perturbation steps for the deletion,
insertion and LeRF/MoRF curves (196 of the 56×56 = 3,136 pixels per step), IG with 32
steps and 16 noise draws for SmoothGrad/VarGrad.
"""

DEMO_MODEL = "zoo:mnist_allconv"
DEMO_DATA = ("grid", "cluttered")
DEMO_METRICS = ("deletion", "insertion", "lerf_morf_gap", "fidelity", "pointing_game",
                "energy_pointing_game", "grid_pointing_game", "pxap", "sparseness")
DEMO_METHOD_OPTIONS = {"integrated_gradients": {"n_steps": 32},
                       "smoothgrad": {"n_samples": 16}, "vargrad": {"n_samples": 16}}
DEMO_METRIC_OPTIONS = {"deletion": {"step": 196}, "insertion": {"step": 196},
                       "lerf_morf_gap": {"features_in_step": 196}}
