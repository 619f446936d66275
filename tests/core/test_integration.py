import pytest
import torch

from faithmap.core.integration import METHODS, quadrature


@pytest.mark.parametrize("method", METHODS)
def test_weights_sum_to_one_and_points_in_unit_interval(method):
    alphas, weights = quadrature(method, 9)
    assert torch.isclose(weights.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert alphas.min() >= 0 and alphas.max() <= 1


def test_gauss_legendre_exact_for_polynomials():
    alphas, weights = quadrature("gausslegendre", 4)  # exact up to degree 7
    for deg in range(8):
        assert abs(float((weights * alphas**deg).sum()) - 1 / (deg + 1)) < 1e-12


def test_riemann_rules_converge():
    for method in ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"):
        alphas, weights = quadrature(method, 2000)
        assert abs(float((weights * alphas**2).sum()) - 1 / 3) < 1e-3


def test_matches_captum_rules():
    from captum.attr._utils.approximation_methods import approximation_parameters

    n = 7
    for method in METHODS:
        step_sizes, alphas = approximation_parameters(method)
        a, w = quadrature(method, n)
        captum_w = torch.tensor(step_sizes(n), dtype=torch.float64)
        if method == "riemann_trapezoid":
            # Captum's trapezoid weights sum to (n-1)/n on points spaced 1/(n-1); ours sum to
            # 1 (the trapezoid rule), so completeness holds. Documented in docs/methods.
            assert abs(float(captum_w.sum()) - (n - 1) / n) < 1e-12
            captum_w = captum_w * n / (n - 1)
        torch.testing.assert_close(a, torch.tensor(alphas(n), dtype=torch.float64))
        torch.testing.assert_close(w, captum_w)


def test_aliases_and_bad_names():
    assert torch.equal(quadrature("gauss-legendre", 5)[0], quadrature("gausslegendre", 5)[0])
    with pytest.raises(ValueError):
        quadrature("simpson", 5)
    with pytest.raises(ValueError):
        quadrature("riemann_left", 0)
