"""The sanity contract (issue 15): every registered metric, six maps, on real inputs.

The declared outcomes live in ``faithmap.metrics.sanity.CONTRACT``; a metric registered
without one fails ``test_every_registered_metric_declares_the_contract``. Inputs: 2×2 grids
of bundled MNIST test digits with the zoo model ``mnist_allconv``, and a logistic regression
trained on the bundled MNIST digits (``sanity_bench``). Table: ``docs/metrics/sanity.md``.
"""

from __future__ import annotations

import pytest
import torch

import faithmap as fm
from faithmap.metrics import sanity

SLOW = {"deletion", "insertion", "insertion_deletion", "pixel_flipping", "lerf_morf_gap"}


@pytest.fixture(scope="module")
def bench():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield sanity.sanity_bench(fm.zoo.load("mnist_allconv"), n=12, seed=0)
    finally:
        torch.set_num_threads(threads)


def test_every_registered_metric_declares_the_contract():
    assert set(sanity.CONTRACT) == set(fm.metrics.available_metrics())
    for name, outcomes in sanity.CONTRACT.items():
        assert set(outcomes) == set(sanity.CASES), name
        assert all(o.rule in sanity.RULES for o in outcomes.values()), name


def test_an_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="rule"):
        sanity.Outcome("looks fine")


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
    for n in fm.metrics.available_metrics()
])
def test_contract_holds(name, bench):
    measured = sanity.measure(name, bench)
    failures = {}
    for case in sanity.CASES:
        ok, why = sanity.check(name, case, measured[case])
        if not ok:
            failures[case] = f"{sanity.CONTRACT[name][case].rule}: {why}"
    assert not failures, failures


def test_linear_contributions_are_input_x_gradient_of_the_linear_model(bench):
    lin = bench.linear
    ixg = fm.explain(lin.model, lin.x, "input_x_gradient", target=lin.target)
    assert torch.allclose(lin.model.contributions(lin.x, lin.target), ixg, atol=1e-6)
    # the linear model is a real classifier of the bundled digits (class 0 = digits 0-4)
    x, y = fm.data.load("mnist", "test")
    with torch.no_grad():
        acc = (lin.model(x).argmax(1) == (y >= 5).long()).float().mean()
    assert acc > 0.8


def test_checks_can_fail(bench):
    """The rules are not vacuous: a wrong declaration is reported."""
    m = sanity.measure("pointing_game", bench)
    wrong = sanity.Outcome("value", value=1.0)
    saved = sanity.CONTRACT["pointing_game"]["zeros"]
    try:
        sanity.CONTRACT["pointing_game"]["zeros"] = wrong
        assert not sanity.check("pointing_game", "zeros", m["zeros"])[0]
    finally:
        sanity.CONTRACT["pointing_game"]["zeros"] = saved
