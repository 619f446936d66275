"""Gradient baselines: cross-checks against Captum, invariants, literal references."""

import pytest
import torch
from torch import nn

import faithmap as fm
from faithmap.core.integration import METHODS
from tiny_models import tiny_cnn

captum_attr = pytest.importorskip("captum.attr")


def _models(resnet18, x_resnet):
    return [("tiny_cnn", tiny_cnn(), torch.rand(3, 3, 16, 16)), ("resnet18", resnet18, x_resnet)]


@pytest.mark.parametrize("abs_", [True, False])
def test_saliency_matches_captum(abs_, resnet18, x_resnet):
    for _, model, x in _models(resnet18, x_resnet):
        ours = fm.Saliency(model, abs=abs_)(x, target=[1] * len(x))
        ref = captum_attr.Saliency(model).attribute(x, target=1, abs=abs_)
        torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-6)


def test_input_x_gradient_matches_captum(resnet18, x_resnet):
    for _, model, x in _models(resnet18, x_resnet):
        ours = fm.InputXGradient(model)(x, target=2)
        ref = captum_attr.InputXGradient(model).attribute(x, target=2)
        torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_integrated_gradients_matches_captum(method, resnet18, x_resnet):
    n_steps = 6
    for _, model, x in _models(resnet18, x_resnet):
        baseline = torch.full_like(x, 0.25)
        ours = fm.IntegratedGradients(model, baseline=baseline, n_steps=n_steps,
                                      integration=method, batch_size=5)(x, target=3)
        ref = captum_attr.IntegratedGradients(model).attribute(
            x, baselines=baseline, target=3, n_steps=n_steps, method=method)
        if method == "riemann_trapezoid":  # Captum's weights sum to (n-1)/n, see the docs
            ref = ref * n_steps / (n_steps - 1)
        torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-6)


def test_integrated_gradients_completeness():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.Softplus(), nn.Flatten(),
                          nn.Linear(6 * 8 * 8, 4), nn.Tanh()).double().eval()
    x = torch.rand(3, 3, 8, 8, dtype=torch.float64)
    explainer = fm.IntegratedGradients(model, baseline=0.1, n_steps=64, convergence_delta=True)
    attr = explainer(x, target=[0, 1, 2])
    with torch.no_grad():
        idx = torch.arange(3)
        gap = model(x)[idx, idx] - model(torch.full_like(x, 0.1))[idx, idx]
    torch.testing.assert_close(attr.flatten(1).sum(1), gap, rtol=1e-6, atol=1e-8)
    assert explainer.metadata["convergence_delta"].abs().max() < 1e-8


def test_integrated_gradients_on_linear_model_is_exact():
    lin = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5)).eval()
    x = torch.rand(2, 3, 4, 4)
    attr = fm.IntegratedGradients(lin, n_steps=3, integration="riemann_left")(x, target=4)
    torch.testing.assert_close(attr, x * lin[1].weight[4].view(1, 3, 4, 4))


def test_baseline_forms(cnn, x_small):
    ig = lambda b: fm.IntegratedGradients(cnn, baseline=b, n_steps=4)(x_small, target=0)  # noqa: E731
    full = torch.full_like(x_small, 0.5)
    torch.testing.assert_close(ig(0.5), ig(full))
    torch.testing.assert_close(ig(full[0]), ig(full))
    torch.testing.assert_close(ig(lambda x: torch.full_like(x, 0.5)), ig(full))
    with pytest.raises(ValueError, match="broadcast"):
        ig(torch.zeros(2, 3, 16, 16))
    with pytest.raises(ValueError, match="NaN"):
        ig(torch.full_like(x_small, float("nan")))


def test_smoothgrad_is_mean_gradient_at_seeded_noise(cnn, x_small):
    sg = fm.SmoothGrad(cnn, n_samples=5, noise_level=0.2, seed=7, batch_size=3)
    attr = sg(x_small, target=1)
    noise = sg.all_noise(x_small)
    ranges = x_small.flatten(1).max(1).values - x_small.flatten(1).min(1).values
    assert torch.allclose(noise.std(dim=(1, 2, 3, 4)), 0.2 * ranges, rtol=0.1)
    grads = []
    for s in range(5):
        xi = (x_small + noise[:, s]).requires_grad_(True)
        grads.append(torch.autograd.grad(cnn(xi)[:, 1].sum(), xi)[0])
    grads = torch.stack(grads, 1)
    torch.testing.assert_close(attr, grads.mean(1), rtol=1e-5, atol=1e-7)
    sq = fm.SmoothGrad(cnn, n_samples=5, noise_level=0.2, seed=7, squared=True)(x_small, 1)
    torch.testing.assert_close(sq, (grads**2).mean(1), rtol=1e-5, atol=1e-7)
    var = fm.VarGrad(cnn, n_samples=5, noise_level=0.2, seed=7)(x_small, target=1)
    torch.testing.assert_close(var, grads.var(1, unbiased=False), rtol=1e-4, atol=1e-7)


