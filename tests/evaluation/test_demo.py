"""The demo's own settings (faithmap.evaluation.demo): every method and metric of the table,
at a cost that fits about a minute on 2 CPU cores (benchmarks/bench_cli.py measures it)."""

import math

import pytest

import faithmap as fm
from faithmap.cli.evaluate import demo as demo_command
from faithmap.evaluation import demo
from faithmap.metrics import available_metrics


@pytest.fixture(scope="module")
def model():
    return fm.zoo.load("mnist_allconv")


def test_demo_default_n_is_the_documented_one():
    (n_option,) = [p for p in demo_command.params if p.name == "n"]
    assert n_option.default == demo.DEMO_N == 24
    assert f"DEMO_N` = {demo.DEMO_N}" in demo.__doc__


def test_every_method_and_metric_takes_the_demo_options(model):
    assert set(demo.DEMO_METRICS) <= set(available_metrics())
    assert set(demo.DEMO_METHOD_OPTIONS) <= set(demo.demo_methods())
    assert {"srd", "bsm", "big", "neflag", "integrated_gradients"} <= set(demo.demo_methods())
    for name in demo.demo_methods():
        fm.get_explainer(model, name, **demo.DEMO_METHOD_OPTIONS.get(name, {}))


def test_bsm_and_big_share_one_boundary_search(model):
    bsm = fm.get_explainer(model, "bsm", **demo.DEMO_METHOD_OPTIONS["bsm"])
    big = fm.get_explainer(model, "big", **demo.DEMO_METHOD_OPTIONS["big"])
    assert bsm.search == big.search and bsm.search["engine"] == "fmn"


def test_declared_cost_per_sample_fits_the_minute(model):
    """Passes per 56×56 sample that the demo's explainers declare (Explainer.cost), the
    shared search counted in both BSM and BIG: 241 here, 949 with the earlier settings
    (the PGD sweep + CW search, 32 IG steps, 16 noise draws)."""
    total = 0
    for name in demo.demo_methods():
        explainer = fm.get_explainer(model, name, **demo.DEMO_METHOD_OPTIONS.get(name, {}))
        cost = explainer.cost((demo.DEMO_N, 1, 56, 56), None)
        total += cost.passes
    assert total <= 300
    pixels = 56 * 56
    steps = {m: math.ceil(pixels / next(iter(o.values())))
             for m, o in demo.DEMO_METRIC_OPTIONS.items()}
    assert steps == {"deletion": 8, "insertion": 8, "lerf_morf_gap": 8}
