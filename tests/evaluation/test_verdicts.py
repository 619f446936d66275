"""Verdicts with spread: outcomes checked against a literal computation and hand-made cases."""

import math
from statistics import NormalDist

import numpy as np
import pytest

from faithmap.evaluation.verdicts import claim_verdict, compare, summarise

Z975 = NormalDist().inv_cdf(0.975)  # the two-sided 95% normal quantile, independently


def test_clear_win_holds_and_clear_loss_fails():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(3, 40))
    assert compare(base + 1.0, base).outcome == "holds"
    assert compare(base, base + 1.0).outcome == "fails"
    # lower is better flips the orientation
    assert compare(base, base + 1.0, higher_is_better=False).outcome == "holds"


def test_difference_within_sample_spread_is_inconclusive():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(3, 30)), rng.normal(size=(3, 30))
    d = compare(a + 0.01, b)
    assert d.outcome == "inconclusive"
    assert d.low < 0 < d.high


def test_seeds_that_disagree_make_it_inconclusive():
    # a large pooled mean difference carried by two seeds, the third points the other way
    a = np.array([[2.0] * 50, [2.0] * 50, [-0.5] * 50]) + np.linspace(0, 0.01, 50)
    b = np.zeros((3, 50))
    d = compare(a, b)
    assert d.low > 0  # the interval alone would call it a win
    assert d.seed_diffs[2] < 0
    assert d.outcome == "inconclusive"


def test_numbers_match_a_literal_computation():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(2, 25)), rng.normal(size=(2, 25))
    a[0, 3] = math.nan  # dropped pairwise
    d = compare(a, b)
    pairs = [(x, y) for ra, rb in zip(a, b) for x, y in zip(ra, rb) if not math.isnan(x)]
    diffs = [x - y for x, y in pairs]
    n = len(diffs)
    mean = sum(diffs) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in diffs) / (n - 1))
    assert d.n_samples == n == 49
    assert d.diff == pytest.approx(mean)
    assert d.high - d.diff == pytest.approx(Z975 * sd / math.sqrt(n))
    assert d.mean_b == pytest.approx(sum(y for _, y in pairs) / n)  # b's NaN partner dropped


def test_summarise_and_text():
    mean, half = summarise([[1.0, 2.0, 3.0], [4.0, 5.0, math.nan]])
    assert mean == pytest.approx(3.0)
    assert half == pytest.approx(Z975 * np.std([1, 2, 3, 4, 5], ddof=1) / math.sqrt(5))
    assert "holds" in compare([1.0, 2.0, 3.0], [0.0, 0.5, 1.0]).text("IG", "BIG")
    assert math.isnan(summarise([math.nan])[0])


def test_one_pair_is_never_a_verdict():
    assert compare([1.0], [0.0]).outcome == "inconclusive"


@pytest.mark.parametrize(("outcomes", "verdict"), [
    (["holds", "holds"], "reproduced"),
    (["fails", "fails"], "not reproduced"),
    (["fails", "inconclusive"], "not reproduced"),
    (["inconclusive", "inconclusive"], "inconclusive"),
    (["holds", "inconclusive"], "partly"),
    (["holds", "fails"], "partly"),
    ([], "inconclusive"),
])
def test_claim_verdict(outcomes, verdict):
    assert claim_verdict(outcomes) == verdict


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="shape"):
        compare([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="unknown outcomes"):
        claim_verdict(["yes"])


def test_ci_outcome_needs_non_overlapping_intervals():
    from faithmap.evaluation.verdicts import ci_outcome

    def row(mean, ci, higher=True):
        return {"mean": mean, "ci95": ci, "higher_is_better": higher}

    assert ci_outcome(row(1.0, 0.1), row(0.5, 0.1)) == "holds"
    assert ci_outcome(row(0.5, 0.1), row(1.0, 0.1)) == "fails"
    assert ci_outcome(row(1.0, 0.3), row(0.5, 0.3)) == "inconclusive"  # overlapping
    assert ci_outcome(row(0.5, 0.1, False), row(1.0, 0.1, False)) == "holds"  # lower wins
    assert ci_outcome(row(1.0, math.nan), row(0.0, 0.1)) == "inconclusive"