def test_noise_methods_are_seeded(cnn, x_small):
    for cls in (fm.SmoothGrad, fm.VarGrad):
        a = cls(cnn, n_samples=4, seed=3)(x_small)
        assert torch.equal(a, cls(cnn, n_samples=4, seed=3)(x_small))
        assert not torch.equal(a, cls(cnn, n_samples=4, seed=4)(x_small))
        g = torch.Generator().manual_seed(11)
        h = torch.Generator().manual_seed(11)
        assert torch.equal(cls(cnn, n_samples=4, seed=g)(x_small),
                           cls(cnn, n_samples=4, seed=h)(x_small))


def test_smoothgrad_absolute_stdev_zero_is_gradient(cnn, x_small):
    sg = fm.SmoothGrad(cnn, n_samples=3, stdev=0.0)(x_small, target=2)
    torch.testing.assert_close(sg, fm.Saliency(cnn, abs=False)(x_small, target=2))


OPTIONS = {"integrated_gradients": {"n_steps": 5}, "smoothgrad": {"n_samples": 3},
           "vargrad": {"n_samples": 3}}


@pytest.mark.parametrize("method", ["saliency", "input_x_gradient", "integrated_gradients",
                                    "smoothgrad", "vargrad", "gradcam"])
def test_batch_size_invariance(method, cnn, x_small):
    opts = OPTIONS.get(method, {})
    results = [fm.explain(cnn, x_small, method=method, batch_size=b, **opts)
               for b in (1, 3, 7, None)]
    for r in results[1:]:
        torch.testing.assert_close(r, results[0], rtol=1e-5, atol=1e-7)


def test_in_place_and_reused_relu(resnet18, x_resnet):
    """torchvision ResNet reuses one in-place ReLU per block; also an in-place first layer."""
    first_inplace = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True),
                                  nn.Flatten(), nn.Linear(4 * 14 * 14, 3)).eval()
    not_inplace = nn.Sequential(nn.ReLU(), first_inplace[1], nn.ReLU(), nn.Flatten(),
                                first_inplace[4]).eval()
    x = torch.randn(2, 3, 16, 16)
    for method in ["saliency", "input_x_gradient", "integrated_gradients", "smoothgrad",
                   "gradcam"]:
        opts = OPTIONS.get(method, {})
        torch.testing.assert_close(fm.explain(first_inplace, x, method=method, **opts),
                                   fm.explain(not_inplace, x, method=method, **opts))
    ours = fm.Saliency(resnet18, abs=False)(x_resnet, target=0)
    xr = x_resnet.clone().requires_grad_(True)
    ref = torch.autograd.grad(resnet18(xr)[:, 0].sum(), xr)[0]
    torch.testing.assert_close(ours, ref)


def test_integration_rule_via_explain_and_class(cnn, x_small):
    a = fm.explain(cnn, x_small, method="integrated_gradients", integration="riemann_left",
                   n_steps=4)
    b = fm.IntegratedGradients(cnn, integration="riemann_left", n_steps=4)(x_small)
    with pytest.warns(DeprecationWarning, match="'method' is deprecated, use 'integration'"):
        c = fm.get_explainer(cnn, "integrated_gradients", method="left", n_steps=4)(x_small)
    assert torch.equal(a, b) and torch.equal(a, c)
    assert not torch.equal(a, fm.explain(cnn, x_small, method="integrated_gradients", n_steps=4))


def test_integrated_gradients_old_names_warn_and_give_identical_results(cnn, x_small):
    new = fm.IntegratedGradients(cnn, baseline=0.3, integration="riemann_right", n_steps=5)
    with pytest.warns(DeprecationWarning) as caught:
        old = fm.IntegratedGradients(cnn, baselines=0.3, method="riemann_right", n_steps=5)
    assert sorted(str(w.message) for w in caught) == [
        "IntegratedGradients: 'baselines' is deprecated, use 'baseline'",
        "IntegratedGradients: 'method' is deprecated, use 'integration'"]
    assert torch.equal(old(x_small, target=2), new(x_small, target=2))
    assert old.integration == new.integration == "riemann_right" and old.baseline == 0.3
    with pytest.deprecated_call(match="IntegratedGradients.method is deprecated"):
        assert old.method == "riemann_right"
    with pytest.deprecated_call(match="IntegratedGradients.baselines is deprecated"):
        assert old.baselines == 0.3
    with pytest.warns(DeprecationWarning):
        via_explain = fm.explain(cnn, x_small, "integrated_gradients", 2, baselines=0.3,
                                 integration="riemann_right", n_steps=5)
    assert torch.equal(via_explain, new(x_small, target=2))
    with pytest.raises(TypeError, match="'integration' only"):
        fm.IntegratedGradients(cnn, method="left", integration="left")
